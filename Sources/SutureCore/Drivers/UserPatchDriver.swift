/// Stable error codes of the user-space engine (ptrace-engine issue; ../shared/reference/userspace-engine.md §3.11).
public enum UserPatchErrorCode: String, Codable, Sendable, Hashable, CaseIterable {
    /// The target object is not mapped in the process, or its build-id differs. Skip.
    case notApplicable = "NOT_APPLICABLE"
    /// The patch is already active in the process (success, no-op).
    case alreadyApplied = "ALREADY_APPLIED"
    /// The process exited during the operation (not a failure for the reconciler).
    case targetExited = "TARGET_EXITED"
    /// Yama scope 3, already traced (`TracerPid`), LSM denial.
    case permission = "PERMISSION"
    /// A seccomp filter would block an injected syscall.
    case seccompBlocked = "SECCOMP_BLOCKED"
    /// A thread is executing, or has a return address in, a replaced function (retryable).
    case busy = "BUSY"
    /// A thread did not stop (D state, frozen cgroup) before the deadline.
    case unstoppable = "UNSTOPPABLE"
    /// No free address range within ±2 GiB of the target text.
    case noNearSpace = "NO_NEAR_SPACE"
    /// A function is shorter than the detour or has a branch into the detour bytes, or its entry bytes
    /// differ from the bundle's expectation.
    case unpatchableFunction = "UNPATCHABLE_FUNCTION"
    /// A function entry holds neither the original bytes nor our detour.
    case foreignModification = "FOREIGN_MODIFICATION"
    /// The process exec'd mid-operation (retry later).
    case execRace = "EXEC_RACE"
    /// A rollback inside the process failed; the process needs an operator.
    case inconsistent = "INCONSISTENT"
}

/// An error from the user-space engine, naming the process and a hint.
public struct UserPatchError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The stable code.
    public var code: UserPatchErrorCode
    /// Process id.
    public var pid: Int32
    /// Process comm (empty if unknown).
    public var comm: String
    /// What happened.
    public var message: String
    /// What the operator can do.
    public var hint: String

    /// Memberwise initializer.
    public init(_ code: UserPatchErrorCode, pid: Int32, comm: String = "", message: String, hint: String = "") {
        self.code = code
        self.pid = pid
        self.comm = comm
        self.message = message
        self.hint = hint
    }

    /// `BUSY: pid 1234 (demo): … (hint: …)`.
    public var description: String {
        var s = "\(code.rawValue): pid \(pid)"
        if !comm.isEmpty { s += " (\(comm))" }
        s += ": \(message)"
        if !hint.isEmpty { s += " (hint: \(hint))" }
        return s
    }
}

/// What a successful user-patch operation did.
public enum UserPatchOutcome: String, Codable, Sendable, Hashable {
    /// The patch became active in the process.
    case activated
    /// It was already active (no ptrace stop happened).
    case alreadyActive
    /// The patch was reverted and its region unmapped.
    case deactivated
    /// It was not present (nothing done).
    case notPresent
}

/// Tunables of one user-patch operation.
public struct UserPatchOptions: Sendable, Hashable {
    /// Total time to retry while the process is BUSY, in seconds (default 2).
    public var busyDeadline: Double
    /// Time to wait for every thread to stop, in seconds (default 5).
    public var stopDeadline: Double
    /// Most run slices (resumed alone for a few microseconds, then `PTRACE_INTERRUPT`) a stopped thread
    /// whose pc is inside the code being replaced (or the patch code being removed) gets to leave it, per
    /// thread and attempt (default 256; 0 = never, report BUSY and retry). Hot small functions are
    /// otherwise almost never found empty.
    public var stepOutLimit: Int

    /// Memberwise initializer.
    public init(busyDeadline: Double = 2, stopDeadline: Double = 5, stepOutLimit: Int = 256) {
        self.busyDeadline = busyDeadline
        self.stopDeadline = stopDeadline
        self.stepOutLimit = stepOutLimit
    }
}

/// Activates and deactivates user patches in running processes. Implemented by `SuturePatching`'s
/// ptrace engine; the executor and the CLI call it.
public protocol UserPatchDriver: Sendable {
    /// Makes `entity` of `bundle` live in process `pid` (`startTime` guards against a recycled pid).
    /// - Throws: `UserPatchError` with a stable code; `.alreadyApplied` is reported as the
    ///   `.alreadyActive` outcome instead.
    func activate(bundle: ResolvedBundle, entity: BundleEntity, pid: Int32, startTime: UInt64?,
                  options: UserPatchOptions) throws(UserPatchError) -> UserPatchOutcome

    /// Reverts patch `uuid` in process `pid`, restoring the original bytes from the region header and
    /// unmapping the region. Needs no outside state.
    /// - Throws: `UserPatchError`.
    func deactivate(uuid: String, pid: Int32, startTime: UInt64?,
                    options: UserPatchOptions) throws(UserPatchError) -> UserPatchOutcome
}
