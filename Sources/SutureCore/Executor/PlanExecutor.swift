import Foundation
import Logging

/// Tunables of a run.
public struct ExecutorOptions: Sendable, Hashable {
    /// Accept partial success of user patches for every patch (`--allow-partial`); the manifest's
    /// `allowPartial` does the same per patch.
    public var allowPartial: Bool
    /// Options passed to the user-patch driver.
    public var userOptions: UserPatchOptions

    /// Memberwise initializer.
    public init(allowPartial: Bool = false, userOptions: UserPatchOptions = UserPatchOptions()) {
        self.allowPartial = allowPartial
        self.userOptions = userOptions
    }
}

/// Runs a `Plan` against the drivers: level-triggered, journaled, transactional.
///
/// - Before each action the live state of its object is read again through `LiveProbe` (and the store);
///   an action already done is skipped, and a process that exited is not a failure.
/// - Each action is journaled before and after (`ApplyJournal`).
/// - User patches across processes are all-or-nothing per patch unless partial success is allowed: a
///   failure (other than the process exiting or `NOT_APPLICABLE`) fails the run; with partial success
///   allowed the failure is accepted as `Partial` as long as the patch became live in at least one process.
/// - On failure every action done in this run is undone in reverse order: exit 4, or 5 with the exact list
///   of what needs a human when an undo fails. A kernel transition that stalls stops the run with exit 6
///   (with `onStall: revert` the earlier actions are undone; with `wait`/`fail` they are left).
/// - A removal moves the bundle to `<root>/var/lib/suture/trash/` first, so it can be reinstalled by the
///   rollback; the trash is emptied when the run ends.
///
/// Not thread-safe: one executor per run, under the run lock.
public final class PlanExecutor: @unchecked Sendable {
    private let paths: StatePaths
    private let store: any PatchStoreAccess
    private let probe: any LiveProbe
    private let userDriver: any UserPatchDriver
    private let kernelDriver: any KernelPatchDriver
    private let journal: ApplyJournal
    private let logger: Logger
    private let options: ExecutorOptions
    private let holder: LockHolder
    private let runID: String
    private var interrupted: InterruptedRun?
    /// Set by a kernel stall: whether the driver left the transition running (`onStall: wait|fail`).
    private var stallLeftRunning = false

    /// Creates an executor.
    /// - Parameters:
    ///   - paths: the state layout (journal, trash).
    ///   - store: the patch store.
    ///   - probe: re-reads one object's live state.
    ///   - userDriver: the ptrace engine.
    ///   - kernelDriver: the livepatch driver.
    ///   - logger: receives one structured line per action (metadata `suture_patch`, `suture_action`,
    ///     `suture_pid`, `suture_result`).
    ///   - options: partial success, driver options.
    ///   - holder: recorded in the journal's `run-begin`.
    public init(paths: StatePaths, store: any PatchStoreAccess, probe: any LiveProbe,
                userDriver: any UserPatchDriver, kernelDriver: any KernelPatchDriver,
                logger: Logger = Logger(label: "suture.executor"), options: ExecutorOptions = ExecutorOptions(),
                holder: LockHolder = .current()) {
        self.paths = paths
        self.store = store
        self.probe = probe
        self.userDriver = userDriver
        self.kernelDriver = kernelDriver
        self.journal = ApplyJournal(paths: paths)
        self.logger = logger
        self.options = options
        self.holder = holder
        self.runID = "\(getpid())-\(UInt64(Date().timeIntervalSince1970 * 1000))"
    }

    // MARK: - Recovery

    /// Reads the previous run's journal; remembers and returns what was interrupted, if anything.
    /// Also empties trash left by a killed run (its removals were the desired state).
    public func inspectJournal() -> InterruptedRun? {
        interrupted = ApplyJournal.inspect(paths: paths)
        if interrupted != nil {
            logger.warning("previous run was interrupted; its journal is kept until a run gets as far as the orphan cleanup", metadata: ["suture_result": "interrupted"])
            try? FileManager.default.removeItem(atPath: paths.trash)
        }
        return interrupted
    }

