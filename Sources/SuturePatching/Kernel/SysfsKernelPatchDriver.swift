#if canImport(Glibc)
import Glibc
#endif
import Logging
import SutureCore

/// What `SysfsKernelPatchDriver.check` found: the module is loadable on this kernel.
public struct KernelActivationCheck: Sendable, Hashable {
    /// The livepatch name (`/sys/kernel/livepatch/<name>`, `/sys/module/<name>`).
    public var moduleName: String
    /// The module file's `.modinfo` and signature flag.
    public var module: ModuleFile
    /// Notes that do not stop activation ("target module x is not loaded: patched when it loads").
    public var notes: [String]
}

/// The kernel livepatch driver on the real ABI: `finit_module(2)`, `/sys/kernel/livepatch/<p>/{enabled,
/// transition,force}`, `/proc/<pid>/task/<tid>/patch_state`, `/sys/module/<m>/refcnt`, `delete_module(2)`.
///
/// Semantics (Linux ≥ 5.1; sources in `../shared/reference/kernel-livepatch.md` A.1–A.7):
/// - `activate` checks before touching anything (livepatch support, `kernel.ftrace_enabled`, vermagic
///   against `/proc/sys/kernel/osrelease` and `/proc/version`, lockdown and `module.sig_enforce` against an
///   unsigned module, target module loaded or "patched when loaded"), then loads the module (its init calls
///   `klp_enable_patch`), then polls `transition` until 0. Already enabled and settled: nothing is done.
/// - At `softDeadline` the blocking tasks (pid, comm, stack) are reported; at `hardDeadline` the stall policy
///   applies: `revert` writes the opposite value to `enabled` (reversing the transition), waits, unloads and
///   throws `stalled`; `fail` throws `stalled` leaving the transition running; `wait` keeps waiting until
///   `waitLimit`, then does the same as `fail`. With `forceTransition`, `force` is written instead and a
///   reboot-required record is appended; `force` is never written otherwise.
/// - EBUSY (another transition in progress) on `finit_module` or on writing `enabled` is retried with
///   doubling backoff. The driver never writes the value `enabled` already holds (the kernel answers EINVAL).
/// - `deactivate` writes 0, waits for the transition, for the directory to vanish (the patch is freed) and
///   for `refcnt` 0, then `delete_module`. A disabled patch cannot be re-enabled, so DEACTIVATED means "in
///   the store, not loaded" and activating again loads the module again.
/// - After an atomic-replace patch's transition, the modules of the patches it replaced are unloaded.
public struct SysfsKernelPatchDriver: KernelPatchDriver {
    /// The kernel the driver talks to.
    public let kernel: any KernelInterface
    /// The clock used for polling and deadlines.
    public let clock: any DriverClock
    /// Deadlines, retries, force.
    public let options: KernelDriverOptions
    private let events: @Sendable (KernelDriverEvent) -> Void
    private let logger = Logger(label: "suture.kernel")

    /// The sysfs livepatch directory.
    public static let livepatchRoot = LivepatchSysfs.root

    /// Creates the driver.
    /// - Parameters:
    ///   - kernel: the real kernel (default, root `/`) or a fake.
    ///   - clock: the real monotonic clock (default) or a virtual one.
    ///   - options: deadlines, retries, `forceTransition`.
    ///   - events: called synchronously for every event (progress output, journal); also logged.
    public init(kernel: any KernelInterface = LinuxKernelInterface(), clock: any DriverClock = SystemDriverClock(),
                options: KernelDriverOptions = KernelDriverOptions(),
                events: @escaping @Sendable (KernelDriverEvent) -> Void = { _ in }) {
        self.kernel = kernel
        self.clock = clock
        self.options = options
        self.events = events
    }

    /// Module names use `_` where file names may use `-` (the kernel maps them).
    public static func normalizedModuleName(_ name: String) -> String {
        String(name.map { $0 == "-" ? "_" : $0 })
    }

    /// The path of the `.ko` of `entity` inside `bundle`.
    public static func modulePath(bundle: ResolvedBundle, entity: BundleEntity) -> String {
        entity.payload.hasPrefix("/") ? entity.payload : bundle.path + "/" + entity.payload
    }

