import Foundation
import SutureTestSupport
import Testing

/// The repository's examples work from any checkout: copied elsewhere, with the demo bundle built as the
/// examples say, every example manifest passes `suture validate`; and every file of the repository that
/// an example cites exists.
@Suite struct ExampleManifestsTests {
    static let examples = TestSupport.packageRoot.appendingPathComponent("examples")
    /// Where `scripts/demo-up` installs demo-server, and where the example manifests declare it.
    static let demoInstallPath = "/usr/local/libexec/suture-demo/demo-server"

    /// The example manifests under `directory`: `*.yaml`/`*.yml` files holding a PatchSet (bundle
    /// `patch.yaml` files are not manifests).
    static func manifests(under directory: URL) throws -> [String] {
        let names = try FileManager.default.subpathsOfDirectory(atPath: directory.path)
        return try names.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted().filter { name in
            let text = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
            return text.contains("kind: PatchSet")
        }
    }

    @Test func everyExampleManifestValidatesFromACopyOfTheRepository() throws {
        let work = try TestSupport.temporaryDirectory("suture-examples")
        defer { try? FileManager.default.removeItem(at: work) }
        let copy = work.appendingPathComponent("examples")
        try FileManager.default.copyItem(at: Self.examples, to: copy)
        // Build products of this checkout (scripts/demo-up, make) are not part of the repository.
        for product in ["bundles/demo-fix", "demo/demo-server", "demo/fix.o"] {
            try? FileManager.default.removeItem(at: copy.appendingPathComponent(product))
        }
        // The demo bundle, as scripts/demo-up builds it: for demo-server at its installed path.
        let make = Process()
        make.executableURL = URL(fileURLWithPath: "/usr/bin/make")
        make.arguments = ["-s", "-C", copy.appendingPathComponent("demo").path, "bundle",
                          "SUTURE=\(SutureRun.binary.path)", "INSTALL_PATH=\(Self.demoInstallPath)"]
        make.standardOutput = FileHandle.nullDevice
        try make.run()
        make.waitUntilExit()
        #expect(make.terminationStatus == 0, "make bundle failed")

        let root = work.appendingPathComponent("root")   // no /etc/suture: the defaults
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let manifests = try Self.manifests(under: copy)
        #expect(manifests.count >= 3, "\(manifests)")
        for name in manifests {
            let run = try SutureRun.run(["validate", copy.appendingPathComponent(name).path, "--root", root.path])
            #expect(run.status == 0, "examples/\(name) does not validate from a copy:\n\(run.stderr)")
            #expect(!run.stderr.contains(": error: "), "examples/\(name):\n\(run.stderr)")
        }
        // And each example repository as a whole: examples/manifests, and the GitOps repository's
        // environments as its ci/plan.sh validates them.
        for directory in ["manifests", "gitops/environments"] {
            let all = try SutureRun.run(["validate", copy.appendingPathComponent(directory).path, "--root", root.path])
            #expect(all.status == 0, "examples/\(directory):\n\(all.stderr)")
        }
    }

    /// Every `docs/…`, `scripts/…`, `Tests/…` path or `README.md` an example file cites exists.
    @Test func filesTheExamplesCiteExist() throws {
        let pattern = try NSRegularExpression(pattern: #"\b(?:docs|scripts|Tests)/[A-Za-z0-9_./-]*[A-Za-z0-9_]"#)
        let names = try FileManager.default.subpathsOfDirectory(atPath: Self.examples.path)
        var cited = 0
        for name in names {
            let url = Self.examples.appendingPathComponent(name)
            guard let text = try? String(contentsOf: url, encoding: .utf8) else { continue }   // binaries
            let range = NSRange(text.startIndex..., in: text)
            for match in pattern.matches(in: text, range: range) {
                let path = String(text[Range(match.range, in: text)!])
                cited += 1
                let exists = FileManager.default.fileExists(
                    atPath: TestSupport.packageRoot.appendingPathComponent(path).path)
                #expect(exists, "examples/\(name) cites \(path), which does not exist")
            }
        }
        #expect(cited > 0)
    }
}
