import Foundation
import SutureCore
import SutureTestSupport
import Testing

@Suite struct PatchStoreTests {
    static let fixtures = TestSupport.fixtures.appendingPathComponent("bundles")

    /// A fresh root with a copy of the user-demo fixture bundle next to it.
    static func setUp() throws -> (root: URL, store: PatchStore, bundle: ResolvedBundle) {
        let root = try TestSupport.temporaryDirectory("patch-store")
        let copy = root.appendingPathComponent("src/user-demo")
        try FileManager.default.createDirectory(at: copy.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: fixtures.appendingPathComponent("user-demo"), to: copy)
        return (root, PatchStore(root: root), try BundleReader.read(directory: copy))
    }

    @Test func installListRemove() throws {
        let (root, store, bundle) = try Self.setUp()
        defer { try? FileManager.default.removeItem(at: root) }
        #expect(store.list().isEmpty)  // no store directory yet: empty, not an error
        let result = try store.install(bundle)
        #expect(result.outcome == .installed)
        #expect(result.cleaned.isEmpty)
        let entry = store.path(for: bundle.metadata.uuid)
        #expect(result.bundle.path == entry.path)
        #expect(entry.path == root.path + "/var/lib/suture/store/" + bundle.metadata.uuid)
        #expect(result.bundle.digest == bundle.digest)
        #expect(try coreutilsDigest(entry) == bundle.digest)

        let listed = store.list()
        #expect(listed.count == 1)
        #expect(listed.first?.problems == [])
        #expect(listed.first?.bundle == result.bundle)
        #expect(listed.first?.uuid == bundle.metadata.uuid)
        #expect(store.entry(uuid: bundle.metadata.uuid) == listed.first)
        #expect(store.leftovers().isEmpty)

        #expect(try store.remove(uuid: bundle.metadata.uuid) == true)
        #expect(!FileManager.default.fileExists(atPath: entry.path))
        #expect(store.list().isEmpty)
        #expect(store.leftovers().isEmpty)
        #expect(try store.remove(uuid: bundle.metadata.uuid) == false)
    }

    @Test func installingTheSameDigestAgainIsANoOp() throws {
        let (root, store, bundle) = try Self.setUp()
        defer { try? FileManager.default.removeItem(at: root) }
        try store.install(bundle)
        let payload = store.path(for: bundle.metadata.uuid).appendingPathComponent("demo-fix.o")
        let before = try FileManager.default.attributesOfItem(atPath: payload.path)[.systemFileNumber] as? NSNumber
        let again = try store.install(bundle)
        #expect(again.outcome == .alreadyInstalled)
        let after = try FileManager.default.attributesOfItem(atPath: payload.path)[.systemFileNumber] as? NSNumber
        #expect(before == after)  // same inode: nothing was rewritten
    }

    @Test func differentDigestForSameUUIDIsRefused() throws {
        let (root, store, bundle) = try Self.setUp()
        defer { try? FileManager.default.removeItem(at: root) }
        try store.install(bundle)
        // Same uuid, one extra file: a different bundle.
        let other = root.appendingPathComponent("src/other")
        try FileManager.default.copyItem(at: URL(fileURLWithPath: bundle.path), to: other)
        try Data("x".utf8).write(to: other.appendingPathComponent("NOTES"))
        let changed = try BundleReader.read(directory: other)
        #expect(changed.digest != bundle.digest)
        let error = try #require(throws: DiagnosticError.self) { try store.install(changed) }
        #expect(error.description.contains("refusing to install a different bundle with the same uuid"))
        // The installed entry is untouched.
        #expect(store.list().first?.bundle.digest == bundle.digest)
        #expect(store.leftovers().isEmpty)
    }

    @Test func sourceChangedSinceReadIsRefused() throws {
        let (root, store, bundle) = try Self.setUp()
        defer { try? FileManager.default.removeItem(at: root) }
        try Data("later".utf8).write(to: URL(fileURLWithPath: bundle.path).appendingPathComponent("EXTRA"))
        let error = try #require(throws: DiagnosticError.self) { try store.install(bundle) }
        #expect(error.description.contains("changed since it was read"))
        #expect(store.list().isEmpty)
        #expect(store.leftovers().isEmpty)
    }

    @Test func tamperedStoreEntryIsReportedNotThrown() throws {
        let (root, store, bundle) = try Self.setUp()
        defer { try? FileManager.default.removeItem(at: root) }
        try store.install(bundle)
        let payload = store.path(for: bundle.metadata.uuid).appendingPathComponent("demo-fix.o")
        let handle = try FileHandle(forWritingTo: payload)
        try handle.seek(toOffset: 64)
        try handle.write(contentsOf: Data([0xcc]))
        try handle.close()
        let listed = store.list()
        #expect(listed.count == 1)
        let entry = try #require(listed.first)
        #expect(entry.problems.count == 1)
        #expect(entry.problems.first?.contains("checksum mismatch: payload 'demo-fix.o'") == true)
        #expect(entry.bundle.metadata.uuid == bundle.metadata.uuid)  // still identified
        #expect(entry.bundle.digest != bundle.digest)
        // Installing over a corrupt entry is refused; the entry is left for inspection.
        let error = try #require(throws: DiagnosticError.self) { try store.install(bundle) }
        #expect(error.description.contains("is corrupt"))
        // After removing it, the install works again.
        try store.remove(uuid: bundle.metadata.uuid)
        #expect(try store.install(bundle).outcome == .installed)
        #expect(store.list().first?.problems == [])
    }