    // MARK: - Checks

    /// Checks that the entity's module can be activated on the running kernel, without changing anything.
    /// - Throws: `KernelPatchError` `.vermagicMismatch`, `.unsupported` (no livepatch, ftrace off, not a
    ///   livepatch module, name mismatch), `.lockdown`, `.syscallFailed` (module file unreadable).
    public func check(bundle: ResolvedBundle, entity: BundleEntity) throws(KernelPatchError) -> KernelActivationCheck {
        let path = Self.modulePath(bundle: bundle, entity: entity)
        let label = entity.moduleName ?? entity.payload
        let file: ModuleFile
        do { file = try ModuleFile.read(path: path) } catch {
            throw KernelPatchError(.syscallFailed, patch: label, message: "cannot read the module: \(error)")
        }
        guard let rawName = file.name, !rawName.isEmpty else {
            throw KernelPatchError(.unsupported, patch: label, message: "\(path) has no name in .modinfo")
        }
        let name = Self.normalizedModuleName(rawName)
        if let declared = entity.moduleName, Self.normalizedModuleName(declared) != name {
            throw KernelPatchError(.unsupported, patch: declared,
                                   message: "the bundle declares module \(declared) but \(path) is module \(name)")
        }
        guard file.isLivepatch else {
            throw KernelPatchError(.unsupported, patch: name,
                                   message: "\(path) is not a livepatch module (no livepatch=Y in .modinfo)")
        }
        guard kernel.exists(Self.livepatchRoot) else {
            throw KernelPatchError(.unsupported, patch: name,
                                   message: "the running kernel has no livepatch support (no \(Self.livepatchRoot); CONFIG_LIVEPATCH)")
        }
        if kernel.readTrimmed("/proc/sys/kernel/ftrace_enabled") == "0" {
            throw KernelPatchError(.unsupported, patch: name,
                                   message: "kernel.ftrace_enabled is 0; livepatch needs ftrace (sysctl -w kernel.ftrace_enabled=1)")
        }
        guard let vermagic = file.vermagic else {
            throw KernelPatchError(.vermagicMismatch, patch: name, message: "\(path) has no vermagic in .modinfo")
        }
        guard let osrelease = kernel.readTrimmed("/proc/sys/kernel/osrelease") else {
            throw KernelPatchError(.unsupported, patch: name, message: "cannot read /proc/sys/kernel/osrelease")
        }
        if let problem = VermagicCheck.problem(vermagic: vermagic, osrelease: osrelease,
                                               procVersion: kernel.readTrimmed("/proc/version")) {
            throw KernelPatchError(.vermagicMismatch, patch: name, message: problem)
        }
        if !file.signed {
            if let mode = Self.lockdownMode(kernel.readTrimmed("/sys/kernel/security/lockdown")), mode != "none" {
                throw KernelPatchError(.lockdown, patch: name,
                                       message: "kernel lockdown is '\(mode)' and the module is unsigned: the kernel would refuse it")
            }
            if kernel.readTrimmed("/sys/module/module/parameters/sig_enforce") == "Y" {
                throw KernelPatchError(.lockdown, patch: name,
                                       message: "module.sig_enforce is on and the module is unsigned: the kernel would refuse it")
            }
        }
        var notes: [String] = []
        let target = entity.targetPath
        if !target.isEmpty && target != "vmlinux" {
            let t = Self.normalizedModuleName(target)
            if !kernel.exists("/sys/module/\(t)") {
                notes.append("target module \(t) is not loaded: it will be patched when it loads")
            }
        }
        return KernelActivationCheck(moduleName: name, module: file, notes: notes)
    }

    /// The selected mode of `/sys/kernel/security/lockdown` (`[none] integrity confidentiality` → `none`).
    static func lockdownMode(_ text: String?) -> String? {
        guard let text, let open = text.firstIndex(of: "["), let close = text[open...].firstIndex(of: "]") else {
            return nil
        }
        return String(text[text.index(after: open)..<close])
    }

