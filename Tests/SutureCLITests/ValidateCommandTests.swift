import Foundation
import SutureTestSupport
import Testing

/// Runs the built `suture` binary (`.build/debug/suture`, built by `swift build --build-tests`).
private struct Run {
    var status: Int32
    var stdout: String
    var stderr: String
}

private func suture(_ arguments: [String], in directory: URL) throws -> Run {
    let binary = TestSupport.packageRoot.appendingPathComponent(".build/debug/suture")
    // Output goes to files outside the directories under test (no pipe buffers to fill).
    let capture = try TestSupport.temporaryDirectory("suture-validate-output")
    defer { try? FileManager.default.removeItem(at: capture) }
    let outURL = capture.appendingPathComponent("stdout")
    let errURL = capture.appendingPathComponent("stderr")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    let process = Process()
    process.executableURL = binary
    process.arguments = arguments
    process.currentDirectoryURL = directory
    process.standardOutput = try FileHandle(forWritingTo: outURL)
    process.standardError = try FileHandle(forWritingTo: errURL)
    try process.run()
    process.waitUntilExit()
    return Run(status: process.terminationStatus,
               stdout: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
               stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
}

/// Every file under `root` with its size and modification time, to prove a run wrote nothing.
private func snapshot(_ root: URL) -> [String: String] {
    var result: [String: String] = [:]
    let manager = FileManager.default
    for path in (manager.subpaths(atPath: root.path) ?? []) {
        let attributes = try? manager.attributesOfItem(atPath: root.appendingPathComponent(path).path)
        result[path] = "\(attributes?[.size] ?? 0) \(attributes?[.modificationDate] ?? 0)"
    }
    return result
}

@Suite struct ValidateCommandTests {
    static let corpus = TestSupport.fixtures.appendingPathComponent("bad-manifests")
    static let cases = ["syntax-unclosed-flow", "unknown-key-patch", "version-float-1.10", "state-on",
                        "conflicting-states", "bundle-missing", "pin-mismatch", "non-utf8", "alias-bomb", "empty",
                        "duplicate-key"]

    @Test(arguments: cases) func badManifestExitsOneWithTheErrorOnStderrAndWritesNothing(_ name: String) throws {
        // Run inside a private root so that any stray write would show up.
        let root = try TestSupport.temporaryDirectory("suture-validate")
        defer { try? FileManager.default.removeItem(at: root) }
        let before = snapshot(root)
        let expected = try String(contentsOf: Self.corpus.appendingPathComponent(name + ".expected"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let run = try suture(["validate", name + ".yaml", "--root", root.path], in: Self.corpus)
        #expect(run.status == 1)
        #expect(run.stdout.isEmpty)
        let firstError = run.stderr.split(separator: "\n").first { $0.contains(": error: ") }.map(String.init)
        #expect(firstError == expected)
        #expect(snapshot(root) == before)
    }

    @Test func validManifestExitsZeroAndPrintsWarnings() throws {
        let root = try TestSupport.temporaryDirectory("suture-validate")
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.copyItem(at: TestSupport.fixtures.appendingPathComponent("bad-manifests/bundles/demo-fix"),
                                         to: root.appendingPathComponent("demo-fix"))
        try Data("""
        apiVersion: suture.dev/v1
        kind: PatchSet
        metadata: {name: demo}
        spec:
          patches:
            - name: CVE-2024-0001
              bundle: demo-fix
              state: activated
              target: {package: suture-demo, version: "1.0-1"}
        """.utf8).write(to: root.appendingPathComponent("demo.yaml"))
        let run = try suture(["validate", "demo.yaml", "--root", root.path], in: root)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.hasPrefix("demo.yaml:6:7: warning: patch 'CVE-2024-0001' has no sha256 pin"))
        #expect(run.stdout == "valid: 1 file, 1 PatchSet, 1 patch: 0 errors, 1 warning\n")

        let json = try suture(["validate", "demo.yaml", "--root", root.path, "--json"], in: root)
        #expect(json.status == 0)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(report["format_version"] as? Int == 1)
        #expect(report["valid"] as? Bool == true)
        #expect(report["patch_sets"] as? [String] == ["demo"])
        let diagnostics = try #require(report["diagnostics"] as? [[String: Any]])
        #expect(diagnostics.first?["line"] as? Int == 6)

        // As a host that the config requires pins for, the missing pin is an error.
        try FileManager.default.createDirectory(at: root.appendingPathComponent("etc/suture"),
                                                withIntermediateDirectories: true)
        try Data("requirePins: true\n".utf8).write(to: root.appendingPathComponent("etc/suture/suture.yaml"))
        let strict = try suture(["validate", "demo.yaml", "--root", root.path, "--hostname", "web-1"], in: root)
        #expect(strict.status == 1)
        #expect(strict.stderr.hasPrefix("demo.yaml:6:7: error: patch 'CVE-2024-0001' has no sha256 pin"))
    }

    @Test func badConfigIsReportedWithItsPosition() throws {
        let root = try TestSupport.temporaryDirectory("suture-validate")
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createDirectory(at: root.appendingPathComponent("etc/suture"),
                                                withIntermediateDirectories: true)
        try Data("requirePin: true\n".utf8).write(to: root.appendingPathComponent("etc/suture/suture.yaml"))
        let run = try suture(["validate", "--root", root.path], in: root)
        #expect(run.status == 1)
        #expect(run.stderr.hasPrefix("\(root.path)/etc/suture/suture.yaml:1:1: error: unknown key 'requirePin' in "
                                     + "the config file; did you mean 'requirePins'?"))
    }
    /// A patch declared twice identically is one patch: the summary counts it once and says a repeat was
    /// merged; the warning names both places.
    @Test func identicalRepeatCountsAsOnePatch() throws {
        let root = try TestSupport.temporaryDirectory("suture-validate")
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.copyItem(at: TestSupport.fixtures.appendingPathComponent("bad-manifests/bundles/demo-fix"),
                                         to: root.appendingPathComponent("demo-fix"))
        try Data("""
        apiVersion: suture.dev/v1
        kind: PatchSet
        metadata: {name: demo}
        spec:
          patches:
            - name: CVE-2024-0001
              bundle: demo-fix
              state: activated
              target: {package: suture-demo, version: "1.0-1"}
            - name: CVE-2024-0001
              bundle: demo-fix
              state: activated
              target: {package: suture-demo, version: "1.0-1"}
        """.utf8).write(to: root.appendingPathComponent("demo.yaml"))
        let run = try suture(["validate", "demo.yaml", "--root", root.path], in: root)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout == "valid: 1 file, 1 PatchSet, 1 patch (1 identical repeat merged, see the warning): "
                + "0 errors, 3 warnings\n")
        #expect(run.stderr.contains("demo.yaml:10:7: warning: patch 'CVE-2024-0001' is declared twice, identically "
                                    + "(also at line 6, column 7)"), "\(run.stderr)")

        let json = try suture(["validate", "demo.yaml", "--root", root.path, "--json"], in: root)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(report["patches"] as? Int == 1)
        #expect(report["identical_repeats"] as? Int == 1)
    }
}
