import Foundation
import SutureCore
import Testing

/// The executor's bookkeeping as a value: partial success, rollback order, exit codes 0/4/5/6 and the
/// closed set of failure codes, without drivers or a host.
@Suite struct ExecutionLedgerTests {
    let a = Fixture.bundle("fix-a"), b = Fixture.bundle("fix-b"), k = Fixture.bundle("klp-c", kind: .kernel)

    @Test func emptyPlanConvergesWithNoChanges() {
        let ledger = ExecutionLedger<String>(actions: [], allowPartial: false)
        let (code, summary) = ledger.verdict(stallPolicy: nil, stallLeftRunning: false)
        #expect(code == .converged && code.rawValue == 0)
        #expect(summary == "No changes. The live state matches the desired state.")
        #expect(!ledger.shouldUndo(stallLeftRunning: false))
    }

    @Test func doneAndSkippedConvergeAndCountInTheSummary() {
        var ledger = ExecutionLedger<String>(
            actions: [
                Fixture.install(a), Fixture.activate(a, pid: 10),
                Fixture.activate(a, pid: 11),
            ], allowPartial: false)
        ledger.done(0, outcome: nil, undo: ["remove a"])
        ledger.done(1, outcome: .activated, undo: ["deactivate a 10"])
        ledger.skipped(2, outcome: .alreadyActive, detail: "already live in the process")
        ledger.closeActions()
        let report = ledger.report(stallPolicy: nil, stallLeftRunning: false, interrupted: nil, orphans: [])
        #expect(report.exitCode == .converged)
        #expect(report.summary == "Apply complete: 2 done, 1 already done or not needed.")
        #expect(report.patches.map(\.processes.count) == [2])
        #expect(report.patches.first?.processes.map(\.outcome) == [.activated, .alreadyActive])
        #expect(report.failure == nil && report.rollback.isEmpty)
    }

    @Test func failureUndoesLastDoneFirstAndMarksTheRestNotRunExit4() {
        let actions = [
            Fixture.install(a), Fixture.activate(a, pid: 10), Fixture.install(b), Fixture.activate(b, pid: 10),
            Fixture.install(k),
        ]
        var ledger = ExecutionLedger<String>(actions: actions, allowPartial: false)
        ledger.done(0, outcome: nil, undo: ["remove a"])
        ledger.done(1, outcome: .activated, undo: ["deactivate a 10"])
        ledger.done(2, outcome: nil, undo: ["remove b"])
        ledger.failed(3, outcome: .failed, code: ActionErrorCode(UserPatchErrorCode.busy), detail: "BUSY: pid 10")
        #expect(ledger.stopped)
        ledger.closeActions()
        #expect(ledger.shouldUndo(stallLeftRunning: false))
        #expect(ledger.undoOrder.map(\.index) == [2, 1, 0])
        #expect(ledger.undoOrder.flatMap(\.steps) == ["remove b", "deactivate a 10", "remove a"])
        for entry in ledger.undoOrder { ledger.undone(entry, problems: []) }
        let report = ledger.report(stallPolicy: nil, stallLeftRunning: false, interrupted: nil, orphans: [])
        #expect(report.exitCode == .rolledBack && report.exitCode.rawValue == 4)
        #expect(report.actions.map(\.status) == [.undone, .undone, .undone, .failed, .notRun])
        #expect(report.actions[1].processOutcome == .reverted)
        #expect(report.actions[3].errorCode == .busy)
        #expect(report.rollback.map(\.index) == [2, 1, 0])
        #expect(report.summary.hasSuffix("Rolled back 3 action(s); the host is as before (exit 4)."))
        #expect(report.failure?.hasSuffix("BUSY: pid 10") == true)
    }

    @Test func anUndoThatFailsNeedsAHumanExit5() {
        var ledger = ExecutionLedger<String>(
            actions: [Fixture.deactivate(a, pid: 10), Fixture.install(b)],
            allowPartial: false)
        ledger.done(0, outcome: .deactivated, undo: ["activate a 10"])
        ledger.failed(1, outcome: nil, code: .install, detail: "disk full")
        ledger.closeActions()
        for entry in ledger.undoOrder { ledger.undone(entry, problems: ["pid 10: could not re-activate"]) }
        let report = ledger.report(stallPolicy: nil, stallLeftRunning: false, interrupted: nil, orphans: [])
        #expect(report.exitCode == .rollbackIncomplete && report.exitCode.rawValue == 5)
        #expect(report.needsAttention == ["pid 10: could not re-activate"])
        #expect(report.actions.map(\.status) == [.undoFailed, .failed])
        #expect(report.actions[0].processOutcome == .revertFailed)
        #expect(report.summary.contains("Rollback is INCOMPLETE: 1 item(s) need a human (exit 5)."))
    }

    @Test func attentionFromInsideTheFailedActionIsExit5EvenWhenEveryUndoWorked() {
        var ledger = ExecutionLedger<String>(actions: [Fixture.activate(k)], allowPartial: true)
        ledger.failed(
            0, outcome: nil, code: ActionErrorCode(KernelPatchError.Kind.syscallFailed), detail: "EPERM",
            attention: ["livepatch still loaded"])
        ledger.closeActions()
        #expect(ledger.verdict(stallPolicy: nil, stallLeftRunning: false).0 == .rollbackIncomplete)
    }

