import Foundation

/// Where the desired state and plan of an apply run come from.
public enum ApplySource: Sendable {
    /// Manifests at these paths (planned now).
    case manifests([String])
    /// A saved plan (`suture plan --out FILE`), applied exactly, refused when stale.
    case saved(SavedPlan, file: String)
    /// A desired state built by an imperative verb or a rollback; only actions for `uuids` run (nil: all).
    case desired(DesiredState, uuids: Set<String>?)
}

/// Options shared by apply, reconcile, rollback and the imperative verbs.
public struct RunOptions {
    /// How long to wait for the run lock held by another run.
    public var lockTimeout: Duration
    /// Accept partial success of user patches for every patch (`--allow-partial`).
    public var allowPartial: Bool
    /// Record a generation when the run converged and changed something (or the manifests changed).
    public var recordGeneration: Bool
    /// The command line recorded in the generation.
    public var command: String
    /// The manifest paths recorded in the generation (its git revision is read from the first).
    public var manifestPaths: [String]
    /// Reasons to refuse the plan before anything runs (rollback: forced kernel transitions); empty: run.
    public var refuse: ((Plan) -> [String])?
    /// Called with a status line while running (sd_notify STATUS for the reconcile service).
    public var status: ((String) -> Void)?

    /// Memberwise initializer.
    public init(
        lockTimeout: Duration, allowPartial: Bool, recordGeneration: Bool, command: String,
        manifestPaths: [String], refuse: ((Plan) -> [String])? = nil, status: ((String) -> Void)? = nil
    ) {
        self.lockTimeout = lockTimeout
        self.allowPartial = allowPartial
        self.recordGeneration = recordGeneration
        self.command = command
        self.manifestPaths = manifestPaths
        self.refuse = refuse
        self.status = status
    }
}

/// One apply run over a ``SutureHost``: lock → journal inspection → live read → staleness check (saved
/// plans) → orphan cleanup → plan → execute (``PlanExecutor``) → generation. `suture apply`, `reconcile`,
/// `rollback`, the patch verbs and the tests all run this.
public struct ApplySession: Sendable {
    /// The host.
    public let host: SutureHost

    /// A session over `host`.
    public init(host: SutureHost) { self.host = host }

    /// Runs one apply. Never throws: every problem becomes a report with its exit code (1 before any
    /// change: lock busy, bad manifests, stale saved plan, refused plan, plan errors; 0/4/5/6 from the
    /// executor).
    /// - Returns: the report and the plan that ran (nil when the run stopped before planning).
    public func run(source: ApplySource, options: RunOptions) -> (ApplyReport, Plan?) {
        func failure(_ message: String) -> (ApplyReport, Plan?) {
            // The message goes to stderr once; stdout only says that nothing changed.
            (ApplyReport(exitCode: .error, summary: "Error: nothing was changed.", failure: message), nil)
        }
        let reading = PlanSession(host: host)
        let lock: RunLock
        do { lock = try RunLock.acquire(paths: host.paths, timeout: options.lockTimeout) } catch {
            return failure("\(error)")
        }
        defer { lock.release() }

        var userOptions = UserPatchOptions()
        userOptions.busyDeadline = host.config.busyDeadlineSeconds
        let executor = PlanExecutor(
            paths: host.paths, store: host.store.accessor, probe: host.probe,
            userDriver: host.userDriver, kernelDriver: host.kernelDriver,
            logger: host.logger,
            options: ExecutorOptions(
                allowPartial: options.allowPartial,
                userOptions: userOptions))
        let interrupted = executor.inspectJournal()

        let desired: DesiredState
        switch source {
        case .manifests(let paths):
            do { desired = try reading.loadDesired(paths: paths).0 } catch { return failure("\(error)") }
        case .saved(let saved, _): desired = saved.desired
        case .desired(let d, _): desired = d
        }
        var live: LiveState
        do { live = try reading.readLive(for: desired) } catch { return failure("\(error)") }

        if case .saved(let saved, let file) = source {
            let changes = saved.staleness(against: live)
            if !changes.isEmpty {
                var report = ApplyReport(
                    exitCode: .error,
                    summary: "Error: saved plan \(file) is stale: the live "
                        + "state changed since it was made; run `suture plan --out` again. Nothing "
                        + "was changed.",
                    interrupted: interrupted,
                    failure: "stale plan; changed:\n  " + changes.joined(separator: "\n  "))
                report.needsAttention = []
                return (report, saved.plan)
            }
        }

        let orphans = executor.cleanOrphans(live: live)
        if orphans.contains(where: { $0.result == "cleaned" }) {
            do { live = try reading.readLive(for: desired) } catch { return failure("\(error)") }
        }

        var plan: Plan
        switch source {
        case .manifests: plan = Planner.plan(desired: desired, live: live)
        case .saved(let saved, _): plan = saved.plan
        case .desired(let d, let uuids):
            plan = Planner.plan(desired: d, live: live)
            if let uuids {
                let locations = Set(d.patches.filter { $0.uuid.map(uuids.contains) ?? false }.map(\.location))
                plan.actions = plan.actions.filter { uuids.contains($0.uuid) }
                plan.errors = plan.errors.filter { $0.location.map(locations.contains) ?? true }
            }
        }
        if let refuse = options.refuse {
            let reasons = refuse(plan)
            if !reasons.isEmpty {
                executor.finishJournal(result: "refused", exitCode: .error)
                return (
                    ApplyReport(
                        exitCode: .error, summary: "Error: refused; nothing was changed.",
                        interrupted: interrupted, orphans: orphans,
                        failure: reasons.joined(separator: "\n")), plan
                )
            }
        }
        if !plan.actions.isEmpty { options.status?("applying \(plan.actions.count) action(s)") }
        var report = executor.execute(plan: plan, desired: desired, orphans: orphans)

        if report.exitCode == .converged && options.recordGeneration {
            let generations = GenerationStore(paths: host.paths)
            let latest = generations.numbers().last.flatMap { try? generations.load($0) }
            if report.changedAnything || latest?.manifestDigest != desired.manifestDigest {
                let after = (try? reading.readLive(for: desired)) ?? live
                let generation = Generation(
                    number: 0, command: options.command,
                    manifestDigest: desired.manifestDigest,
                    manifestPaths: options.manifestPaths,
                    git: options.manifestPaths.first.flatMap(GitRevision.of(path:)),
                    desired: desired, live: after,
                    changes: report.actions.filter { $0.status == .done }.count,
                    partial: report.patches.filter(\.partial).map(\.patch))
                do { report.generation = try generations.record(generation) } catch {
                    host.logger.warning("cannot record generation: \(error)")
                }
            }
        }
        return (report, plan)
    }
}
