/// The bookkeeping of one run of a plan, without any driver: which actions were done (with the steps that
/// undo them), skipped, failed or accepted as Partial; whether a Partial patch became live anywhere; the
/// order of the rollback; and the exit code and summary of the run.
///
/// ``PlanExecutor`` performs the actions and the undo steps and records each result here; everything this
/// type decides is a pure function of those records, so it is unit-tested without a host.
///
/// - `Undo` is whatever undoes one done action (the executor's driver calls; strings in tests).
public struct ExecutionLedger<Undo: Sendable>: Sendable {
    /// The first failure that stops the run.
    public struct Failure: Sendable, Hashable {
        /// Index of the failed action in the plan.
        public var index: Int
        /// Why it failed.
        public var code: ActionErrorCode
        /// The error text.
        public var detail: String
        /// True when a kernel transition stalled (exit 6 unless the rollback is incomplete).
        public var stalled: Bool
    }

    /// One done action and the steps that undo it (performed in reverse).
    public struct UndoEntry: Sendable {
        /// Index in the plan.
        public var index: Int
        /// The action.
        public var action: PlanAction
        /// Undo steps in the order they were recorded (the rollback runs them last first).
        public var steps: [Undo]
    }

    /// The plan's actions.
    public let actions: [PlanAction]
    /// `--allow-partial` for every patch.
    public let allowPartial: Bool
    /// Patch uuids whose manifest entry says `allowPartial: true`.
    public let partialAllowedUUIDs: Set<String>

    /// Reports of the actions recorded so far (plan order, except notRun fillers appended by `close`).
    public private(set) var reports: [ActionReport] = []
    /// Done actions, in the order they were done.
    public private(set) var undoStack: [UndoEntry] = []
    /// The failure that stopped the run, when any.
    public private(set) var failure: Failure?
    /// What needs a human (exit 5), in the order found.
    public private(set) var attention: [String] = []
    /// Patches accepted as Partial.
    public private(set) var partialUUIDs = Set<String>()
    /// Undo steps performed, in the order performed.
    public private(set) var rollback: [ActionReport] = []
    /// False once any undo failed.
    public private(set) var undoSucceeded = true

    /// A ledger for `actions`; `allowPartial` and `partialAllowedUUIDs` decide which user activation
    /// failures are accepted as Partial.
    public init(actions: [PlanAction], allowPartial: Bool, partialAllowedUUIDs: Set<String> = []) {
        self.actions = actions
        self.allowPartial = allowPartial
        self.partialAllowedUUIDs = partialAllowedUUIDs
    }

    /// True once a failure stops the run (no further action is performed).
    public var stopped: Bool { failure != nil }

    /// Records action `index` as done; `undo` are the steps that reverse it.
    @discardableResult
    public mutating func done(_ index: Int, outcome: ProcessOutcome?, undo: [Undo], detail: String? = nil)
        -> ActionReport
    {
        let report = ActionReport(
            index: index, action: actions[index], status: .done, processOutcome: outcome,
            detail: detail)
        reports.append(report)
        undoStack.append(UndoEntry(index: index, action: actions[index], steps: undo))
        return report
    }

    /// Records action `index` as not needed (already done, process exited, not applicable).
    @discardableResult
    public mutating func skipped(_ index: Int, outcome: ProcessOutcome?, detail: String) -> ActionReport {
        let report = ActionReport(
            index: index, action: actions[index], status: .skipped, processOutcome: outcome,
            detail: detail)
        reports.append(report)
        return report
    }

    /// Records that action `index` failed. A user activation in one process that failed without a stall
    /// and without anything needing a human is accepted as Partial when partial success is allowed for its
    /// patch (`failed_accepted`); any other failure stops the run.
    /// - Parameter attention: what needs a human because of this failure (undo inside the action failed).
    @discardableResult
    public mutating func failed(
        _ index: Int, outcome: ProcessOutcome?, code: ActionErrorCode, detail: String,
        attention extra: [String] = [], stalled: Bool = false
    ) -> ActionReport {
        let action = actions[index]
        attention += extra
        let partialOK =
            action.patchKind == .user && action.kind == .activate && action.pid != nil
            && !stalled && extra.isEmpty && (allowPartial || partialAllowedUUIDs.contains(action.uuid))
        let report = ActionReport(
            index: index, action: action, status: partialOK ? .failedAccepted : .failed,
            processOutcome: outcome, errorCode: code, detail: detail)
        if partialOK {
            partialUUIDs.insert(action.uuid)
        } else {
            failure = Failure(index: index, code: code, detail: detail, stalled: stalled)
        }
        reports.append(report)
        return report
    }

    /// Records that action `index` could not even start (`code`, e.g. the journal could not be written):
    /// it is `not_run`, and the run stops.
    public mutating func couldNotStart(_ index: Int, code: ActionErrorCode, detail: String) {
        failure = Failure(index: index, code: code, detail: detail, stalled: false)
        reports.append(ActionReport(index: index, action: actions[index], status: .notRun, detail: detail))
    }