    // MARK: - Activate

    /// See `KernelPatchDriver.activate(bundle:entity:onStall:)`: prechecks, finit_module, transition wait with soft/hard deadlines. Throws `KernelPatchError`.
    public func activate(bundle: ResolvedBundle, entity: BundleEntity, onStall: StallPolicy) throws(KernelPatchError) {
        let checked = try check(bundle: bundle, entity: entity)
        let name = checked.moduleName
        for note in checked.notes { emit(.note, name, note) }
        let dir = patchDir(name)

        if kernel.exists(dir) {
            let enabled = readBool(LivepatchSysfs.path(name, .enabled))
            let transition = readBool(LivepatchSysfs.path(name, .transition))
            if enabled == true && transition == false {
                emit(.note, name, "already enabled and settled: nothing to do")
                return
            }
            if enabled == true && transition == true {
                emit(.note, name, "already loaded, its patching transition is in progress: waiting for it")
                try waitForTransition(name, enabling: true, onStall: onStall)
                return
            }
            // enabled=0: being disabled or reversed; it will be freed, then it can be loaded again.
            emit(.note, name, "being disabled: waiting for it to be freed before loading it again")
            try waitGone(dir, name: name, what: "the livepatch directory to vanish")
        }
        if moduleLoaded(name) {
            emit(.note, name, "module loaded without a livepatch directory (disabled or replaced earlier): removing it first")
            try removeModule(name)
        }
        let before = Set(livePatchNames()).subtracting([name])
        try load(path: Self.modulePath(bundle: bundle, entity: entity), name: name)
        try waitForTransition(name, enabling: true, onStall: onStall)
        let replace = entity.replace ?? (readBool(LivepatchSysfs.path(name, .replace)) ?? false)
        if replace { removeReplaced(before.sorted(), by: name) }
    }

    private func load(path: String, name: String) throws(KernelPatchError) {
        var delay = options.busyInitialBackoff
        var attempt = 0
        let started = clock.now()
        while true {
            emit(.loading, name, "finit_module \(path)")
            do {
                try kernel.loadModule(atPath: path, parameters: "")
                break
            } catch {
                if error.errno == EBUSY {
                    let holder = transitionPatch() ?? "another patch"
                    if attempt < options.busyRetries {
                        attempt += 1
                        emit(.busyRetry, name, "EBUSY: \(holder) is in transition; retry \(attempt)/\(options.busyRetries) in \(fmt(delay)) s")
                        clock.sleep(delay)
                        delay = min(delay * 2, options.busyMaxBackoff)
                        continue
                    }
                    throw KernelPatchError(.busy, patch: name,
                                           message: "finit_module still EBUSY after \(attempt) retries over \(fmt(clock.now() - started)) s: \(holder) is in transition")
                }
                throw classifyLoadError(error, name: name)
            }
        }
        guard kernel.exists(patchDir(name)) else {
            throw KernelPatchError(.syscallFailed, patch: name,
                                   message: "module loaded but \(patchDir(name)) did not appear (is it a livepatch module?)")
        }
    }

    private func classifyLoadError(_ error: KernelCallError, name: String) -> KernelPatchError {
        switch error.errno {
        case ENOEXEC:
            return KernelPatchError(.vermagicMismatch, patch: name,
                                    message: "the kernel refused the module format (\(error)): built for another kernel, or corrupt")
        case EKEYREJECTED, ENOKEY:
            return KernelPatchError(.lockdown, patch: name, message: "the kernel rejected the module signature (\(error))")
        case EPERM:
            return KernelPatchError(.lockdown, patch: name,
                                    message: "module loading not permitted (\(error)): lockdown, sig_enforce, modules_disabled or missing CAP_SYS_MODULE")
        case ENODEV:
            return KernelPatchError(.unsupported, patch: name,
                                    message: "livepatch is not available (\(error)): not initialised, or ftrace registration failed")
        case EEXIST:
            return KernelPatchError(.syscallFailed, patch: name, message: "a module named \(name) is already loaded (\(error))")
        case EINVAL:
            return KernelPatchError(.syscallFailed, patch: name,
                                    message: "the kernel rejected the livepatch (\(error)): incompatible klp_state, unresolved symbol or bad structure; see dmesg")
        default:
            return KernelPatchError(.syscallFailed, patch: name, message: error.description)
        }
    }

