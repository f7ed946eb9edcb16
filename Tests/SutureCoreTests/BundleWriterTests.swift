import Foundation
import SutureCore
import SutureTestSupport
import Testing

@Suite struct BundleWriterTests {
    static let userDemo = TestSupport.fixtures.appendingPathComponent("bundles/user-demo")

    static func sampleMetadata(description: String = "fix", version: String = "1") -> BundleMetadata {
        BundleMetadata(
            name: "CVE-2024-0001", version: version, release: "1",
            uuid: "0d3c6a5e-4b1f-4c9a-9e2d-7f1a2b3c4d5e", kind: .user, description: description,
            target: BundleTarget(package: "suture-demo", version: "1.0-1", arch: "x86_64"),
            entities: [BundleEntity(targetPath: "/usr/sbin/suture-demo",
                                    targetBuildID: "3f2a9c1d8e7b6a5f4e3d2c1b0a99887766554433",
                                    payload: "demo-fix.o", payloadSHA256: "",
                                    functions: [FunctionPatch(symbol: "parse_request", offset: 4400, size: 96,
                                                              expectedBytes: "f30f1efa55",
                                                              replacement: "parse_request_patched")],
                                    imports: [])],
            patches: [BundleSourcePatch(file: "patches/demo-fix.patch", sha256: "")])
    }

    static var sources: (payloads: [String: URL], patches: [String: URL]) {
        (["demo-fix.o": userDemo.appendingPathComponent("demo-fix.o")],
         ["patches/demo-fix.patch": userDemo.appendingPathComponent("patches/demo-fix.patch")])
    }

    @Test func writesWhatTheFixtureScriptWrites() throws {
        let tmp = try TestSupport.temporaryDirectory("bundle-writer")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let out = tmp.appendingPathComponent("user-demo")
        let written = try BundleWriter.write(Self.sampleMetadata(description: "Reject over-long requests in parse_request"),
                                             payloads: Self.sources.payloads, patches: Self.sources.patches, to: out)
        let fixture = try BundleReader.read(directory: Self.userDemo)
        // Same metadata (checksums filled in), same files, so the same digest as the script-made fixture.
        #expect(written.metadata == fixture.metadata)
        #expect(written.digest == fixture.digest)
        #expect(written.path == out.resolvingSymlinksInPath().path)
        #expect(try BundleReader.read(directory: out) == written)
        // No temporary directory is left next to it.
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp.path) == ["user-demo"])
    }

    @Test func yamlIsStableAndRoundTripsTrickyStrings() throws {
        let tricky = ["1.10", "yes", "null", "~", "0x10", "-", "a: b", "# not a comment", "line1\nline2",
                      "ünïcödé ✓", "'quoted'", "\"dq\"", "  padded  ", "tab\there", "{flow}", "[seq]", "*alias", "&anchor"]
        for text in tricky {
            var m = Self.sampleMetadata(description: text, version: text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? "1" : text)
            m.entities[0].payloadSHA256 = String(repeating: "a", count: 64)
            m.patches[0].sha256 = String(repeating: "b", count: 64)
            let yaml = try BundleWriter.yaml(for: m)
            #expect(try BundleWriter.yaml(for: m) == yaml)
            let back = try BundleReader.parseMetadata(yaml: yaml, file: "patch.yaml")
            #expect(back == m, "round trip of \(text.debugDescription):\n\(yaml)")
        }
    }

    @Test func keyOrderFollowsTheModel() throws {
        var m = Self.sampleMetadata()
        m.entities[0].payloadSHA256 = String(repeating: "a", count: 64)
        m.patches[0].sha256 = String(repeating: "b", count: 64)
        let keys = try BundleWriter.yaml(for: m).split(separator: "\n")
            .filter { !$0.hasPrefix(" ") && !$0.hasPrefix("-") }
            .map { String($0.prefix { $0 != ":" }) }
        #expect(keys == ["format_version", "name", "version", "release", "uuid", "kind", "description",
                         "target", "entities", "patches"])
    }

    @Test func refusesExistingDestinationAndBadInputLeavingNothing() throws {
        let tmp = try TestSupport.temporaryDirectory("bundle-writer-bad")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let existing = tmp.appendingPathComponent("exists")
        try FileManager.default.createDirectory(at: existing, withIntermediateDirectories: false)
        #expect(throws: DiagnosticError.self) {
            try BundleWriter.write(Self.sampleMetadata(), payloads: Self.sources.payloads,
                                   patches: Self.sources.patches, to: existing)
        }
        // Missing payload source.
        #expect(throws: DiagnosticError.self) {
            try BundleWriter.write(Self.sampleMetadata(), payloads: [:], patches: Self.sources.patches,
                                   to: tmp.appendingPathComponent("a"))
        }
        // Payload path escaping the bundle.
        var escaping = Self.sampleMetadata()
        escaping.entities[0].payload = "../demo-fix.o"
        #expect(throws: DiagnosticError.self) {
            try BundleWriter.write(escaping, payloads: ["../demo-fix.o": Self.sources.payloads["demo-fix.o"]!],
                                   patches: Self.sources.patches, to: tmp.appendingPathComponent("b"))
        }
        // Metadata that does not validate (bad uuid) is caught by the read-back, and nothing is left.
        var badUUID = Self.sampleMetadata()
        badUUID.uuid = "nope"
        let error = try #require(throws: DiagnosticError.self) {
            try BundleWriter.write(badUUID, payloads: Self.sources.payloads, patches: Self.sources.patches,
                                   to: tmp.appendingPathComponent("c"))
        }
        #expect(error.description.contains("'uuid' must be an RFC 4122 UUID"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp.path) == ["exists"])
    }
}
