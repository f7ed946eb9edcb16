import Foundation
import SutureCore
import SutureTestSupport
import Testing

/// Runs `/bin/sh -c script` and returns its stdout (trimmed). Used to cross-check digests with coreutils.
func shell(_ script: String) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", script]
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}

/// The digest as documented in docs/bundle.md, computed with find/sort/sha256sum.
func coreutilsDigest(_ directory: URL) throws -> String {
    try shell("cd '\(directory.path)' && find . -type f | sed 's|^\\./||' | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1")
}

@Suite struct BundleReaderTests {
    static let fixtures = TestSupport.fixtures.appendingPathComponent("bundles")
    static let bad = TestSupport.fixtures.appendingPathComponent("bad-bundles")

    @Test func readsUserFixture() throws {
        let dir = Self.fixtures.appendingPathComponent("user-demo")
        let bundle = try BundleReader.read(directory: dir)
        let m = bundle.metadata
        #expect(m.formatVersion == 1)
        #expect(m.name == "CVE-2024-0001")
        #expect(m.version == "1" && m.release == "1")
        #expect(m.uuid == "0d3c6a5e-4b1f-4c9a-9e2d-7f1a2b3c4d5e")
        #expect(m.kind == .user)
        #expect(m.target == BundleTarget(package: "suture-demo", version: "1.0-1", arch: "x86_64"))
        #expect(m.entities.count == 1)
        let e = try #require(m.entities.first)
        #expect(e.targetPath == "/usr/sbin/suture-demo")
        #expect(e.payload == "demo-fix.o")
        #expect(e.functions == [FunctionPatch(symbol: "parse_request", offset: 4400, size: 96,
                                              expectedBytes: "f30f1efa55", replacement: "parse_request_patched")])
        #expect(e.imports == [])
        #expect(e.moduleName == nil && e.replace == nil)
        #expect(m.patches.map(\.file) == ["patches/demo-fix.patch"])
        #expect(bundle.path == dir.resolvingSymlinksInPath().path)
        #expect(m.qualifiedName == "suture-demo-1.0-1/CVE-2024-0001")
        // The payload is a real ELF relocatable object.
        let bytes = try Data(contentsOf: dir.appendingPathComponent("demo-fix.o"))
        #expect(Array(bytes.prefix(4)) == [0x7f, 0x45, 0x4c, 0x46])
        #expect(bytes[16] == 1)  // e_type = ET_REL (little endian)
    }

    @Test func readsKernelFixture() throws {
        let bundle = try BundleReader.read(directory: Self.fixtures.appendingPathComponent("kernel-livepatch-sample"))
        #expect(bundle.metadata.kind == .kernel)
        let e = try #require(bundle.metadata.entities.first)
        #expect(e.targetPath == "vmlinux")
        #expect(e.moduleName == "livepatch_sample")
        #expect(e.replace == true)
        #expect(e.targetBuildID == "")
    }

    @Test(arguments: ["user-demo", "kernel-livepatch-sample"])
    func digestMatchesCoreutils(_ name: String) throws {
        let dir = Self.fixtures.appendingPathComponent(name)
        let bundle = try BundleReader.read(directory: dir)
        #expect(bundle.digest.count == 64)
        #expect(bundle.digest == (try coreutilsDigest(dir)))
        #expect(bundle.digest == (try BundleDigest.digest(ofDirectory: dir)))
    }

    @Test func digestChangesWithAnyFile() throws {
        let tmp = try TestSupport.temporaryDirectory("bundle-digest")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let copy = tmp.appendingPathComponent("b")
        try FileManager.default.copyItem(at: Self.fixtures.appendingPathComponent("user-demo"), to: copy)
        let before = try BundleReader.read(directory: copy).digest
        // An extra file (not referenced by patch.yaml) is part of the identity too.
        try Data("notes".utf8).write(to: copy.appendingPathComponent("README"))
        let after = try BundleReader.read(directory: copy).digest
        #expect(before != after)
        #expect(after == (try coreutilsDigest(copy)))
        // Renaming a file changes the digest even though the contents do not change.
        try FileManager.default.moveItem(at: copy.appendingPathComponent("README"),
                                         to: copy.appendingPathComponent("README2"))
        #expect(try BundleReader.read(directory: copy).digest != after)
    }

    @Test func hashesLargeFileInChunks() throws {
        let tmp = try TestSupport.temporaryDirectory("bundle-large")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let file = tmp.appendingPathComponent("big.bin")
        // 3.5 chunks of non-uniform data, so chunk boundaries matter.
        var bytes = [UInt8](repeating: 0, count: BundleDigest.chunkSize * 7 / 2)
        for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: i &* 2654435761 >> 13) }
        try Data(bytes).write(to: file)
        let (hex, size) = try BundleDigest.sha256(ofFile: file.path)
        #expect(size == UInt64(bytes.count))
        #expect(hex == BundleDigest.sha256(of: bytes))
        #expect(hex == (try shell("sha256sum '\(file.path)' | cut -d' ' -f1")))
    }

    /// Every case in Tests/Fixtures/bad-bundles gives exactly the error line in its `expected-error` file
    /// (`{dir}` stands for the bundle path as given).
    @Test(arguments: try! FileManager.default.contentsOfDirectory(atPath: bad.path).sorted())
    func badBundle(_ name: String) throws {
        let dir = Self.bad.appendingPathComponent(name)
        let expected = try String(contentsOf: dir.appendingPathComponent("expected-error"), encoding: .utf8)
            .trimmingCharacters(in: .newlines)
            .replacingOccurrences(of: "{dir}", with: dir.path)
        do {
            let bundle = try BundleReader.read(directory: dir)
            Issue.record("\(name): accepted, digest \(bundle.digest)")
        } catch {
            #expect(error.diagnostics.count == 1, "\(name): \(error)")
            let first = error.description.split(separator: "\n").first.map(String.init) ?? ""
            #expect(first == expected, "\(name)")
        }
    }

    @Test func badCorpusIsLargeEnough() throws {
        let cases = try FileManager.default.contentsOfDirectory(atPath: Self.bad.path)
        #expect(cases.count >= 10)
    }

    @Test func positionedErrorsCarryTheSourceLine() throws {
        let dir = Self.bad.appendingPathComponent("unknown-key")
        let error = try #require(throws: DiagnosticError.self) { try BundleReader.read(directory: dir) }
        let d = try #require(error.diagnostics.first)
        #expect(d.location?.line == 16)
        #expect(d.location?.column == 3)
        #expect(d.sourceLine?.hasPrefix("  payload_sha265: \"") == true)
        #expect(d.message.contains("did you mean 'payload_sha256'"))
    }

    @Test func missingDirectoryAndPlainFile() throws {
        let tmp = try TestSupport.temporaryDirectory("bundle-missing")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let missing = tmp.appendingPathComponent("nope")
        let e1 = try #require(throws: DiagnosticError.self) { try BundleReader.read(directory: missing) }
        #expect(e1.description == "error: bundle \(missing.path) does not exist")
        let file = tmp.appendingPathComponent("file")
        try Data().write(to: file)
        let e2 = try #require(throws: DiagnosticError.self) { try BundleReader.read(directory: file) }
        #expect(e2.description.contains("is not a directory"))
    }

    @Test func fifoInBundleIsRefused() throws {
        let tmp = try TestSupport.temporaryDirectory("bundle-fifo")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let copy = tmp.appendingPathComponent("b")
        try FileManager.default.copyItem(at: Self.fixtures.appendingPathComponent("user-demo"), to: copy)
        #expect(mkfifo(copy.appendingPathComponent("pipe").path, 0o600) == 0)
        let error = try #require(throws: DiagnosticError.self) { try BundleReader.read(directory: copy) }
        #expect(error.description.contains("pipe: is a special file"))
    }

    @Test func pathProblems() {
        #expect(BundleReader.pathProblem("a.o") == nil)
        #expect(BundleReader.pathProblem("payloads/a.o") == nil)
        #expect(BundleReader.pathProblem("../a.o") != nil)
        #expect(BundleReader.pathProblem("a/../../b") != nil)
        #expect(BundleReader.pathProblem("/etc/passwd") != nil)
        #expect(BundleReader.pathProblem("a//b") != nil)
        #expect(BundleReader.pathProblem("./a") != nil)
        #expect(BundleReader.pathProblem("") != nil)
    }

    @Test func uuidFormat() {
        #expect(BundleReader.isUUID("0d3c6a5e-4b1f-4c9a-9e2d-7f1a2b3c4d5e"))
        #expect(!BundleReader.isUUID("0D3C6A5E-4B1F-4C9A-9E2D-7F1A2B3C4D5E"))
        #expect(!BundleReader.isUUID("0d3c6a5e4b1f4c9a9e2d7f1a2b3c4d5e"))
        #expect(!BundleReader.isUUID("0d3c6a5e-4b1f-4c9a-9e2d-7f1a2b3c4d5"))
        #expect(!BundleReader.isUUID("0d3c6a5e-4b1f-4c9a-9e2d-7f1a2b3c4d5g"))
    }
}