    // MARK: - Deactivate

    /// See `KernelPatchDriver.deactivate(moduleName:onStall:)`: enabled=0, transition wait, directory and refcnt waits, delete_module. Throws `KernelPatchError`.
    public func deactivate(moduleName: String, onStall: StallPolicy) throws(KernelPatchError) {
        let name = Self.normalizedModuleName(moduleName)
        let dir = patchDir(name)
        if kernel.exists(dir) {
            if readBool(LivepatchSysfs.path(name, .enabled)) == true {
                emit(.disabling, name, "writing 0 to \(dir)/enabled")
                try writeEnabled(name, false)
            }
            try waitForTransition(name, enabling: false, onStall: onStall)
            try waitGone(dir, name: name, what: "the livepatch directory to vanish")
        }
        if moduleLoaded(name) && forcedInThisBoot(name) {
            // The patch is disabled (not live); its module can never be unloaded (livepatch.rst §3).
            emit(.warning, name, "disabled, but its transition was forced in this boot: the module stays loaded until reboot")
            return
        }
        try removeModule(name)
    }

    /// Whether the reboot-required record names `name` for the current boot.
    private func forcedInThisBoot(_ name: String) -> Bool {
        let bootID = kernel.readTrimmed("/proc/sys/kernel/random/boot_id") ?? ""
        return RebootRequiredRecord.read(stateDirectory: options.stateDirectory)
            .contains { $0.module == name && $0.bootID == bootID }
    }

    // MARK: - Transitions

    /// Polls until `name`'s transition toward `enabling` finishes, applying deadlines and the stall policy.
    private func waitForTransition(_ name: String, enabling: Bool, onStall: StallPolicy) throws(KernelPatchError) {
        let dir = patchDir(name)
        let start = clock.now()
        var nextReport = options.softDeadline
        var hardReported = false
        var forced = false
        emit(.transitionStarted, name, enabling ? "waiting for the patching transition" : "waiting for the unpatching transition")
        while true {
            guard kernel.exists(dir) else {
                if enabling {
                    throw KernelPatchError(.syscallFailed, patch: name,
                                           message: "\(dir) vanished during the patching transition (disabled or replaced by another writer)")
                }
                emit(.transitionFinished, name, "unpatching complete after \(fmt(clock.now() - start)) s")
                return
            }
            let enabled = readBool(LivepatchSysfs.path(name, .enabled))
            let transition = readBool(LivepatchSysfs.path(name, .transition))
            if transition == false, let enabled {
                if enabled == enabling {
                    emit(.transitionFinished, name, "\(enabling ? "patching" : "unpatching") complete after \(fmt(clock.now() - start)) s")
                    return
                }
                throw KernelPatchError(.syscallFailed, patch: name,
                                       message: "the \(enabling ? "patching" : "unpatching") transition was reversed by another writer: enabled=\(enabled ? 1 : 0)")
            }
            let elapsed = clock.now() - start
            let target = (enabled ?? enabling) ? 1 : 0
            if elapsed >= nextReport && !(elapsed >= options.hardDeadline && !hardReported) {
                let blockers = TransitionBlockerReader.read(kernel, target: target)
                emit(.softDeadline, name, "transition still running after \(fmt(elapsed)) s; blocked by \(Self.describe(blockers))",
                     blockers: blockers)
                nextReport += max(options.softDeadline, options.pollInterval)
            }
            if elapsed >= options.hardDeadline {
                if options.forceTransition {
                    if !forced {
                        try force(name, blockers: TransitionBlockerReader.read(kernel, target: target), elapsed: elapsed)
                        forced = true
                    } else if elapsed >= options.hardDeadline + options.unloadDeadline {
                        throw KernelPatchError(.stalled, patch: name,
                                               message: "transition still running \(fmt(elapsed)) s after force was written",
                                               blockers: TransitionBlockerReader.read(kernel, target: target),
                                               transitionLeftRunning: true)
                    }
                } else if !hardReported || onStall != .wait || elapsed >= options.waitLimit {
                    let blockers = TransitionBlockerReader.read(kernel, target: target)
                    if !hardReported {
                        emit(.hardDeadline, name,
                             "transition not finished after \(fmt(elapsed)) s (hard deadline \(fmt(options.hardDeadline)) s); onStall: \(onStall.rawValue); blocked by \(Self.describe(blockers))",
                             blockers: blockers)
                        hardReported = true
                    }
                    switch onStall {
                    case .revert:
                        try reverse(name, enabling: enabling, blockers: blockers, elapsed: elapsed)
                    case .fail:
                        throw KernelPatchError(.stalled, patch: name,
                                               message: "transition not finished after \(fmt(elapsed)) s; left running (onStall: fail); blocked by \(Self.describe(blockers))",
                                               blockers: blockers, transitionLeftRunning: true)
                    case .wait:
                        if elapsed >= options.waitLimit {
                            throw KernelPatchError(.stalled, patch: name,
                                                   message: "transition not finished after \(fmt(elapsed)) s (onStall: wait, limit \(fmt(options.waitLimit)) s); left running; blocked by \(Self.describe(blockers))",
                                                   blockers: blockers, transitionLeftRunning: true)
                        }
                    }
                }
            }
            clock.sleep(options.pollInterval)
        }
    }

