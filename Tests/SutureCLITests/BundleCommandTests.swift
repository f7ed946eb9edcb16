import Foundation
import SutureCore
import SutureTestSupport
import Testing

/// Runs the built `suture` binary (`.build/debug/suture`) and captures its output.
struct SutureRun {
    var status: Int32
    var stdout: String
    var stderr: String

    static var binary: URL { TestSupport.packageRoot.appendingPathComponent(".build/debug/suture") }

    static func run(_ arguments: [String]) throws -> SutureRun {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read both pipes concurrently-safe: outputs here are small, stderr first would block only on >64 KiB.
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return SutureRun(status: process.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                         stderr: String(decoding: e, as: UTF8.self))
    }
}

@Suite struct BundleCommandTests {
    static let fixtures = TestSupport.fixtures.appendingPathComponent("bundles")
    static let bad = TestSupport.fixtures.appendingPathComponent("bad-bundles")

    @Test func verifyPrintsTheDigest() throws {
        let dir = Self.fixtures.appendingPathComponent("user-demo")
        let expected = try BundleReader.read(directory: dir).digest
        let r = try SutureRun.run(["bundle", "verify", dir.path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == """
            verified suture-demo-1.0-1/CVE-2024-0001 (0d3c6a5e-4b1f-4c9a-9e2d-7f1a2b3c4d5e): 1 payload, 1 source patch
            digest: \(expected)

            """)
        #expect(r.stderr.isEmpty)
    }

    @Test func verifyNamesTheTamperedPayload() throws {
        let dir = Self.bad.appendingPathComponent("payload-checksum-mismatch")
        let r = try SutureRun.run(["bundle", "verify", dir.path])
        #expect(r.status == 1)
        #expect(r.stdout.isEmpty)
        let first = r.stderr.split(separator: "\n").first.map(String.init) ?? ""
        #expect(first.hasPrefix("\(dir.path)/patch.yaml:16:19: error: checksum mismatch: payload 'demo-fix.o'"))
    }

    @Test func verifyOnATamperedCopy() throws {
        let tmp = try TestSupport.temporaryDirectory("cli-verify")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let copy = tmp.appendingPathComponent("k")
        try FileManager.default.copyItem(at: Self.fixtures.appendingPathComponent("kernel-livepatch-sample"), to: copy)
        #expect(try SutureRun.run(["bundle", "verify", copy.path]).status == 0)
        let ko = copy.appendingPathComponent("livepatch_sample.ko")
        var bytes = try Data(contentsOf: ko)
        bytes[bytes.count / 2] ^= 0xff
        try bytes.write(to: ko)
        let r = try SutureRun.run(["bundle", "verify", copy.path])
        #expect(r.status == 1)
        #expect(r.stderr.contains("checksum mismatch: payload 'livepatch_sample.ko'"))
    }

    @Test func inspectText() throws {
        let dir = Self.fixtures.appendingPathComponent("kernel-livepatch-sample")
        let bundle = try BundleReader.read(directory: dir)
        let r = try SutureRun.run(["bundle", "inspect", dir.path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("Bundle kernel-\(bundle.metadata.target.version)/KLP-cmdline\n"))
        #expect(r.stdout.contains("digest:           \(bundle.digest)\n"))
        #expect(r.stdout.contains("kind:             kernel\n"))
        #expect(r.stdout.contains("  - vmlinux\n"))
        #expect(r.stdout.contains("    module:       livepatch_sample\n"))
        #expect(r.stdout.contains("    replace:      yes (atomic replace)\n"))
        #expect(r.stdout.contains("patches (1):\n  - livepatch-sample.patch  sha256 "))
    }

    @Test func inspectUserText() throws {
        let r = try SutureRun.run(["bundle", "inspect", Self.fixtures.appendingPathComponent("user-demo").path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("    build-id:     3f2a9c1d8e7b6a5f4e3d2c1b0a99887766554433\n"))
        #expect(r.stdout.contains("      parse_request @ 0x1130 (96 bytes) -> parse_request_patched\n"))
    }

    @Test func inspectJSONDecodesToTheModel() throws {
        let dir = Self.fixtures.appendingPathComponent("user-demo")
        let bundle = try BundleReader.read(directory: dir)
        let r = try SutureRun.run(["bundle", "inspect", "--json", dir.path])
        #expect(r.status == 0, "\(r.stderr)")
        struct Output: Decodable {
            let format_version: Int
            let path: String
            let digest: String
            let metadata: BundleMetadata
        }
        let decoded = try JSONDecoder().decode(Output.self, from: Data(r.stdout.utf8))
        #expect(decoded.format_version == 1)
        #expect(decoded.digest == bundle.digest)
        #expect(decoded.path == bundle.path)
        #expect(decoded.metadata == bundle.metadata)
    }

    /// Every bad-corpus case: exit 1, nothing on stdout, the expected first error line on stderr.
    @Test(arguments: try! FileManager.default.contentsOfDirectory(atPath: bad.path).sorted())
    func badBundleExitsOne(_ name: String) throws {
        let dir = Self.bad.appendingPathComponent(name)
        let expected = try String(contentsOf: dir.appendingPathComponent("expected-error"), encoding: .utf8)
            .trimmingCharacters(in: .newlines).replacingOccurrences(of: "{dir}", with: dir.path)
        for command in ["verify", "inspect"] {
            let r = try SutureRun.run(["bundle", command, dir.path])
            #expect(r.status == 1, "\(name) \(command)")
            #expect(r.stdout.isEmpty)
            #expect(r.stderr.split(separator: "\n").first.map(String.init) == expected, "\(name) \(command)")
        }
    }

    @Test func missingPathExitsOne() throws {
        let r = try SutureRun.run(["bundle", "verify", "/nonexistent/bundle"])
        #expect(r.status == 1)
        #expect(r.stderr == "error: bundle /nonexistent/bundle does not exist\n")
    }
}
