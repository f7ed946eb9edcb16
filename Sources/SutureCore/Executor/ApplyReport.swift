import Foundation

/// Exit codes of `suture apply`, `suture rollback` and `suture reconcile` (documented in `--help`).
///
/// Modelled on Puppet's `--detailed-exitcodes` and the reconcilers survey (C.18): 1 stays "error", so
/// "non-zero = fail" pipelines keep working.
public enum ApplyExitCode: Int32, Codable, Sendable, Hashable, CaseIterable {
    /// The host converged (with or without changes; user patches may be Partial when allowed).
    case converged = 0
    /// An error before any change (bad input, plan errors, stale saved plan, busy lock).
    case error = 1
    /// An action failed and every action done in this run was undone.
    case rolledBack = 4
    /// An action failed and undoing failed too: the report names what needs a human.
    case rollbackIncomplete = 5
    /// A kernel transition stalled and was left (or reverted) per its `onStall` policy.
    case stalled = 6

    /// The `--help` paragraph listing every code.
    public static let helpText = """
        Exit codes: 0 converged (with or without changes); 1 error before any change (bad input, plan \
        errors, stale saved plan, lock held by another run); 4 an action failed and the actions done in \
        this run were rolled back; 5 an action failed and rollback is incomplete (the output names exactly \
        what needs a human); 6 a kernel transition stalled and was left per the patch's onStall policy.
        """
}

/// What happened to one plan action.
public enum ActionStatus: String, Codable, Sendable, Hashable {
    /// Performed.
    case done
    /// Not needed: the live state already had it (level-triggered), or the process had exited.
    case skipped
    /// Failed; see `detail`.
    case failed
    /// Failed, but accepted as Partial (`--allow-partial` / `allowPartial`).
    case failedAccepted = "failed_accepted"
    /// Performed, then undone by the rollback.
    case undone
    /// Performed; undoing it failed (needs a human).
    case undoFailed = "undo_failed"
    /// Not attempted because an earlier action failed.
    case notRun = "not_run"
}

/// The outcome of a user-patch action in one process, as listed in output and JSON.
public enum ProcessOutcome: String, Codable, Sendable, Hashable {
    case activated, alreadyActive = "already_active", deactivated, notPresent = "not_present",
         exited, notApplicable = "not_applicable", failed, reverted, revertFailed = "revert_failed",
         notRun = "not_run"
}

/// One executed (or skipped, or failed) action with its result.
public struct ActionReport: Codable, Sendable, Hashable {
    /// Index in the plan.
    public var index: Int
    /// The action.
    public var action: PlanAction
    /// What happened.
    public var status: ActionStatus
    /// For user-patch actions: the outcome in the process.
    public var processOutcome: ProcessOutcome?
    /// The error code (`BUSY`, `STALLED`, …) when it failed.
    public var errorCode: ActionErrorCode?
    /// Explanation (skip reason, error text).
    public var detail: String?

    /// Memberwise initializer.
    public init(index: Int, action: PlanAction, status: ActionStatus, processOutcome: ProcessOutcome? = nil,
                errorCode: ActionErrorCode? = nil, detail: String? = nil) {
        self.index = index
        self.action = action
        self.status = status
        self.processOutcome = processOutcome
        self.errorCode = errorCode
        self.detail = detail
    }

    enum CodingKeys: String, CodingKey {
        case index, action, status, processOutcome = "process_outcome", errorCode = "error_code", detail
    }
}

/// Per user patch: every process the run touched, with its outcome.
public struct PatchProcesses: Codable, Sendable, Hashable {
    /// One process.
    public struct Entry: Codable, Sendable, Hashable {
        /// Process id.
        public var pid: Int32
        /// comm.
        public var comm: String
        /// `activate` or `deactivate`.
        public var kind: ActionKind
        /// Outcome.
        public var outcome: ProcessOutcome
        /// Error text, when any.
        public var detail: String?
    }
    /// Patch name.
    public var patch: String
    /// Patch uuid.
    public var uuid: String
    /// True when some activations failed and partial success was accepted.
    public var partial: Bool
    /// The processes, in plan order.
    public var processes: [Entry]
}

/// A `suture:` region the run found orphaned and what it did about it.
public struct OrphanReport: Codable, Sendable, Hashable {
    /// Process id.
    public var pid: Int32
    /// comm.
    public var comm: String
    /// Patch uuid of the region.
    public var uuid: String
    /// Why it is an orphan (`header PREPARED`, `patch not in the store`).
    public var reason: String
    /// `cleaned`, `exited`, or `failed: …`.
    public var result: String
}