    /// Reverses a stalled transition (writes the opposite `enabled` value), waits for the reverse
    /// transition, unloads the module when it was a load, and throws `stalled` (not left running).
    private func reverse(_ name: String, enabling: Bool, blockers: [TransitionBlocker], elapsed: Double) throws(KernelPatchError) {
        let dir = patchDir(name)
        emit(.reverting, name, "reversing the \(enabling ? "patching" : "unpatching") transition (writing \(enabling ? 0 : 1) to enabled)")
        if readBool(LivepatchSysfs.path(name, .enabled)) == enabling {
            do { try kernel.write(LivepatchSysfs.path(name, .enabled), enabling ? "0" : "1") } catch {
                throw KernelPatchError(.stalled, patch: name,
                                       message: "transition stalled and reversing it failed: \(error); left running",
                                       blockers: blockers, transitionLeftRunning: true)
            }
        }
        let start = clock.now()
        while true {
            if enabling {
                if !kernel.exists(dir) { break }
            } else if readBool(LivepatchSysfs.path(name, .transition)) == false && readBool(LivepatchSysfs.path(name, .enabled)) == true {
                break
            }
            if clock.now() - start >= options.hardDeadline {
                let again = TransitionBlockerReader.read(kernel, target: enabling ? 0 : 1)
                throw KernelPatchError(.stalled, patch: name,
                                       message: "transition stalled after \(fmt(elapsed)) s and the reverse transition did not finish within \(fmt(options.hardDeadline)) s; left running; blocked by \(Self.describe(again))",
                                       blockers: blockers + again, transitionLeftRunning: true)
            }
            clock.sleep(options.pollInterval)
        }
        var outcome = enabling ? "reverted: the patch is disabled and freed" : "reverted: the patch is still enabled"
        if enabling {
            do { try removeModule(name) } catch {
                outcome += "; unloading the module failed: \(error.message)"
            }
            if !moduleLoaded(name) { outcome += " and its module unloaded" }
        }
        throw KernelPatchError(.stalled, patch: name,
                               message: "transition not finished after \(fmt(elapsed)) s (hard deadline \(fmt(options.hardDeadline)) s); blocked by \(Self.describe(blockers)); \(outcome)",
                               blockers: blockers, transitionLeftRunning: false)
    }

