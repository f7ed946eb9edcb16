import Foundation
import Testing
import SutureCore
import SutureTestSupport

@Suite struct RunLockTests {
    @Test func busyLockNamesItsHolderAndFreesOnRelease() throws {
        let root = try TestSupport.temporaryDirectory("suture-lock")
        defer { try? FileManager.default.removeItem(at: root) }
        let paths = StatePaths(root: root.path)
        let holder = LockHolder(pid: 4242, command: "suture apply examples/manifests", started: "2026-11-29T19:30:00Z")
        let first = try RunLock.acquire(paths: paths, holder: holder)
        #expect(RunLock.readHolder(path: paths.lock) == holder)
        // flock locks belong to the open file description: a second open in this process contends too.
        let error = #expect(throws: LockError.self) { _ = try RunLock.acquire(paths: paths, timeout: .milliseconds(200)) }
        guard case let .busy(seen, waited)? = error?.reason else { Issue.record("not busy"); return }
        #expect(seen == holder)
        #expect(waited >= 0.2)
        #expect(error?.description.contains("pid 4242 (suture apply examples/manifests)") == true)
        first.release()
        let second = try RunLock.acquire(paths: paths)
        #expect(RunLock.readHolder(path: paths.lock)?.pid == getpid())
        second.release()
        #expect(RunLock.readHolder(path: paths.lock) == nil)
    }

    @Test func lockWaitsForARelease() throws {
        let root = try TestSupport.temporaryDirectory("suture-lock")
        defer { try? FileManager.default.removeItem(at: root) }
        let paths = StatePaths(root: root.path)
        let first = try RunLock.acquire(paths: paths)
        // A real thread (not a task: the waiting acquire blocks its thread, and a loaded cooperative pool
        // might never run the releaser).
        Thread.detachNewThread { usleep(300_000); first.release() }
        let second = try RunLock.acquire(paths: paths, timeout: .seconds(60))
        second.release()
    }
}

@Suite struct GenerationTests {
    @Test func recordsNumberedGenerationsAndPlansRollback() throws {
        let root = try TestSupport.temporaryDirectory("suture-gen")
        defer { try? FileManager.default.removeItem(at: root) }
        let store = GenerationStore(paths: StatePaths(root: root.path))
        #expect(store.numbers().isEmpty)
        let a = Fixture.bundle("fix-a"), b = Fixture.bundle("fix-b")
        let g1 = Generation(number: 0, command: "suture apply m", manifestDigest: "d1", manifestPaths: ["m"],
                            git: GitRevision(workTree: "/repo", commit: String(repeating: "a", count: 40), dirty: false),
                            desired: Fixture.desired([a]), live: LiveState(store: [InstalledBundle(bundle: a)]), changes: 2)
        #expect(try store.record(g1) == 1)
        var g2 = g1
        g2.desired = Fixture.desired([a, b])
        #expect(try store.record(g2) == 2)
        #expect(store.numbers() == [1, 2])
        let loaded = try store.load(1)
        #expect(loaded.number == 1 && loaded.git?.commit.count == 40 && loaded.desired == g1.desired)
        #expect(throws: GenerationError.self) { _ = try store.load(7) }

        // Back to 1 with a and b installed now: a stays declared (from the store), b becomes absent.
        let now = [InstalledBundle(bundle: a), InstalledBundle(bundle: b)]
        let desired = try RollbackPlanning.desiredState(for: loaded, store: now) { _ in nil }
        #expect(desired.patches.map(\.name) == ["fix-a", "fix-b"])
        #expect(desired.patches.map(\.state) == [.activated, .absent])

        // A declared bundle that is neither installed nor at its path: refused, naming it.
        let e = #expect(throws: GenerationError.self) {
            _ = try RollbackPlanning.desiredState(for: loaded, store: []) { _ in nil }
        }
        #expect(e?.description.contains("fix-a") == true)
        // ... unless the recorded path still holds the same digest.
        let ok = try RollbackPlanning.desiredState(for: loaded, store: []) { $0 == a.path ? a.digest : nil }
        #expect(ok.patches.count == 1)
    }

    /// Regression (issue 4 review): `history` listed patches Suture does not manage as if they were its own.
    @Test func liveSummaryLabelsForeignPatches() {
        let a = Fixture.bundle("fix-a")
        let live = PF.live(store: [PF.installed(a)],
                           processes: [PF.process(10, markers: [a.metadata.uuid, "0bad0000-0000-4000-8000-000000000000"])],
                           kernel: [PF.lp("someone_elses_livepatch")])
        let g = Generation(number: 1, command: "suture apply m", manifestDigest: "d", manifestPaths: ["m"], git: nil,
                           desired: Fixture.desired([a]), live: live, changes: 1)
        #expect(g.livePatchSummary == [
            "0bad0000-0000-4000-8000-000000000000 live in 1 process(es) (foreign: not in the store)",
            "fix-a live in 1 process(es)",
            "someone_elses_livepatch (kernel) enabled (foreign: not in the store)",
        ].sorted { $0.hasPrefix("someone") ? false : ($1.hasPrefix("someone") ? true : $0 < $1) })
    }

    @Test func forcedTransitionsAreRefused() {
        let k = Fixture.bundle("klp-b", kind: .kernel)
        let plan = Plan(actions: [Fixture.deactivate(k)],
                        drift: [Drift(kind: .forced, patch: "klp-b", message: "forced")])
        let refusals = RollbackPlanning.refusals(plan)
        #expect(refusals.count == 1 && refusals[0].contains("forced"))
        #expect(RollbackPlanning.refusals(Plan(actions: [Fixture.deactivate(k)])).isEmpty)
    }
}