    /// Finds orphan `suture:` regions in `live` and cleans them through the user driver.
    ///
    /// An orphan is a region whose header is `prepared` (an activation that never committed), or a region
    /// of a patch that is not in the store and that the interrupted run was working on. Regions of unknown
    /// patches that no interrupted run explains are left alone (the planner reports them as foreign);
    /// `inconsistent` regions are reported, never touched (they need an operator).
    /// - Returns: one report per orphan; the caller re-reads the live state when any was cleaned.
    public func cleanOrphans(live: LiveState) -> [OrphanReport] {
        let storeUUIDs = Set(live.store.map(\.uuid))
        let touched = interrupted?.uuids ?? []
        var reports: [OrphanReport] = []
        for process in live.processes {
            for marker in process.patches {
                let state = marker.state
                var reason: String?
                if state == .prepared {
                    reason = "header PREPARED (an activation that never committed)"
                } else if !storeUUIDs.contains(marker.uuid) && touched.contains(marker.uuid) {
                    reason = "patch not in the store (left by the interrupted run)"
                } else if state == .inconsistent {
                    reports.append(OrphanReport(pid: process.pid, comm: process.comm, uuid: marker.uuid,
                                                reason: "header INCONSISTENT", result: "left for an operator"))
                    continue
                }
                guard let reason else { continue }
                let action = PlanAction(kind: .deactivate, patch: marker.uuid, uuid: marker.uuid, patchKind: .user,
                                        pid: process.pid, comm: process.comm, startTime: process.startTime,
                                        reason: "orphan: \(reason)")
                try? record(JournalRecord(seq: 0, event: .orphanBegin, action: action))
                var result: String
                do {
                    let outcome = try userDriver.deactivate(uuid: marker.uuid, pid: process.pid,
                                                            startTime: process.startTime,
                                                            options: options.userOptions)
                    result = outcome == .deactivated ? "cleaned" : "already gone"
                } catch {
                    switch error.code {
                    case .targetExited, .execRace: result = "process exited"
                    default: result = "failed: \(error)"
                    }
                }
                try? record(JournalRecord(seq: 0, event: .orphanEnd, action: action, result: result))
                logger.notice("orphan region \(result)", metadata: [
                    "suture_patch": "\(marker.uuid)", "suture_action": "clean-orphan",
                    "suture_pid": "\(process.pid)", "suture_result": "\(result)"])
                reports.append(OrphanReport(pid: process.pid, comm: process.comm, uuid: marker.uuid,
                                            reason: reason, result: result))
            }
        }
        return reports
    }

    // MARK: - Execution

    private enum Undo {
        case remove(uuid: String)
        case reinstall(ResolvedBundle)
        case userDeactivate(uuid: String, pid: Int32, startTime: UInt64?)
        case userActivate(ResolvedBundle, BundleEntity, pid: Int32, startTime: UInt64?)
        case kernelDeactivate(module: String, onStall: StallPolicy)
        case kernelActivate(ResolvedBundle, BundleEntity, onStall: StallPolicy)
    }

    private enum StepResult {
        case done(processOutcome: ProcessOutcome?, undo: [Undo], detail: String?)
        case skipped(processOutcome: ProcessOutcome?, detail: String)
        case failed(processOutcome: ProcessOutcome?, code: ActionErrorCode, detail: String, attention: [String],
                    stalled: Bool)
    }