    private func force(_ name: String, blockers: [TransitionBlocker], elapsed: Double) throws(KernelPatchError) {
        let dir = patchDir(name)
        let entry = RebootRequiredRecord.Entry(
            module: name, bootID: kernel.readTrimmed("/proc/sys/kernel/random/boot_id") ?? "",
            time: Int(time(nil)),
            reason: "transition forced after \(fmt(elapsed)) s; blocked by \(Self.describe(blockers))")
        // Record first: if the record cannot be written, do not force.
        do { try RebootRequiredRecord.append(entry, stateDirectory: options.stateDirectory) } catch {
            throw KernelPatchError(.stalled, patch: name,
                                   message: "cannot record reboot-required (\(error)); not forcing; transition left running",
                                   blockers: blockers, transitionLeftRunning: true)
        }
        emit(.forced, name, "writing 1 to \(dir)/force (forceTransition): the module can never be removed; reboot required",
             blockers: blockers)
        do { try kernel.write(LivepatchSysfs.path(name, .force), "1") } catch {
            throw KernelPatchError(.stalled, patch: name, message: "writing force failed: \(error); transition left running",
                                   blockers: blockers, transitionLeftRunning: true)
        }
    }

    /// Writes `enabled`, retrying EBUSY with backoff. Never called with the value `enabled` holds.
    private func writeEnabled(_ name: String, _ value: Bool) throws(KernelPatchError) {
        let path = LivepatchSysfs.path(name, .enabled)
        var delay = options.busyInitialBackoff
        var attempt = 0
        let started = clock.now()
        while true {
            do {
                try kernel.write(path, value ? "1" : "0")
                return
            } catch {
                if error.errno == EBUSY {
                    let holder = transitionPatch() ?? "another patch"
                    if attempt < options.busyRetries {
                        attempt += 1
                        emit(.busyRetry, name, "EBUSY writing enabled: \(holder) is in transition; retry \(attempt)/\(options.busyRetries) in \(fmt(delay)) s")
                        clock.sleep(delay)
                        delay = min(delay * 2, options.busyMaxBackoff)
                        // The state may have changed while waiting (e.g. someone else disabled it).
                        if readBool(path) == value || !kernel.exists(path) { return }
                        continue
                    }
                    throw KernelPatchError(.busy, patch: name,
                                           message: "writing enabled still EBUSY after \(attempt) retries over \(fmt(clock.now() - started)) s: \(holder) is in transition")
                }
                throw KernelPatchError(.syscallFailed, patch: name, message: error.description)
            }
        }
    }

    // MARK: - Unloading

    /// Waits for `refcnt` 0 and removes module `name`; nothing when it is not loaded.
    private func removeModule(_ name: String) throws(KernelPatchError) {
        guard moduleLoaded(name) else { return }
        if forcedInThisBoot(name) {
            throw KernelPatchError(.stuck, patch: name,
                                   message: "its transition was forced in this boot: the module can never be removed; reboot required")
        }
        if let taint = kernel.readTrimmed("/sys/module/\(name)/taint"), !taint.contains("K") {
            throw KernelPatchError(.unsupported, patch: name,
                                   message: "/sys/module/\(name) is not a livepatch module (taint '\(taint)' lacks K): refusing to unload it")
        }
        let start = clock.now()
        while let refcnt = kernel.readTrimmed("/sys/module/\(name)/refcnt").flatMap({ Int($0) }), refcnt > 0 {
            if clock.now() - start >= options.unloadDeadline {
                throw KernelPatchError(.stuck, patch: name,
                                       message: "refcnt stayed \(refcnt) for \(fmt(options.unloadDeadline)) s; not unloading")
            }
            clock.sleep(options.pollInterval)
        }
        while true {
            do {
                try kernel.unloadModule(named: name)
                emit(.unloaded, name, "delete_module \(name)")
                return
            } catch {
                switch error.errno {
                case ENOENT:
                    return
                case EAGAIN, EBUSY:
                    if clock.now() - start >= options.unloadDeadline {
                        throw KernelPatchError(.stuck, patch: name,
                                               message: "delete_module still \(error.errnoName) after \(fmt(options.unloadDeadline)) s")
                    }
                    clock.sleep(options.pollInterval)
                default:
                    throw KernelPatchError(.syscallFailed, patch: name, message: error.description)
                }
            }
        }
    }