/// The result of a run: what `suture apply --json` prints (`format_version` 1).
public struct ApplyReport: Codable, Sendable, Hashable {
    /// JSON format version (1).
    public var formatVersion: Int = 1
    /// The exit code.
    public var exitCode: ApplyExitCode
    /// One line: `converged: 3 done, 1 skipped`, `failed and rolled back: …`.
    public var summary: String
    /// The previous run, when its journal showed it was interrupted.
    public var interrupted: InterruptedRun?
    /// Orphan regions found and cleaned before the plan ran.
    public var orphans: [OrphanReport]
    /// Every action of the plan with its status, in plan order.
    public var actions: [ActionReport]
    /// Undo steps performed by the rollback, in the order performed.
    public var rollback: [ActionReport]
    /// User patches: every process with its outcome.
    public var patches: [PatchProcesses]
    /// What needs a human (exit 5), each naming the patch, the process or module, and what to run.
    public var needsAttention: [String]
    /// The first failure, when any.
    public var failure: String?
    /// The generation recorded by this run, when one was.
    public var generation: Int?

    /// Memberwise initializer.
    public init(exitCode: ApplyExitCode, summary: String, interrupted: InterruptedRun? = nil,
                orphans: [OrphanReport] = [], actions: [ActionReport] = [], rollback: [ActionReport] = [],
                patches: [PatchProcesses] = [], needsAttention: [String] = [], failure: String? = nil,
                generation: Int? = nil) {
        self.exitCode = exitCode
        self.summary = summary
        self.interrupted = interrupted
        self.orphans = orphans
        self.actions = actions
        self.rollback = rollback
        self.patches = patches
        self.needsAttention = needsAttention
        self.failure = failure
        self.generation = generation
    }

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", exitCode = "exit_code", summary, interrupted, orphans, actions,
             rollback, patches, needsAttention = "needs_attention", failure, generation
    }

    /// True when any action was performed (and not undone).
    public var changedAnything: Bool { actions.contains { $0.status == .done || $0.status == .undoFailed } }

    /// Human-readable text: interruption notice, orphans, one line per action, per-process lists,
    /// rollback, what needs a human, summary.
    public var text: String {
        var lines: [String] = []
        if let interrupted { lines.append(interrupted.description) }
        for o in orphans {
            lines.append("orphan suture:\(o.uuid) region in pid \(o.pid) (\(o.comm)): \(o.reason) → \(o.result)")
        }
        let symbols: [ActionStatus: String] = [.done: "✓", .skipped: "=", .failed: "✗", .failedAccepted: "~",
                                               .undone: "↶", .undoFailed: "!", .notRun: "·"]
        // A process the plan chose but the engine found not applicable is a disagreement worth its line.
        func folded(_ a: ActionReport) -> Bool {
            a.status == .skipped && a.action.pid != nil && a.processOutcome != .notApplicable
        }
        for a in actions where !folded(a) {
            var s = "\(symbols[a.status] ?? "?") \(describe(a.action)): \(a.status.rawValue)"
            if let o = a.processOutcome { s += " (\(o.rawValue))" }
            if let d = a.detail { s += " — \(d)" }
            lines.append(s)
        }
        let skippedProcesses = actions.filter(folded)
        if !skippedProcesses.isEmpty {
            lines.append("= \(skippedProcesses.count) process action(s) already done or not needed")
        }
        for p in patches {
            lines.append("\(p.patch) (\(p.uuid))\(p.partial ? " Partial" : ""):")
            for e in p.processes {
                var s = "    pid \(e.pid) (\(e.comm)) \(e.kind.rawValue): \(e.outcome.rawValue)"
                if let d = e.detail { s += " — \(d)" }
                lines.append(s)
            }
        }
        if !rollback.isEmpty {
            lines.append("Rollback:")
            for r in rollback {
                var s = "  \(r.status == .undone ? "↶" : "!") undo \(describe(r.action))"
                if let d = r.detail { s += " — \(d)" }
                lines.append(s)
            }
        }
        if !needsAttention.isEmpty {
            lines.append("Needs a human:")
            for n in needsAttention { lines.append("  - \(n)") }
        }
        if let generation { lines.append("Recorded generation \(generation).") }
        lines.append(summary)
        return lines.joined(separator: "\n")
    }
}