    /// Executes `plan`.
    /// - Parameters:
    ///   - plan: the plan (its `errors` must be empty; otherwise nothing runs and the exit code is 1).
    ///   - desired: the desired state the plan came from (source bundles for installs, `allowPartial`,
    ///     `onStall`); for saved plans the re-loaded manifests.
    ///   - orphans: orphan reports from `cleanOrphans`, carried into the report.
    /// - Returns: the report; `report.exitCode` is the process exit code.
    public func execute(plan: Plan, desired: DesiredState, orphans: [OrphanReport] = []) -> ApplyReport {
        if !plan.errors.isEmpty {
            finishJournal(result: "error", exitCode: .error)
            return ApplyReport(exitCode: .error, summary: "Plan has errors; nothing was changed.",
                               interrupted: interrupted, orphans: orphans,
                               failure: plan.errors.map(\.description).joined(separator: "\n"))
        }
        var byUUID: [String: DesiredPatch] = [:]
        for p in desired.patches { if let u = p.uuid { byUUID[u] = p } }

        var ledger = ExecutionLedger<Undo>(actions: plan.actions, allowPartial: options.allowPartial,
                                           partialAllowedUUIDs: Set(byUUID.values.filter(\.allowPartial).compactMap(\.uuid)))

        for (index, action) in plan.actions.enumerated() {
            do {
                try record(JournalRecord(seq: 0, event: .actionBegin, index: index, action: action))
            } catch {
                ledger.couldNotStart(index, code: .journal, detail: "\(error)")
                break
            }
            let report: ActionReport
            switch perform(action, desired: byUUID[action.uuid]) {
            case let .done(outcome, undo, detail):
                report = ledger.done(index, outcome: outcome, undo: undo, detail: detail)
            case let .skipped(outcome, detail):
                report = ledger.skipped(index, outcome: outcome, detail: detail)
            case let .failed(outcome, code, detail, extra, stalled):
                report = ledger.failed(index, outcome: outcome, code: code, detail: detail, attention: extra,
                                       stalled: stalled)
            }
            try? record(JournalRecord(seq: 0, event: .actionEnd, index: index, action: action,
                                      result: report.status.rawValue, detail: report.detail))
            log(action, result: report.status.rawValue, detail: report.detail)
            if ledger.stopped { break }
        }
        ledger.closeActions()

        // Rollback, last done first.
        let stallPolicy = ledger.failure.flatMap { f in
            f.stalled ? (byUUID[plan.actions[f.index].uuid]?.onStall ?? .revert) : nil
        }
        if ledger.shouldUndo(stallLeftRunning: stallLeftRunning) {
            for entry in ledger.undoOrder {
                try? record(JournalRecord(seq: 0, event: .undoBegin, index: entry.index, action: entry.action))
                var problems: [String] = []
                for step in entry.steps.reversed() {
                    if let problem = runUndo(step, action: entry.action) { problems.append(problem) }
                }
                let undone = ledger.undone(entry, problems: problems)
                try? record(JournalRecord(seq: 0, event: .undoEnd, index: entry.index, action: entry.action,
                                          result: problems.isEmpty ? "done" : "failed", detail: undone.detail))
                log(entry.action, result: problems.isEmpty ? "undone" : "undo-failed", detail: undone.detail)
            }
        }
        try? FileManager.default.removeItem(atPath: paths.trash + "/" + runID)

        let report = ledger.report(stallPolicy: stallPolicy, stallLeftRunning: stallLeftRunning,
                                   interrupted: interrupted, orphans: orphans)
        finishJournal(result: ledger.failure == nil ? "converged" : "\(report.exitCode)", exitCode: report.exitCode)
        return report
    }

    /// Writes `run-end` when this run wrote a journal, or clears an interrupted journal; idempotent.
    public func finishJournal(result: String, exitCode: ApplyExitCode) {
        if !journal.isOpen && interrupted != nil { try? journal.begin(holder: holder) }
        if journal.isOpen { try? journal.end(result: result, exitCode: exitCode.rawValue) }
    }

    private func record(_ r: JournalRecord) throws(JournalError) {
        if !journal.isOpen { try journal.begin(holder: holder) }
        try journal.append(r)
    }

    private func log(_ action: PlanAction, result: String, detail: String?) {
        var metadata: Logger.Metadata = ["suture_patch": "\(action.patch)", "suture_action": "\(action.kind.rawValue)",
                                         "suture_result": "\(result)", "suture_uuid": "\(action.uuid)"]
        if let pid = action.pid { metadata["suture_pid"] = "\(pid)" }
        let message: Logger.Message = "\(describe(action)): \(result)\(detail.map { " — \($0)" } ?? "")"
        if result == "failed" || result == "undo-failed" {
            logger.error(message, metadata: metadata)
        } else if result == ActionStatus.failedAccepted.rawValue {
            logger.warning(message, metadata: metadata)
        } else {
            logger.info(message, metadata: metadata)
        }
    }

