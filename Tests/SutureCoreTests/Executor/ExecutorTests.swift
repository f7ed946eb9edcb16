import Foundation
import Logging
import Testing
import SutureCore
import SutureTestSupport

/// Executor semantics against an in-test host whose drivers record calls and fail on demand.
@Suite struct ExecutorTests {
    let root: URL
    let paths: StatePaths
    init() throws {
        root = try TestSupport.temporaryDirectory("suture-exec")
        paths = StatePaths(root: root.path)
    }

    func executor(_ host: FakeHost, allowPartial: Bool = false) -> PlanExecutor {
        PlanExecutor(paths: paths, store: host.store, probe: host.probe, userDriver: host.user,
                     kernelDriver: host.kernel,
                     logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
                     options: ExecutorOptions(allowPartial: allowPartial))
    }

    /// A bundle whose directory exists (so a removal can stash it).
    func realBundle(_ name: String, kind: PatchKind = .user) throws -> ResolvedBundle {
        let b = Fixture.bundle(name, kind: kind, dir: root.path + "/bundles")
        try FileManager.default.createDirectory(atPath: b.path, withIntermediateDirectories: true)
        try "name: \(name)\n".write(toFile: b.path + "/patch.yaml", atomically: true, encoding: .utf8)
        return b
    }

    @Test func convergesThenSecondRunSkipsEverything() throws {
        defer { try? FileManager.default.removeItem(at: root) }
        let host = FakeHost()
        host.addProcess(10); host.addProcess(11)
        let a = Fixture.bundle("fix-a")
        let plan = Plan(actions: [Fixture.install(a), Fixture.activate(a, pid: 10), Fixture.activate(a, pid: 11)])
        let report = executor(host).execute(plan: plan, desired: Fixture.desired([a]))
        #expect(report.exitCode == .converged)
        #expect(host.calls == ["install fix-a", "activate fix-a 10", "activate fix-a 11"])
        #expect(host.live(10) == [a.metadata.uuid] && host.live(11) == [a.metadata.uuid])
        #expect(report.patches.first?.processes.map(\.outcome) == [.activated, .activated])
        #expect(ApplyJournal.inspect(paths: paths) == nil)

        // Level-triggered: the same plan again touches nothing.
        let again = executor(host).execute(plan: plan, desired: Fixture.desired([a]))
        #expect(again.exitCode == .converged)
        #expect(host.calls.count == 3)
        #expect(again.actions.allSatisfy { $0.status == .skipped })
        #expect(again.patches.first?.processes.map(\.outcome) == [.alreadyActive, .alreadyActive])
    }

