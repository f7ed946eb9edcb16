import Foundation
import Logging
import SutureCore
import SuturePatching

/// Everything an apply-like command needs, built from `--root` and the host configuration.
struct ApplyRuntime {
    let root: String
    let paths: StatePaths
    let config: SutureConfig
    let store: PatchStore
    let logger: Logger

    /// Loads `<root>/etc/suture/suture.yaml` (defaults when missing).
    init(root: String) throws {
        SutureLogging.bootstrap()
        self.root = root
        paths = StatePaths(root: root)
        config = try SutureConfig.load(root: root).config
        store = PatchStore(root: URL(fileURLWithPath: root))
        logger = Logger(label: "suture")
    }

    /// The configured manifest paths under the root, plus the local manifest written by `suture patch
    /// accept` when it exists and is not already inside one of them.
    var configuredManifestPaths: [String] {
        var list = config.manifestPaths(root: root)
        // The default location is optional; paths the configuration names must exist (the loader says so).
        if config.manifests == SutureConfig.defaultManifests {
            list = list.filter { FileManager.default.fileExists(atPath: $0) }
        }
        let local = paths.localManifest
        if FileManager.default.fileExists(atPath: local),
           !list.contains(where: { local == $0 || local.hasPrefix($0.hasSuffix("/") ? $0 : $0 + "/") }) {
            list.append(local)
        }
        return list
    }

    /// The desired state of `manifestPaths`.
    func loadDesired(_ manifestPaths: [String]) throws -> DesiredState {
        let loader = ManifestLoader(config: config, readBundle: { url throws(DiagnosticError) in
            try BundleReader.read(directory: url)
        })
        return try loader.desiredState(paths: manifestPaths).0
    }

    /// The live state relevant to `desired`, with the header state of every Suture region filled in from
    /// the engine's readback (process_vm_readv; no process is stopped).
    func readLive(_ desired: DesiredState) throws -> LiveState {
        let installed = store.list()
        var live = try LiveStateReader(root: root).read(interest: LiveInterest(desired: desired, store: installed),
                                                         store: installed)
        fillRegionHeaderStates(&live, root: root)
        return live
    }

    /// The probe used right before each action.
    var probe: ProcFSProbe {
        let readHeaders = readsLiveProcesses(root: root)
        return ProcFSProbe(paths: paths, headerState: { pid, uuid, _ in
            guard readHeaders else { return nil }
            return UserPatchEngine.readback(pid: pid).first { $0.uuid == uuid }?.effectiveState
        })
    }

    var userDriver: any UserPatchDriver { PtraceUserPatchDriver() }

    /// Write `force` when a kernel transition stalls (`--force-transition`; records "reboot required").
    var forceTransition = false

    var kernelDriver: any KernelPatchDriver {
        let logger = self.logger
        return SysfsKernelPatchDriver.system(root: root, forceTransition: forceTransition,
                                             environment: ProcessInfo.processInfo.environment,
                                             events: { event in logger.info("\(event)") })
    }

    /// Kernel livepatch modules whose transition was forced (the reboot-required record).
    var forcedModules: Set<String> {
        guard let text = try? String(contentsOfFile: paths.stateDirectory + "/reboot-required", encoding: .utf8) else {
            return []
        }
        return Set(text.split(separator: "\n").compactMap { $0.split(separator: "\t").first.map(String.init) })
    }
}

/// Where the desired state and plan of a run come from.
enum ApplySource {
    /// Manifests at these paths (planned now).
    case manifests([String])
    /// A saved plan (`suture plan --out FILE`), applied exactly, refused when stale.
    case saved(SavedPlan, file: String)
    /// A desired state built by an imperative verb or a rollback; only actions for `uuids` run
    /// (nil: all).
    case desired(DesiredState, uuids: Set<String>?)
}

/// Options shared by apply, reconcile, rollback and the imperative verbs.
struct RunOptions {
    var lockTimeout: Double
    var allowPartial: Bool
    var recordGeneration: Bool
    var command: String
    var manifestPaths: [String]
    var refuse: ((Plan) -> [String])? = nil
    /// Called with a status line while running (sd_notify STATUS for the reconcile service).
    var status: ((String) -> Void)? = nil
}