    // MARK: - Steps

    private func installedIntact(_ uuid: String) -> (bundle: ResolvedBundle?, problem: String?) {
        do {
            guard let installed = try store.installed(uuid: uuid) else {
                return (nil, "patch \(uuid) is not in the store")
            }
            if !installed.problems.isEmpty {
                return (nil, "the store copy of \(installed.bundle.metadata.name) is corrupted: "
                        + installed.problems.joined(separator: "; "))
            }
            return (installed.bundle, nil)
        } catch {
            return (nil, "cannot read the store: \(error)")
        }
    }

    private func entity(of bundle: ResolvedBundle, for action: PlanAction) -> BundleEntity? {
        if let path = action.targetPath, let e = bundle.metadata.entities.first(where: { $0.targetPath == path }) {
            return e
        }
        return bundle.metadata.entities.first
    }

    private func perform(_ action: PlanAction, desired: DesiredPatch?) -> StepResult {
        let onStall = desired?.onStall ?? .revert
        switch (action.kind, action.patchKind) {
        case (.install, _):
            guard let source = desired?.bundle else {
                return .failed(processOutcome: nil, code: .noBundle,
                               detail: "no bundle for \(action.patch) (\(action.uuid)) in the manifests",
                               attention: [], stalled: false)
            }
            if let existing = try? store.installed(uuid: action.uuid), existing.problems.isEmpty,
               existing.bundle.digest == source.digest {
                return .skipped(processOutcome: nil, detail: "already in the store")
            }
            do {
                _ = try store.install(source)
                return .done(processOutcome: nil, undo: [.remove(uuid: action.uuid)], detail: nil)
            } catch {
                return .failed(processOutcome: nil, code: .install, detail: "\(error)", attention: [], stalled: false)
            }

        case (.remove, _):
            guard let existing = try? store.installed(uuid: action.uuid) else {
                return .skipped(processOutcome: nil, detail: "not in the store")
            }
            // Keep a copy until the run ends so the rollback can reinstall it.
            let stash = paths.trash + "/" + runID + "/" + action.uuid
            do {
                try makeDirectories(paths.trash + "/" + runID)
                try? FileManager.default.removeItem(atPath: stash)
                try FileManager.default.copyItem(atPath: existing.bundle.path, toPath: stash)
                try store.remove(uuid: action.uuid)
            } catch {
                return .failed(processOutcome: nil, code: .remove, detail: "\(error)", attention: [], stalled: false)
            }
            var copy = existing.bundle
            copy.path = stash
            return .done(processOutcome: nil, undo: [.reinstall(copy)], detail: nil)

        case (.activate, .user):
            guard let pid = action.pid else {
                return .failed(processOutcome: nil, code: .badPlan, detail: "user activation without a pid",
                               attention: [], stalled: false)
            }
            switch probe.userPatch(uuid: action.uuid, pid: pid, startTime: action.startTime) {
            case .gone: return .skipped(processOutcome: .exited, detail: "process exited")
            case .present(let state) where state == nil || state == .active:
                return .skipped(processOutcome: .alreadyActive, detail: "already live in the process")
            default: break
            }
            let (bundle, problem) = installedIntact(action.uuid)
            guard let bundle, let entity = entity(of: bundle, for: action) else {
                return .failed(processOutcome: .failed, code: .store, detail: problem ?? "bundle has no entity",
                               attention: [], stalled: false)
            }
            do {
                let outcome = try userDriver.activate(bundle: bundle, entity: entity, pid: pid,
                                                      startTime: action.startTime, options: options.userOptions)
                if outcome == .alreadyActive {
                    return .skipped(processOutcome: .alreadyActive, detail: "already live in the process")
                }
                return .done(processOutcome: .activated,
                             undo: [.userDeactivate(uuid: action.uuid, pid: pid, startTime: action.startTime)],
                             detail: nil)
            } catch {
                return userFailure(error, action: action)
            }

        case (.deactivate, .user):
            guard let pid = action.pid else {
                return .failed(processOutcome: nil, code: .badPlan, detail: "user deactivation without a pid",
                               attention: [], stalled: false)
            }
            switch probe.userPatch(uuid: action.uuid, pid: pid, startTime: action.startTime) {
            case .gone: return .skipped(processOutcome: .exited, detail: "process exited")
            case .absent: return .skipped(processOutcome: .notPresent, detail: "not live in the process")
            case .present: break
            }
            // What the rollback needs to re-activate it (the store copy, when there is one).
            let bundle = installedIntact(action.uuid).bundle
            let target: BundleEntity? = bundle.flatMap { self.entity(of: $0, for: action) }
            do {
                let outcome = try userDriver.deactivate(uuid: action.uuid, pid: pid, startTime: action.startTime,
                                                        options: options.userOptions)
                if outcome == .notPresent {
                    return .skipped(processOutcome: .notPresent, detail: "not live in the process")
                }
                var undo: [Undo] = []
                if let bundle, let target {
                    undo.append(.userActivate(bundle, target, pid: pid, startTime: action.startTime))
                }
                return .done(processOutcome: .deactivated, undo: undo, detail: nil)
            } catch {
                return userFailure(error, action: action)
            }

        case (.activate, .kernel):
            let (bundle, problem) = installedIntact(action.uuid)
            guard let bundle else {
                return .failed(processOutcome: nil, code: .store, detail: problem ?? "", attention: [], stalled: false)
            }
            var undo: [Undo] = []
            var didSomething = false
            for entity in bundle.metadata.entities {
                let module = entity.moduleName ?? entity.targetPath
                if let live = probe.kernelPatch(moduleName: module), live.enabled, !live.transition { continue }
                do {
                    try kernelDriver.activate(bundle: bundle, entity: entity, onStall: onStall)
                    undo.append(.kernelDeactivate(module: module, onStall: onStall))
                    didSomething = true
                } catch {
                    // Earlier entities of this action are undone by the caller's rollback only if recorded:
                    // undo them here so a failed action leaves nothing behind.
                    var extra: [String] = []
                    for step in undo.reversed() { if let p = runUndo(step, action: action) { extra.append(p) } }
                    if error.kind == .stalled { stallLeftRunning = error.transitionLeftRunning }
                    return .failed(processOutcome: nil, code: ActionErrorCode(error.kind), detail: error.description,
                                   attention: extra, stalled: error.kind == .stalled)
                }
            }
            if !didSomething { return .skipped(processOutcome: nil, detail: "livepatch already enabled") }
            return .done(processOutcome: nil, undo: undo, detail: nil)

        case (.deactivate, .kernel):
            let bundle = installedIntact(action.uuid).bundle ?? desired?.bundle
            let entities = bundle?.metadata.entities ?? []
            let modules: [(String, BundleEntity?)] = entities.isEmpty
                ? [(action.module ?? action.targetPath ?? action.patch, nil)]
                : entities.map { ($0.moduleName ?? $0.targetPath, $0) }
            var undo: [Undo] = []
            var unloaded = 0
            for (module, entity) in modules {
                guard probe.kernelPatch(moduleName: module) != nil else { continue }
                do {
                    try kernelDriver.deactivate(moduleName: module, onStall: onStall)
                    unloaded += 1
                    if let bundle, let entity { undo.append(.kernelActivate(bundle, entity, onStall: onStall)) }
                } catch {
                    var extra: [String] = []
                    for step in undo.reversed() { if let p = runUndo(step, action: action) { extra.append(p) } }
                    if error.kind == .stalled { stallLeftRunning = error.transitionLeftRunning }
                    return .failed(processOutcome: nil, code: ActionErrorCode(error.kind), detail: error.description,
                                   attention: extra, stalled: error.kind == .stalled)
                }
            }
            if unloaded == 0 { return .skipped(processOutcome: nil, detail: "livepatch not loaded") }
            return .done(processOutcome: nil, undo: undo,
                         detail: undo.count < unloaded ? "no bundle in the store to re-enable it from on rollback" : nil)
        }
    }