    @Test(arguments: [(leftRunning: true, undo: false), (leftRunning: false, undo: true)])
    func aStallIsExit6AndUndoesOnlyWhenTheTransitionWasReversed(leftRunning: Bool, undo: Bool) {
        var ledger = ExecutionLedger<String>(actions: [Fixture.install(k), Fixture.activate(k)], allowPartial: false)
        ledger.done(0, outcome: nil, undo: ["remove k"])
        ledger.failed(1, outcome: nil, code: .stalled, detail: "transition stalled", stalled: true)
        ledger.closeActions()
        #expect(ledger.shouldUndo(stallLeftRunning: leftRunning) == undo)
        if undo { for entry in ledger.undoOrder { ledger.undone(entry, problems: []) } }
        let (code, summary) = ledger.verdict(stallPolicy: leftRunning ? .wait : .revert, stallLeftRunning: leftRunning)
        #expect(code == .stalled && code.rawValue == 6)
        #expect(
            summary.contains(
                leftRunning
                    ? "onStall: wait (transition left running), earlier actions kept"
                    : "onStall: revert (transition reversed), earlier actions rolled back"))
    }

    @Test func partialSuccessIsAcceptedWhenTheProcessesThatFailedAreNotAll() {
        var ledger = ExecutionLedger<String>(
            actions: [Fixture.activate(a, pid: 10), Fixture.activate(a, pid: 11)],
            allowPartial: false, partialAllowedUUIDs: [a.metadata.uuid])
        ledger.failed(0, outcome: .failed, code: .busy, detail: "BUSY")
        #expect(!ledger.stopped)
        ledger.done(1, outcome: .activated, undo: [])
        ledger.closeActions()
        let report = ledger.report(stallPolicy: nil, stallLeftRunning: false, interrupted: nil, orphans: [])
        #expect(report.exitCode == .converged)
        #expect(report.actions.map(\.status) == [.failedAccepted, .done])
        #expect(report.patches.first?.partial == true)
        #expect(report.summary == "Apply complete: 1 done, 0 already done or not needed, Partial: 1 patch(es).")
    }

    @Test func partialSuccessNeedsOneLiveProcess() {
        var ledger = ExecutionLedger<String>(
            actions: [Fixture.activate(a, pid: 10), Fixture.activate(a, pid: 11)],
            allowPartial: true)
        ledger.failed(0, outcome: .failed, code: .busy, detail: "BUSY")
        ledger.failed(1, outcome: .failed, code: .permission, detail: "PERMISSION")
        ledger.closeActions()
        #expect(ledger.failure?.index == 0 && ledger.failure?.code == .busy)
        #expect(ledger.failure?.detail == "fix-a: activation failed in every matching process")
        let report = ledger.report(stallPolicy: nil, stallLeftRunning: false, interrupted: nil, orphans: [])
        #expect(report.exitCode == .rolledBack)
        #expect(report.actions.map(\.status) == [.failed, .failedAccepted])
    }

    @Test func withoutPartialSuccessTheFirstFailedProcessStopsTheRun() {
        var ledger = ExecutionLedger<String>(
            actions: [Fixture.activate(a, pid: 10), Fixture.activate(a, pid: 11)],
            allowPartial: false, partialAllowedUUIDs: [b.metadata.uuid])
        ledger.failed(0, outcome: .failed, code: .busy, detail: "BUSY")
        #expect(ledger.stopped)
        ledger.closeActions()
        let report = ledger.report(stallPolicy: nil, stallLeftRunning: false, interrupted: nil, orphans: [])
        #expect(report.actions.map(\.status) == [.failed, .notRun])
        #expect(report.actions[1].processOutcome == .notRun)
    }

    @Test func aJournalFailureIsNotRunAndStopsTheRun() {
        var ledger = ExecutionLedger<String>(actions: [Fixture.install(a), Fixture.install(b)], allowPartial: false)
        ledger.couldNotStart(0, code: .journal, detail: "read-only file system")
        ledger.closeActions()
        let report = ledger.report(stallPolicy: nil, stallLeftRunning: false, interrupted: nil, orphans: [])
        #expect(report.exitCode == .rolledBack)
        #expect(report.actions.map(\.status) == [.notRun, .notRun])
        #expect(report.rollback.isEmpty)
    }

    @Test(arguments: UserPatchErrorCode.allCases)
    func everyEngineCodeIsAnActionCodeSpelledTheSame(code: UserPatchErrorCode) {
        #expect(ActionErrorCode(code).rawValue == code.rawValue)
    }

    @Test(arguments: KernelPatchError.Kind.allCases)
    func everyKernelDriverKindIsAnActionCodeSpelledTheSame(kind: KernelPatchError.Kind) {
        #expect(ActionErrorCode(kind).rawValue == kind.rawValue)
    }

    @Test func errorCodesEncodeAsTheirSpellingInTheReportJSON() throws {
        let report = ActionReport(index: 0, action: Fixture.install(a), status: .failed, errorCode: .noBundle)
        let json = String(decoding: try JSONEncoder().encode(report), as: UTF8.self)
        #expect(json.contains("\"error_code\":\"NO_BUNDLE\""))
        #expect(try JSONDecoder().decode(ActionReport.self, from: Data(json.utf8)).errorCode == .noBundle)
    }
}