    @Test func unreadableAndMisnamedEntriesAreReported() throws {
        let (root, store, bundle) = try Self.setUp()
        defer { try? FileManager.default.removeItem(at: root) }
        try store.install(bundle)
        // An entry whose patch.yaml is garbage.
        let garbage = store.path(for: "11111111-2222-4333-8444-555555555555")
        try FileManager.default.createDirectory(at: garbage, withIntermediateDirectories: true)
        try Data("{{{".utf8).write(to: garbage.appendingPathComponent("patch.yaml"))
        // A valid bundle under the wrong directory name.
        let misnamed = store.path(for: "22222222-2222-4333-8444-555555555555")
        try FileManager.default.copyItem(at: URL(fileURLWithPath: bundle.path), to: misnamed)
        let listed = store.list()
        #expect(listed.map(\.bundle.path) == [garbage.path, misnamed.path, store.path(for: bundle.metadata.uuid).path].sorted())
        let byPath = Dictionary(uniqueKeysWithValues: listed.map { ($0.bundle.path, $0) })
        #expect(byPath[garbage.path]?.problems.first?.contains("invalid YAML") == true)
        #expect(byPath[garbage.path]?.bundle.metadata.uuid == "11111111-2222-4333-8444-555555555555")
        #expect(byPath[misnamed.path]?.problems == ["patch.yaml has uuid \(bundle.metadata.uuid) but the store entry is named 22222222-2222-4333-8444-555555555555"])
    }

    @Test func leftoversOfAKilledInstallAreCleanedAndReported() throws {
        let (root, store, bundle) = try Self.setUp()
        defer { try? FileManager.default.removeItem(at: root) }
        // Simulate an install killed after copying part of the bundle.
        let leftover = store.directory.appendingPathComponent(".tmp-\(bundle.metadata.uuid)-dead")
        try FileManager.default.createDirectory(at: leftover, withIntermediateDirectories: true)
        try Data("partial".utf8).write(to: leftover.appendingPathComponent("demo-fix.o"))
        #expect(store.leftovers() == [leftover.lastPathComponent])
        #expect(store.list().isEmpty)  // not an entry
        let result = try store.install(bundle)
        #expect(result.cleaned == [leftover.lastPathComponent])
        #expect(!FileManager.default.fileExists(atPath: leftover.path))
        #expect(store.leftovers().isEmpty)
        // cleanLeftovers on its own.
        try FileManager.default.createDirectory(at: leftover, withIntermediateDirectories: true)
        #expect(try store.cleanLeftovers() == [leftover.lastPathComponent])
        #expect(store.leftovers().isEmpty)
    }

    /// The invariant the rename gives: while an install runs, the entry either does not exist or verifies
    /// completely (a concurrent reader never sees a half-copied entry).
    @Test func entryNeverAppearsHalfWritten() async throws {
        let (root, store, bundle) = try Self.setUp()
        defer { try? FileManager.default.removeItem(at: root) }
        let entry = store.path(for: bundle.metadata.uuid)
        let watcher = Task.detached { () -> [String] in
            var seen: [String] = []
            for _ in 0..<2000 {
                if FileManager.default.fileExists(atPath: entry.path) {
                    let listed = PatchStore(root: root).list()
                    seen.append(contentsOf: listed.flatMap(\.problems))
                    break
                }
                await Task.yield()
            }
            return seen
        }
        try store.install(bundle)
        #expect(await watcher.value == [])
    }

    @Test func concurrentInstallsOfTheSameBundle() async throws {
        let (root, store, bundle) = try Self.setUp()
        defer { try? FileManager.default.removeItem(at: root) }
        let outcomes = try await withThrowingTaskGroup(of: PatchStore.InstallOutcome.self) { group in
            for _ in 0..<4 { group.addTask { try store.install(bundle).outcome } }
            var out: [PatchStore.InstallOutcome] = []
            for try await o in group { out.append(o) }
            return out
        }
        #expect(outcomes.filter { $0 == .installed }.count == 1)
        #expect(outcomes.filter { $0 == .alreadyInstalled }.count == 3)
        #expect(store.list().map(\.problems) == [[]])
        #expect(store.leftovers().isEmpty)
    }

    @Test func malformedUUIDIsRefused() throws {
        let (root, store, _) = try Self.setUp()
        defer { try? FileManager.default.removeItem(at: root) }
        #expect(throws: DiagnosticError.self) { try store.remove(uuid: "../../etc") }
        #expect(store.entry(uuid: "../x") == nil)
    }
}

@Suite struct PatchStoreAccessorTests {
    @Test func executorProtocolRoundTrip() throws {
        let (root, store, bundle) = try PatchStoreTests.setUp()
        defer { try? FileManager.default.removeItem(at: root) }
        let access: any PatchStoreAccess = store.accessor
        #expect(try access.installed(uuid: bundle.metadata.uuid) == nil)
        let installed = try access.install(bundle)
        #expect(installed.path == store.path(for: bundle.metadata.uuid).path)
        #expect(installed.digest == bundle.digest)
        #expect(try access.install(bundle) == installed)  // same digest: no-op
        #expect(try access.installed(uuid: bundle.metadata.uuid)?.problems == [])
        try access.remove(uuid: bundle.metadata.uuid)
        try access.remove(uuid: bundle.metadata.uuid)  // absent: fine
        #expect(try access.installed(uuid: bundle.metadata.uuid) == nil)
    }
}
