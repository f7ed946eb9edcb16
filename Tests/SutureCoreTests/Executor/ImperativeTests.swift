import Foundation
import Testing
import Yams
import SutureCore
import SutureTestSupport

@Suite struct PatchIdentifierTests {
    let a = Fixture.bundle("demo-fix"), b = Fixture.bundle("other-fix")

    @Test func resolvesSysCareIdentifiers() throws {
        let known = [a, b, a]
        #expect(try PatchIdentifier.resolve(a.metadata.uuid.uppercased(), among: known) == a)
        #expect(try PatchIdentifier.resolve("demo-1.0/demo-fix", among: known) == a)
        #expect(try PatchIdentifier.resolve("demo-1.0/demo-fix/", among: known) == a)
        #expect(try PatchIdentifier.resolve("demo-1.0/demo-fix-1-1", among: known) == a)
        #expect(try PatchIdentifier.resolve("demo-fix-1-1", among: known) == a)
        #expect(try PatchIdentifier.resolve("other-fix", among: known) == b)
    }

    @Test func ambiguousAndUnknownNamesAreExplained() {
        var twin = Fixture.bundle("twin")
        twin.metadata.target.version = "2.0"
        twin.metadata.uuid = "00000000-0000-4000-8000-000000000002"
        let twins = [Fixture.bundle("twin"), twin]
        let e = #expect(throws: PatchIdentifier.ResolveError.self) { _ = try PatchIdentifier.resolve("twin", among: twins) }
        #expect(e?.description.contains("ambiguous") == true)
        #expect(e?.description.contains("demo-2.0/twin") == true)
        let u = #expect(throws: PatchIdentifier.ResolveError.self) { _ = try PatchIdentifier.resolve("nope", among: [a]) }
        #expect(u?.description == "no patch matches 'nope' (known: demo-1.0/demo-fix)")
    }
}

@Suite struct LocalManifestTests {
    @Test func roundTripsAndDeclines() throws {
        let root = try TestSupport.temporaryDirectory("suture-local")
        defer { try? FileManager.default.removeItem(at: root) }
        let paths = StatePaths(root: root.path)
        var m = try LocalManifest.load(paths: paths)
        #expect(m.entries.isEmpty)
        m.upsert(.init(name: "demo-fix", bundle: paths.store + "/u1", sha256: "ab12", state: .accepted,
                       target: .path("/usr/sbin/demo")))
        m.upsert(.init(name: "a \"quoted\" name", bundle: "/b", sha256: "", state: .accepted,
                       target: .package(name: "libssl3", version: "1.10")))
        m.upsert(.init(name: "klp", bundle: "/k", sha256: "cd", state: .accepted, target: .kernel(release: "6.1.0-57-amd64")))
        try m.save()
        let again = try LocalManifest.load(paths: paths)
        #expect(again.entries == m.entries)
        #expect(again.entries.first?.target == .package(name: "libssl3", version: "1.10"))
        var declined = again
        let first = declined.remove(name: "demo-fix")
        let second = declined.remove(name: "demo-fix")
        #expect(first && !second)
        try declined.save()
        var byUUID = try LocalManifest.load(paths: paths)
        byUUID.upsert(.init(name: "stored", bundle: paths.store + "/11111111-1111-4111-8111-111111111111", sha256: "ab",
                            state: .accepted, target: .path("/x")))
        let dropped = byUUID.remove(uuid: "11111111-1111-4111-8111-111111111111")
        #expect(dropped && !byUUID.entries.contains { $0.name == "stored" })
        #expect(try LocalManifest.load(paths: paths).entries.map(\.name) == ["a \"quoted\" name", "klp"])
    }

    @Test func yamlIsEmittedByYamsWithTheHeaderAndQuotedStrings() throws {
        let root = try TestSupport.temporaryDirectory("suture-local-yaml")
        defer { try? FileManager.default.removeItem(at: root) }
        var m = try LocalManifest.load(paths: StatePaths(root: root.path))
        #expect(m.yaml.hasPrefix("# Written by `suture patch accept`"))
        #expect(m.yaml.contains("  patches: []\n"))
        m.upsert(.init(name: "odd: name # not a comment\ttab", bundle: "/b c", sha256: "ab", state: .accepted,
                       target: .path("/usr/sbin/demo")))
        let doc = try #require(try Yams.load(yaml: m.yaml) as? [String: Any])
        #expect(doc["apiVersion"] as? String == "suture.dev/v1" && doc["kind"] as? String == "PatchSet")
        let spec = try #require(doc["spec"] as? [String: Any])
        let patch = try #require((spec["patches"] as? [[String: Any]])?.first)
        #expect(patch["name"] as? String == "odd: name # not a comment\ttab")
        #expect((patch["target"] as? [String: Any])?["path"] as? String == "/usr/sbin/demo")
        #expect(m.yaml.contains("name: \"odd: name # not a comment\\ttab\"\n"))
    }

    @Test func savedStatusRoundTrips() throws {
        let root = try TestSupport.temporaryDirectory("suture-saved")
        defer { try? FileManager.default.removeItem(at: root) }
        let paths = StatePaths(root: root.path)
        #expect(throws: StateFileError.self) { _ = try SavedStatus.load(paths: paths) }
        let s = SavedStatus(patches: [.init(uuid: "u1", name: "demo-fix", status: .accepted),
                                      .init(uuid: "u2", name: "b", status: .deactivated)])
        try s.save(paths: paths)
        #expect(try SavedStatus.load(paths: paths) == s)
    }
}
