#if canImport(Glibc)
import Glibc
#endif
import SutureCore

/// Time source of the kernel driver: monotonic seconds and sleeping. Injectable so unit tests run a fake
/// kernel on virtual time (a 60 s hard deadline then takes no real time).
public protocol DriverClock: Sendable {
    /// Monotonic time in seconds (arbitrary origin).
    func now() -> Double
    /// Sleeps for `seconds` (≥ 0).
    func sleep(_ seconds: Double)
}

/// The real clock: `CLOCK_MONOTONIC` and `nanosleep(2)`.
public struct SystemDriverClock: DriverClock {
    /// Creates the clock.
    public init() {}

    /// Seconds on the monotonic clock (CLOCK_MONOTONIC).
    public func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Sleeps the calling thread for `seconds`.
    public func sleep(_ seconds: Double) {
        guard seconds > 0 else { return }
        var req = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
        var rem = timespec()
        while nanosleep(&req, &rem) != 0 && errno == EINTR { req = rem }
    }
}

/// Tunables of `SysfsKernelPatchDriver`. The defaults mirror kpatch and the kernel selftests
/// (`../shared/reference/kernel-livepatch.md` A.7): poll every 100 ms, report blockers at 15 s, apply the
/// stall policy at 60 s, retry EBUSY with doubling backoff.
public struct KernelDriverOptions: Sendable, Hashable {
    /// Seconds between two reads of `transition`.
    public var pollInterval: Double = 0.1
    /// Seconds after which the blocking tasks are logged (and again every `softDeadline` seconds).
    public var softDeadline: Double = 15
    /// Seconds after which the stall policy (`onStall`) is applied.
    public var hardDeadline: Double = 60
    /// `onStall: wait`: total seconds to keep waiting before giving up and leaving the transition running.
    public var waitLimit: Double = 600
    /// How many times an EBUSY (another transition in progress) is retried.
    public var busyRetries: Int = 6
    /// First EBUSY backoff in seconds; doubles each retry up to `busyMaxBackoff`.
    public var busyInitialBackoff: Double = 0.5
    /// Largest EBUSY backoff in seconds.
    public var busyMaxBackoff: Double = 4
    /// Seconds to wait for a patch directory to vanish, for `refcnt` to reach 0, and for `delete_module`.
    public var unloadDeadline: Double = 60
    /// Write `force` at the hard deadline (`--force-transition`). Never set by default: a forced patch's
    /// module can never be removed and the host must be rebooted to be trusted again.
    public var forceTransition: Bool = false
    /// Directory of Suture's state (the reboot-required record lives here), already under the root.
    public var stateDirectory: String = "/var/lib/suture"

    /// The defaults.
    public init() {}

    /// Applies environment overrides (seconds, decimal): `SUTURE_KERNEL_POLL`, `SUTURE_KERNEL_SOFT_DEADLINE`,
    /// `SUTURE_KERNEL_HARD_DEADLINE`, `SUTURE_KERNEL_WAIT_LIMIT`, `SUTURE_KERNEL_UNLOAD_DEADLINE`,
    /// `SUTURE_KERNEL_BUSY_RETRIES` (integer). Unparsable values are ignored.
    public func overridden(by environment: [String: String]) -> KernelDriverOptions {
        var o = self
        func d(_ k: String) -> Double? { environment[k].flatMap(Double.init).flatMap { $0 >= 0 ? $0 : nil } }
        if let v = d("SUTURE_KERNEL_POLL"), v > 0 { o.pollInterval = v }
        if let v = d("SUTURE_KERNEL_SOFT_DEADLINE") { o.softDeadline = v }
        if let v = d("SUTURE_KERNEL_HARD_DEADLINE") { o.hardDeadline = v }
        if let v = d("SUTURE_KERNEL_WAIT_LIMIT") { o.waitLimit = v }
        if let v = d("SUTURE_KERNEL_UNLOAD_DEADLINE") { o.unloadDeadline = v }
        if let v = environment["SUTURE_KERNEL_BUSY_RETRIES"].flatMap(Int.init), v >= 0 { o.busyRetries = v }
        return o
    }
}

/// Something the driver did or saw, for progress output and the journal.
public struct KernelDriverEvent: Sendable, Hashable, CustomStringConvertible {
    /// Event kinds.
    public enum Kind: String, Sendable, Hashable {
        /// A precheck note that does not stop activation (target module not loaded: patched when loaded).
        case note
        /// `finit_module` is about to be called.
        case loading
        /// An operation got EBUSY (another transition in progress) and will be retried.
        case busyRetry
        /// A transition is being waited for.
        case transitionStarted
        /// The soft deadline passed; `blockers` holds the tasks blocking the transition.
        case softDeadline
        /// The hard deadline passed; the stall policy is applied.
        case hardDeadline
        /// The transition is being reversed (opposite value written to `enabled`).
        case reverting
        /// `force` was written; the host needs a reboot.
        case forced
        /// The transition finished.
        case transitionFinished
        /// `enabled` was written.
        case disabling
        /// A module was removed with `delete_module`.
        case unloaded
        /// A module replaced by an atomic-replace patch was removed.
        case replacedRemoved
        /// Something went wrong that does not fail the operation.
        case warning
    }