    @Test func failureUndoesInReverseOrderExit4() throws {
        defer { try? FileManager.default.removeItem(at: root) }
        let host = FakeHost()
        host.addProcess(10); host.addProcess(11)
        let a = Fixture.bundle("fix-a"), k = Fixture.bundle("klp-b", kind: .kernel)
        host.kernelFailures["kactivate livepatch_klp_b"] = .syscallFailed
        let plan = Plan(actions: [Fixture.install(a), Fixture.activate(a, pid: 10), Fixture.activate(a, pid: 11),
                                  Fixture.install(k), Fixture.activate(k), Fixture.install(Fixture.bundle("never"))])
        let report = executor(host).execute(plan: plan, desired: Fixture.desired([a, k]))
        #expect(report.exitCode == .rolledBack)
        #expect(host.calls == ["install fix-a", "activate fix-a 10", "activate fix-a 11", "install klp-b",
                               "kactivate livepatch_klp_b",
                               "remove klp-b", "deactivate fix-a 11", "deactivate fix-a 10", "remove fix-a"])
        #expect(host.installedUUIDs().isEmpty && host.live(10).isEmpty && host.live(11).isEmpty)
        #expect(report.actions.map(\.status) == [.undone, .undone, .undone, .undone, .failed, .notRun])
        #expect(report.patches.first?.processes.map(\.outcome) == [.reverted, .reverted])
        #expect(report.summary.contains("exit 4"))
        #expect(ApplyJournal.inspect(paths: paths) == nil)
    }

    @Test func failedUndoExit5NamesWhatNeedsAHuman() throws {
        defer { try? FileManager.default.removeItem(at: root) }
        let host = FakeHost()
        host.addProcess(10); host.addProcess(11)
        let a = Fixture.bundle("fix-a")
        host.userFailures["activate fix-a 11"] = .foreignModification
        host.userFailures["deactivate fix-a 10"] = .busy
        let plan = Plan(actions: [Fixture.install(a), Fixture.activate(a, pid: 10), Fixture.activate(a, pid: 11)])
        let report = executor(host).execute(plan: plan, desired: Fixture.desired([a]))
        #expect(report.exitCode == .rollbackIncomplete)
        #expect(report.needsAttention.count == 1)
        #expect(report.needsAttention[0].contains("pid 10") && report.needsAttention[0].contains("fix-a")
                && report.needsAttention[0].contains("suture patch deactivate"))
        #expect(report.actions[1].status == .undoFailed)
        #expect(report.actions[1].processOutcome == .revertFailed)
        #expect(report.text.contains("Needs a human:"))
    }

    @Test(arguments: [StallPolicy.revert, .wait, .fail])
    func stalledKernelTransitionExit6(policy: StallPolicy) throws {
        defer { try? FileManager.default.removeItem(at: root) }
        let host = FakeHost()
        host.addProcess(10)
        let a = Fixture.bundle("fix-a"), k = Fixture.bundle("klp-b", kind: .kernel)
        host.setInstalled(k)
        host.kernelFailures["kactivate livepatch_klp_b"] = .stalled
        let plan = Plan(actions: [Fixture.install(a), Fixture.activate(a, pid: 10), Fixture.activate(k)])
        let report = executor(host).execute(plan: plan, desired: Fixture.desired([a, k], onStall: policy))
        #expect(report.exitCode == .stalled)
        #expect(report.summary.contains("onStall: \(policy.rawValue)"))
        if policy == .revert {
            #expect(host.live(10).isEmpty)
            #expect(report.rollback.count == 2)
        } else {
            #expect(host.live(10) == [a.metadata.uuid])
            #expect(report.rollback.isEmpty)
            #expect(host.kernelEnabled("livepatch_klp_b") == true)
        }
    }

    @Test func allOrNothingPerPatchByDefault() throws {
        defer { try? FileManager.default.removeItem(at: root) }
        let host = FakeHost()
        for pid: Int32 in [10, 11, 12, 13] { host.addProcess(pid) }
        let a = Fixture.bundle("fix-a")
        host.killProcess(11)                               // exited: not a failure
        host.userFailures["activate fix-a 12"] = .notApplicable   // not a failure
        host.userFailures["activate fix-a 13"] = .busy
        let plan = Plan(actions: [Fixture.install(a)] + [10, 11, 12, 13].map { Fixture.activate(a, pid: $0) })
        let report = executor(host).execute(plan: plan, desired: Fixture.desired([a]))
        #expect(report.exitCode == .rolledBack)
        #expect(host.live(10).isEmpty)
        let outcomes = report.patches.first?.processes.map(\.outcome)
        #expect(outcomes == [.reverted, .exited, .notApplicable, .failed])
        #expect(report.patches.first?.processes.last?.detail?.contains("BUSY") == true)
    }

    @Test(arguments: [true, false])
    func partialAcceptedWithFlagOrManifest(viaFlag: Bool) throws {
        defer { try? FileManager.default.removeItem(at: root) }
        let host = FakeHost()
        for pid: Int32 in [10, 11, 12] { host.addProcess(pid) }
        let a = Fixture.bundle("fix-a")
        host.userFailures["activate fix-a 11"] = .busy
        let plan = Plan(actions: [Fixture.install(a)] + [10, 11, 12].map { Fixture.activate(a, pid: $0) })
        let report = executor(host, allowPartial: viaFlag)
            .execute(plan: plan, desired: Fixture.desired([a], allowPartial: !viaFlag))
        #expect(report.exitCode == .converged)
        #expect(report.patches.first?.partial == true)
        #expect(report.patches.first?.processes.map(\.outcome) == [.activated, .failed, .activated])
        #expect(host.live(10) == [a.metadata.uuid] && host.live(11).isEmpty && host.live(12) == [a.metadata.uuid])
        #expect(report.summary.contains("Partial"))
    }

    @Test func partialStillFailsWhenNoProcessGotThePatch() throws {
        defer { try? FileManager.default.removeItem(at: root) }
        let host = FakeHost()
        host.addProcess(10)
        let a = Fixture.bundle("fix-a")
        host.userFailures["activate fix-a 10"] = .busy
        let plan = Plan(actions: [Fixture.install(a), Fixture.activate(a, pid: 10)])
        let report = executor(host, allowPartial: true).execute(plan: plan, desired: Fixture.desired([a]))
        #expect(report.exitCode == .rolledBack)
        #expect(host.installedUUIDs().isEmpty)
    }

    @Test func levelTriggeredSkipsWhatIsAlreadyLive() throws {
        defer { try? FileManager.default.removeItem(at: root) }
        let host = FakeHost()
        let a = Fixture.bundle("fix-a"), k = Fixture.bundle("klp-b", kind: .kernel)
        host.setInstalled(a); host.setInstalled(k)
        host.addProcess(10, live: [a.metadata.uuid: "active"])
        host.addProcess(11)
        host.setKernel("livepatch_klp_b", enabled: true)
        let plan = Plan(actions: [Fixture.install(a), Fixture.activate(a, pid: 10), Fixture.activate(a, pid: 11),
                                  Fixture.activate(k), Fixture.deactivate(a, pid: 99)])
        let report = executor(host).execute(plan: plan, desired: Fixture.desired([a, k]))
        #expect(report.exitCode == .converged)
        #expect(host.calls == ["activate fix-a 11"])
        #expect(report.actions.map(\.status) == [.skipped, .skipped, .done, .skipped, .skipped])
    }

    @Test func removalIsReinstalledOnRollback() throws {
        defer { try? FileManager.default.removeItem(at: root) }
        let host = FakeHost()
        host.addProcess(10)
        let old = try realBundle("old-fix"), new = Fixture.bundle("new-fix")
        host.setInstalled(old)
        host.addProcess(10, live: [old.metadata.uuid: "active"])
        host.storeFailures = ["install new-fix"]
        let plan = Plan(actions: [Fixture.deactivate(old, pid: 10), Fixture.remove(old), Fixture.install(new)])
        var desired = Fixture.desired([old, new])
        desired.patches[0].state = .absent
        let report = executor(host).execute(plan: plan, desired: desired)
        #expect(report.exitCode == .rolledBack)
        #expect(host.installedUUIDs() == [old.metadata.uuid])
        #expect(host.live(10) == [old.metadata.uuid])
        #expect(host.calls.suffix(2) == ["install old-fix", "activate old-fix 10"])
        #expect(report.failure?.contains("payload sha256 mismatch") == true)
        // The stash is gone once the run ended.
        let trash = (try? FileManager.default.contentsOfDirectory(atPath: paths.trash)) ?? []
        #expect(trash.isEmpty)
    }

    @Test func planErrorsChangeNothing() throws {
        defer { try? FileManager.default.removeItem(at: root) }
        let host = FakeHost()
        let a = Fixture.bundle("fix-a")
        let plan = Plan(actions: [Fixture.install(a)], errors: [Diagnostic(.error, "target package demo 2.0 not installed")])
        let report = executor(host).execute(plan: plan, desired: Fixture.desired([a]))
        #expect(report.exitCode == .error)
        #expect(host.calls.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: paths.journal))
    }

    @Test func interruptedJournalIsReportedAndOrphansCleaned() throws {
        defer { try? FileManager.default.removeItem(at: root) }
        let host = FakeHost()
        let a = Fixture.bundle("fix-a")
        host.setInstalled(a)
        // pid 10: an activation that never committed; pid 11: a region of a patch the store lacks that the
        // interrupted run was working on; pid 12: a foreign region nobody explains (left alone).
        let ghost = Fixture.bundle("ghost")
        host.addProcess(10, live: [a.metadata.uuid: "prepared"])
        host.addProcess(11, live: [ghost.metadata.uuid: "active"])
        host.addProcess(12, live: ["99999999-0000-4000-8000-000000000000": "active"])
        // The killed run's journal: it began activating in pid 10 and never finished.
        let j = ApplyJournal(paths: paths)
        try j.begin(holder: LockHolder(pid: 4242, command: "suture apply m", started: "2026-11-29T19:00:00Z"))
        try j.append(JournalRecord(seq: 0, event: .actionBegin, index: 0, action: Fixture.remove(ghost)))
        try j.append(JournalRecord(seq: 0, event: .actionEnd, index: 0, action: Fixture.remove(ghost), result: "done"))
        try j.append(JournalRecord(seq: 0, event: .actionBegin, index: 1, action: Fixture.activate(a, pid: 10)))

        let ex = executor(host)
        let interrupted = try #require(ex.inspectJournal())
        #expect(interrupted.holder?.pid == 4242)
        #expect(interrupted.unfinished.map(\.pid) == [10])
        #expect(interrupted.finished.map(\.kind) == [.remove])
        #expect(interrupted.description.contains("interrupted"))

        let orphans = ex.cleanOrphans(live: host.liveState())
        #expect(orphans.map(\.pid) == [10, 11])
        #expect(orphans.allSatisfy { $0.result == "cleaned" })
        #expect(host.live(10).isEmpty && host.live(11).isEmpty && host.live(12).count == 1)

        // Converge: activate in pid 10 (now clean) exactly once.
        let plan = Plan(actions: [Fixture.activate(a, pid: 10)])
        let report = ex.execute(plan: plan, desired: Fixture.desired([a]), orphans: orphans)
        #expect(report.exitCode == .converged)
        #expect(report.interrupted?.holder?.pid == 4242)
        #expect(report.text.contains("was interrupted"))
        #expect(host.calls.filter { $0 == "activate fix-a 10" }.count == 1)
        #expect(ApplyJournal.inspect(paths: paths) == nil)
    }

    @Test func interruptedJournalClearedEvenWithNothingToDo() throws {
        defer { try? FileManager.default.removeItem(at: root) }
        let j = ApplyJournal(paths: paths)
        try j.begin(holder: LockHolder(pid: 1, command: "x", started: "t"))
        #expect(ApplyJournal.inspect(paths: paths) != nil)
        let ex = executor(FakeHost())
        #expect(ex.inspectJournal() != nil)
        let report = ex.execute(plan: Plan(), desired: DesiredState(patches: []))
        #expect(report.exitCode == .converged && report.summary.hasPrefix("No changes"))
        #expect(ApplyJournal.inspect(paths: paths) == nil)
    }

    @Test func journalRecordsEveryActionBeforeAndAfter() throws {
        defer { try? FileManager.default.removeItem(at: root) }
        let host = FakeHost()
        host.addProcess(10)
        let a = Fixture.bundle("fix-a")
        let plan = Plan(actions: [Fixture.install(a), Fixture.activate(a, pid: 10)])
        _ = executor(host).execute(plan: plan, desired: Fixture.desired([a]))
        let lines = try String(contentsOfFile: paths.journal, encoding: .utf8).split(separator: "\n")
        let records = try lines.map { try JSONDecoder().decode(JournalRecord.self, from: Data($0.utf8)) }
        #expect(records.map(\.event) == [.runBegin, .actionBegin, .actionEnd, .actionBegin, .actionEnd, .runEnd])
        #expect(records.map(\.seq) == [1, 2, 3, 4, 5, 6])
        #expect(records.last?.exitCode == 0)
    }
}