    /// Ends the action phase: a Partial patch must be live in at least one process (else its first
    /// accepted failure becomes the run's failure), and every action after a failure is `not_run`.
    public mutating func closeActions() {
        if failure == nil {
            for uuid in partialUUIDs.sorted() {
                let mine = reports.filter {
                    $0.action.uuid == uuid && $0.action.kind == .activate && $0.action.pid != nil
                }
                let live = mine.contains { $0.processOutcome == .activated || $0.processOutcome == .alreadyActive }
                if !live, let first = mine.first(where: { $0.status == .failedAccepted }) {
                    failure = Failure(
                        index: first.index, code: first.errorCode ?? .failed,
                        detail: "\(first.action.patch): activation failed in every matching process",
                        stalled: false)
                    if let i = reports.firstIndex(where: { $0.index == first.index }) { reports[i].status = .failed }
                    break
                }
            }
        }
        if let failure, failure.index + 1 < actions.count {
            for i in (failure.index + 1)..<actions.count where !reports.contains(where: { $0.index == i }) {
                reports.append(
                    ActionReport(
                        index: i, action: actions[i], status: .notRun,
                        processOutcome: actions[i].pid != nil ? .notRun : nil))
            }
        }
    }

    /// Whether the done actions are to be undone: after a failure, except a stall whose transition was
    /// left running (`onStall: wait|fail` blocks every other livepatch change: everything is left).
    public func shouldUndo(stallLeftRunning: Bool) -> Bool {
        guard let failure else { return false }
        return !(failure.stalled && stallLeftRunning)
    }

    /// The rollback order: the done actions, last done first.
    public var undoOrder: [UndoEntry] { undoStack.reversed() }

    /// Records the result of undoing done action `entry` (`problems` empty: undone): the action becomes
    /// `undone` or `undo_failed`, a user action's process outcome `reverted` (activation) / `activated`
    /// (deactivation) or `revert_failed`, and each problem needs a human.
    @discardableResult
    public mutating func undone(_ entry: UndoEntry, problems: [String]) -> ActionReport {
        let ok = problems.isEmpty
        undoSucceeded = undoSucceeded && ok
        attention += problems
        let detail = ok ? nil : problems.joined(separator: "; ")
        let report = ActionReport(
            index: entry.index, action: entry.action, status: ok ? .undone : .undoFailed,
            detail: detail)
        rollback.append(report)
        if let i = reports.firstIndex(where: { $0.index == entry.index }) {
            reports[i].status = ok ? .undone : .undoFailed
            if reports[i].action.pid != nil {
                reports[i].processOutcome =
                    ok
                    ? (reports[i].action.kind == .activate ? .reverted : .activated) : .revertFailed
            }
        }
        return report
    }

    /// The exit code and one-line summary of the run.
    /// - Parameters:
    ///   - stallPolicy: the `onStall` policy of the patch whose transition stalled (exit 6 text).
    ///   - stallLeftRunning: whether the stalled transition was left running.
    public func verdict(stallPolicy: StallPolicy?, stallLeftRunning: Bool) -> (ApplyExitCode, String) {
        if let failure {
            let what = "\(describe(actions[failure.index])) failed: \(failure.detail)"
            if !attention.isEmpty || !undoSucceeded {
                return (
                    .rollbackIncomplete,
                    "Error: \(what). Rollback is INCOMPLETE: \(attention.count) item(s) need a human (exit 5)."
                )
            }
            if failure.stalled {
                let policy = stallPolicy ?? .revert
                return (
                    .stalled,
                    "Error: \(what). Kernel transition stalled; handled per onStall: \(policy.rawValue)"
                        + (stallLeftRunning
                            ? " (transition left running), earlier actions kept"
                            : " (transition reversed), earlier actions rolled back") + " (exit 6)."
                )
            }
            return (
                .rolledBack,
                "Error: \(what). Rolled back \(rollback.count) action(s); the host is as before (exit 4)."
            )
        }
        if actions.isEmpty { return (.converged, "No changes. The live state matches the desired state.") }
        let done = reports.filter { $0.status == .done }.count
        let skipped = reports.filter { $0.status == .skipped }.count
        var s = "Apply complete: \(done) done, \(skipped) already done or not needed"
        if !partialUUIDs.isEmpty { s += ", Partial: \(partialUUIDs.count) patch(es)" }
        return (.converged, s + ".")
    }

    /// The per-patch process lists of user actions (plan order), Partial patches marked.
    public var processSummary: [PatchProcesses] {
        var order: [String] = []
        var groups: [String: PatchProcesses] = [:]
        for r in reports {
            guard let pid = r.action.pid, let outcome = r.processOutcome else { continue }
            if groups[r.action.uuid] == nil {
                order.append(r.action.uuid)
                groups[r.action.uuid] = PatchProcesses(
                    patch: r.action.patch, uuid: r.action.uuid,
                    partial: partialUUIDs.contains(r.action.uuid), processes: [])
            }
            groups[r.action.uuid]?.processes.append(
                .init(
                    pid: pid, comm: r.action.comm ?? "", kind: r.action.kind,
                    outcome: outcome, detail: r.errorCode == nil ? nil : r.detail))
        }
        return order.compactMap { groups[$0] }
    }

    /// The report of the run (actions sorted by plan index).
    public func report(
        stallPolicy: StallPolicy?, stallLeftRunning: Bool, interrupted: InterruptedRun?,
        orphans: [OrphanReport]
    ) -> ApplyReport {
        let (exitCode, summary) = verdict(stallPolicy: stallPolicy, stallLeftRunning: stallLeftRunning)
        return ApplyReport(
            exitCode: exitCode, summary: summary, interrupted: interrupted, orphans: orphans,
            actions: reports.sorted { $0.index < $1.index }, rollback: rollback,
            patches: processSummary, needsAttention: attention,
            failure: failure.map { "\(describe(actions[$0.index])): \($0.detail)" })
    }
}