    /// The kind.
    public var kind: Kind
    /// The livepatch (module) name.
    public var patch: String
    /// Human-readable detail.
    public var message: String
    /// Blocking tasks, for `softDeadline`/`hardDeadline`.
    public var blockers: [TransitionBlocker]

    /// Memberwise initializer.
    public init(_ kind: Kind, patch: String, message: String, blockers: [TransitionBlocker] = []) {
        self.kind = kind
        self.patch = patch
        self.message = message
        self.blockers = blockers
    }

    /// `softDeadline livepatch_x: message`.
    public var description: String { "\(kind.rawValue) \(patch): \(message)" }
}

/// Reads the tasks that block a livepatch transition: every `/proc/<pid>/task/<tid>` whose `patch_state`
/// is neither -1 (no transition) nor the transition's target state, with `comm` and kernel `stack`
/// (`Documentation/livepatch/livepatch.rst` §3; kpatch `show_stalled_processes`, SUSE `klp blocking`).
public enum TransitionBlockerReader {
    /// - Parameters:
    ///   - kernel: where to read `/proc`.
    ///   - target: the transition's target state: 1 when patching, 0 when unpatching (the current
    ///     `enabled` of the patch in transition).
    /// - Returns: blockers sorted by pid then tid; tasks that vanish while being read are skipped.
    public static func read(_ kernel: any KernelInterface, target: Int) -> [TransitionBlocker] {
        guard let pids = try? kernel.list("/proc") else { return [] }
        var out: [TransitionBlocker] = []
        for pidName in pids {
            guard let pid = Int32(pidName) else { continue }
            let tids = (try? kernel.list("/proc/\(pid)/task"))?.compactMap { Int32($0) } ?? [pid]
            for tid in tids {
                let base = "/proc/\(pid)/task/\(tid)"
                guard let stateText = kernel.readTrimmed("\(base)/patch_state")
                        ?? (tid == pid ? kernel.readTrimmed("/proc/\(pid)/patch_state") : nil),
                      let state = Int(stateText), state >= 0, state != target else { continue }
                let comm = kernel.readTrimmed("\(base)/comm") ?? kernel.readTrimmed("/proc/\(pid)/comm") ?? "?"
                let stack = (kernel.readTrimmed("\(base)/stack") ?? "")
                    .split(separator: "\n").map { String($0).trimmingWhitespace() }.filter { !$0.isEmpty }
                out.append(TransitionBlocker(pid: pid, tid: tid, comm: comm, patchState: state, stack: stack))
            }
        }
        return out.sorted { ($0.pid, $0.tid) < ($1.pid, $1.tid) }
    }
}

/// The "reboot required" record: one line per forced livepatch transition, appended to
/// `<stateDirectory>/reboot-required` and never removed by Suture (a forced patch's module can never be
/// unloaded; `Documentation/livepatch/livepatch.rst` §3 "a reboot should be planned").
///
/// Line format (tab-separated): `<module>\t<boot_id>\t<unix seconds>\t<reason>`.
public enum RebootRequiredRecord {
    /// File name inside the state directory.
    public static let fileName = "reboot-required"

    /// One forced transition.
    public struct Entry: Sendable, Hashable {
        /// The livepatch module.
        public var module: String
        /// `/proc/sys/kernel/random/boot_id` when it was forced.
        public var bootID: String
        /// Unix time in seconds.
        public var time: Int
        /// Why.
        public var reason: String
    }

    /// Appends an entry (creating the directory), fsync'd.
    /// - Throws: `KernelCallError` from `open`/`write`.
    public static func append(_ entry: Entry, stateDirectory: String) throws(KernelCallError) {
        var path = ""
        for part in stateDirectory.split(separator: "/") {
            path += "/" + part
            if mkdir(path, 0o755) != 0 && errno != EEXIST { throw KernelCallError("mkdir", path, errno: errno) }
        }
        let file = stateDirectory + "/" + fileName
        let fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        if fd < 0 { throw KernelCallError("open", file, errno: errno) }
        defer { close(fd) }
        let clean = { (s: String) in s.replacingTabsAndNewlines() }
        let line = "\(clean(entry.module))\t\(clean(entry.bootID))\t\(entry.time)\t\(clean(entry.reason))\n"
        let bytes = Array(line.utf8)
        let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        if n != bytes.count { throw KernelCallError("write", file, errno: n < 0 ? errno : EIO) }
        fsync(fd)
    }

    /// All entries; empty when the file does not exist. Malformed lines are skipped.
    public static func read(stateDirectory: String) -> [Entry] {
        guard let text = try? LinuxKernelInterface().read(stateDirectory + "/" + fileName) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard f.count >= 4, let t = Int(f[2]) else { return nil }
            return Entry(module: f[0], bootID: f[1], time: t, reason: f[3...].joined(separator: " "))
        }
    }
}

extension String {
    func replacingTabsAndNewlines() -> String {
        String(map { $0 == "\t" || $0 == "\n" || $0 == "\r" ? " " : $0 })
    }
}