    /// Unloads the modules of the patches an atomic-replace patch replaced. Failures are reported as
    /// warnings: the replaced patches are already disabled and freed, so the activation stands.
    private func removeReplaced(_ replaced: [String], by name: String) {
        for old in replaced {
            do {
                try waitGone(patchDir(old), name: old, what: "the replaced patch's directory to vanish")
                try removeModule(old)
                emit(.replacedRemoved, old, "replaced by \(name); module removed")
            } catch {
                emit(.warning, old, "replaced by \(name) but not removed: \(error.message)")
            }
        }
    }

    private func waitGone(_ path: String, name: String, what: String) throws(KernelPatchError) {
        let start = clock.now()
        while kernel.exists(path) {
            if clock.now() - start >= options.unloadDeadline {
                throw KernelPatchError(.stuck, patch: name,
                                       message: "timed out after \(fmt(options.unloadDeadline)) s waiting for \(what) (\(path))")
            }
            clock.sleep(options.pollInterval)
        }
    }

    // MARK: - Reading

    private func patchDir(_ name: String) -> String { LivepatchSysfs.directory(name) }

    private func readBool(_ path: String) -> Bool? { LivepatchSysfs.bool(kernel.readTrimmed(path)) }

    private func moduleLoaded(_ name: String) -> Bool { kernel.exists("/sys/module/\(name)") }

    private func livePatchNames() -> [String] { ((try? kernel.list(Self.livepatchRoot)) ?? []).sorted() }

    /// The patch currently in transition, if any.
    private func transitionPatch() -> String? {
        livePatchNames().first { readBool(LivepatchSysfs.path($0, .transition)) == true }
    }

    /// `702 kvmlp_busy, 15 kworker/0:1` or `no task (idle tasks or a race)`.
    static func describe(_ blockers: [TransitionBlocker]) -> String {
        guard !blockers.isEmpty else { return "no visible task (idle tasks, or it just finished)" }
        let shown = blockers.prefix(8).map { "\($0.tid == $0.pid ? "pid \($0.pid)" : "pid \($0.pid) tid \($0.tid)") (\($0.comm))" }
        return shown.joined(separator: ", ") + (blockers.count > 8 ? " and \(blockers.count - 8) more" : "")
    }

    private func emit(_ kind: KernelDriverEvent.Kind, _ patch: String, _ message: String, blockers: [TransitionBlocker] = []) {
        let event = KernelDriverEvent(kind, patch: patch, message: message, blockers: blockers)
        switch kind {
        case .softDeadline, .hardDeadline, .reverting, .forced, .warning, .busyRetry:
            logger.warning("\(event.description)")
            for b in blockers {
                logger.warning("  blocker pid \(b.pid) tid \(b.tid) \(b.comm) patch_state \(b.patchState)")
                for frame in b.stack.prefix(16) { logger.warning("    \(frame)") }
            }
        default:
            logger.debug("\(event.description)")
        }
        events(event)
    }
}

private func fmt(_ seconds: Double) -> String {
    let tenths = (seconds * 10).rounded() / 10
    return tenths == tenths.rounded() ? String(Int(tenths)) : String(tenths)
}

extension SysfsKernelPatchDriver {
    /// The driver as the CLI builds it: the real kernel with sysfs/proc under `root`, the reboot-required
    /// record under `<root>/var/lib/suture`, `forceTransition` from `--force-transition`, and the deadline
    /// overrides of `KernelDriverOptions.overridden(by:)` read from `environment` (used by the kernel tier
    /// to get a 3 s hard deadline).
    public static func system(root: String = "/", forceTransition: Bool = false, environment: [String: String] = [:],
                              events: @escaping @Sendable (KernelDriverEvent) -> Void = { _ in }) -> SysfsKernelPatchDriver {
        var o = KernelDriverOptions().overridden(by: environment)
        o.forceTransition = forceTransition
        var r = root
        while r.hasSuffix("/") { r.removeLast() }
        o.stateDirectory = r + o.stateDirectory
        return SysfsKernelPatchDriver(kernel: LinuxKernelInterface(root: root), clock: SystemDriverClock(), options: o,
                                      events: events)
    }
}