    private func userFailure(_ error: UserPatchError, action: PlanAction) -> StepResult {
        switch error.code {
        case .targetExited, .execRace:
            return .skipped(processOutcome: .exited, detail: error.description)
        case .notApplicable:
            return .skipped(processOutcome: .notApplicable, detail: error.description)
        case .alreadyApplied:
            return .skipped(processOutcome: .alreadyActive, detail: "already live in the process")
        case .inconsistent:
            return .failed(processOutcome: .failed, code: ActionErrorCode(error.code), detail: error.description,
                           attention: ["pid \(error.pid) (\(error.comm)): patch \(action.patch) (\(action.uuid)) is "
                                       + "INCONSISTENT inside the process (\(error.message)); inspect it with "
                                       + "`suture status`, restart the process if in doubt"],
                           stalled: false)
        default:
            return .failed(processOutcome: .failed, code: ActionErrorCode(error.code), detail: error.description,
                           attention: [], stalled: false)
        }
    }

    /// Runs one undo step; returns nil on success or the sentence naming what needs a human.
    private func runUndo(_ step: Undo, action: PlanAction) -> String? {
        switch step {
        case let .remove(uuid):
            do { try store.remove(uuid: uuid); return nil } catch {
                return "patch \(action.patch) (\(uuid)) remains in the store \(paths.store)/\(uuid): \(error); "
                    + "remove it with `suture patch remove \(uuid)`"
            }
        case let .reinstall(bundle):
            do { _ = try store.install(bundle); return nil } catch {
                return "patch \(action.patch) (\(bundle.metadata.uuid)) was removed from the store and could not be "
                    + "reinstalled from \(bundle.path): \(error)"
            }
        case let .userDeactivate(uuid, pid, startTime):
            do {
                _ = try userDriver.deactivate(uuid: uuid, pid: pid, startTime: startTime, options: options.userOptions)
                return nil
            } catch {
                if error.code == .targetExited || error.code == .execRace { return nil }
                return "pid \(pid)\(action.comm.map { " (\($0))" } ?? ""): patch \(action.patch) (\(uuid)) is still "
                    + "live after a failed revert (\(error.code.rawValue): \(error.message)); run "
                    + "`suture patch deactivate \(uuid) --pid \(pid)` or restart the process"
            }
        case let .userActivate(bundle, entity, pid, startTime):
            do {
                _ = try userDriver.activate(bundle: bundle, entity: entity, pid: pid, startTime: startTime,
                                            options: options.userOptions)
                return nil
            } catch {
                if [.targetExited, .execRace, .alreadyApplied].contains(error.code) { return nil }
                return "pid \(pid)\(action.comm.map { " (\($0))" } ?? ""): patch \(action.patch) "
                    + "(\(bundle.metadata.uuid)) was deactivated and could not be re-activated "
                    + "(\(error.code.rawValue): \(error.message)); run `suture patch activate \(bundle.metadata.uuid) "
                    + "--pid \(pid)`"
            }
        case let .kernelDeactivate(module, onStall):
            do { try kernelDriver.deactivate(moduleName: module, onStall: onStall); return nil } catch {
                return "kernel livepatch \(module) (patch \(action.patch)) is still loaded after a failed "
                    + "rollback (\(error)); check /sys/kernel/livepatch/\(module)"
            }
        case let .kernelActivate(bundle, entity, onStall):
            do { try kernelDriver.activate(bundle: bundle, entity: entity, onStall: onStall); return nil } catch {
                return "kernel livepatch \(entity.moduleName ?? entity.targetPath) (patch \(action.patch)) was "
                    + "disabled and could not be re-enabled (\(error)); run `suture patch activate \(action.uuid)`"
            }
        }
    }
}