/// Runs one apply: lock, journal inspection, live read, staleness check, orphan cleanup, plan, execute,
/// generation. Never throws: every problem becomes a report with its exit code.
func runApply(_ runtime: ApplyRuntime, source: ApplySource, options: RunOptions) -> (ApplyReport, Plan?) {
    func failure(_ message: String) -> (ApplyReport, Plan?) {
        // The message goes to stderr once (emit); stdout only says that nothing changed.
        (ApplyReport(exitCode: .error, summary: "Error: nothing was changed.", failure: message), nil)
    }
    let lock: RunLock
    do { lock = try RunLock.acquire(paths: runtime.paths, timeout: options.lockTimeout) } catch {
        return failure("\(error)")
    }
    defer { lock.release() }

    var userOptions = UserPatchOptions()
    userOptions.busyDeadline = runtime.config.busyDeadlineSeconds
    let executor = PlanExecutor(paths: runtime.paths, store: runtime.store.accessor, probe: runtime.probe,
                                userDriver: runtime.userDriver, kernelDriver: runtime.kernelDriver,
                                logger: runtime.logger,
                                options: ExecutorOptions(allowPartial: options.allowPartial, userOptions: userOptions))
    let interrupted = executor.inspectJournal()

    let desired: DesiredState
    switch source {
    case let .manifests(paths):
        do { desired = try runtime.loadDesired(paths) } catch { return failure("\(error)") }
    case let .saved(saved, _): desired = saved.desired
    case let .desired(d, _): desired = d
    }
    var live: LiveState
    do { live = try runtime.readLive(desired) } catch { return failure("\(error)") }

    if case let .saved(saved, file) = source {
        let changes = saved.staleness(against: live)
        if !changes.isEmpty {
            var report = ApplyReport(exitCode: .error, summary: "Error: saved plan \(file) is stale: the live state "
                                     + "changed since it was made; run `suture plan --out` again. Nothing was changed.",
                                     interrupted: interrupted,
                                     failure: "stale plan; changed:\n  " + changes.joined(separator: "\n  "))
            report.needsAttention = []
            return (report, saved.plan)
        }
    }

    let orphans = executor.cleanOrphans(live: live)
    if orphans.contains(where: { $0.result == "cleaned" }) {
        do { live = try runtime.readLive(desired) } catch { return failure("\(error)") }
    }

    var plan: Plan
    switch source {
    case .manifests: plan = Planner.plan(desired: desired, live: live)
    case let .saved(saved, _): plan = saved.plan
    case let .desired(d, uuids):
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
            return (ApplyReport(exitCode: .error, summary: "Error: refused; nothing was changed.",
                                interrupted: interrupted, orphans: orphans,
                                failure: reasons.joined(separator: "\n")), plan)
        }
    }
    if !plan.actions.isEmpty { options.status?("applying \(plan.actions.count) action(s)") }
    var report = executor.execute(plan: plan, desired: desired, orphans: orphans)

    if report.exitCode == .converged && options.recordGeneration {
        let generations = GenerationStore(paths: runtime.paths)
        let latest = generations.numbers().last.flatMap { try? generations.load($0) }
        if report.changedAnything || latest?.manifestDigest != desired.manifestDigest {
            let after = (try? runtime.readLive(desired)) ?? live
            let generation = Generation(number: 0, command: options.command, manifestDigest: desired.manifestDigest,
                                        manifestPaths: options.manifestPaths,
                                        git: options.manifestPaths.first.flatMap(GitRevision.of(path:)),
                                        desired: desired, live: after,
                                        changes: report.actions.filter { $0.status == .done }.count,
                                        partial: report.patches.filter(\.partial).map(\.patch))
            do { report.generation = try generations.record(generation) } catch {
                runtime.logger.warning("cannot record generation: \(error)")
            }
        }
    }
    return (report, plan)
}

/// Prints a report (text, or JSON with `--json`) and returns its exit code.
func emit(_ report: ApplyReport, plan: Plan?, json: Bool) -> Int32 {
    if json {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        if let data = try? encoder.encode(report) { print(String(decoding: data, as: UTF8.self)) }
    } else {
        var planPrinted = false
        if let plan, !plan.actions.isEmpty || !plan.drift.isEmpty || !plan.notes.isEmpty {
            print(PlanRenderer().text(plan))
            planPrinted = plan.actions.isEmpty && report.exitCode == .converged
        }
        if let failure = report.failure, report.exitCode == .error {
            FileHandle.standardError.write(Data((failure + "\n").utf8))
        }
        if planPrinted {
            // The plan text already ended with "No changes."; print only what the run added.
            let extra = report.text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
            if !extra.isEmpty { print(extra.joined(separator: "\n")) }
        } else {
            print(report.text)
        }
    }
    return report.exitCode.rawValue
}