@Suite struct BundleReaderHostileInputTests {
    /// A "billion laughs" alias bomb used as a mapping key (which Yams would hash exponentially) is
    /// refused quickly with a position.
    @Test func aliasBombIsBounded() throws {
        var yaml = "a: &a [\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]\n"
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"]
        for (previous, name) in zip(names, names.dropFirst()) {
            yaml += "\(name): &\(name) [" + Array(repeating: "*\(previous)", count: 9).joined(separator: ",") + "]\n"
        }
        yaml += "z:\n  ? *i\n  : 1\n  ? *h\n  : 2\n"
        let error = try #require(throws: DiagnosticError.self) {
            try BundleReader.parseMetadata(yaml: yaml, file: "patch.yaml")
        }
        #expect(error.diagnostics.first?.location != nil)
        #expect(error.diagnostics.count == 1)
    }

    @Test func nonUTF8AndEmptyAndNonMapping() throws {
        let tmp = try TestSupport.temporaryDirectory("bundle-hostile")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let file = tmp.appendingPathComponent("patch.yaml")
        try Data([0x6e, 0x61, 0x6d, 0x65, 0x3a, 0x20, 0xff, 0x0a]).write(to: file)
        let e1 = try #require(throws: DiagnosticError.self) { try BundleReader.read(directory: tmp) }
        #expect(e1.description.contains("is not valid UTF-8"))
        try Data().write(to: file)
        let e2 = try #require(throws: DiagnosticError.self) { try BundleReader.read(directory: tmp) }
        #expect(e2.description.contains("patch.yaml is empty"))
        try Data("- a\n- b\n".utf8).write(to: file)
        let e3 = try #require(throws: DiagnosticError.self) { try BundleReader.read(directory: tmp) }
        #expect(e3.description.hasPrefix("\(tmp.path)/patch.yaml:1:1: error: patch.yaml must be a mapping, found a list"))
    }

    @Test func oversizedMetadataIsRefusedBeforeParsing() throws {
        let tmp = try TestSupport.temporaryDirectory("bundle-big-yaml")
        defer { try? FileManager.default.removeItem(at: tmp) }
        try Data(repeating: 0x23, count: BundleReader.maxMetadataSize + 1)
            .write(to: tmp.appendingPathComponent("patch.yaml"))
        let error = try #require(throws: DiagnosticError.self) { try BundleReader.read(directory: tmp) }
        #expect(error.description.contains("the limit is \(BundleReader.maxMetadataSize)"))
    }
}
