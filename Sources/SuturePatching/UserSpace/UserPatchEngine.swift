#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim
import SutureCore

/// The ptrace engine: activates and deactivates user patches in running x86-64 processes.
///
/// Each operation runs entirely on its own ``PtraceThread`` as one `EngineSession`. Phases
/// (docs/user-patches.md) and the folder that holds each:
/// - `Preflight/`: `/proc/PID/status`, Yama, seccomp mode;
/// - `Engine/Activation.swift`: target match (device:inode, build-id, load bias), detour planning, layout;
/// - `Region/`: address placement near the target, the region header, prepare (one thread stopped:
///   memfd + mmap by injected system calls, contents written from the tracer), readback;
/// - `Injection/`: the named system calls, the injector, the borrowed thread, the seccomp check;
/// - `StopTheWorld/`: stopping every thread, the activeness check, stepping out, the stopped window;
/// - `Commit/`: 5-byte detours and header ACTIVE with BUSY back-off, rollback, revert (deactivation works
///   from the region header alone).
public enum UserPatchEngine {
    /// Activates `request` in `pid`.
    /// - Throws: `UserPatchError`; `.alreadyApplied` is returned as `.alreadyActive` instead.
    public static func activate(_ request: UserPatchRequest, pid: Int32, startTime: UInt64? = nil,
                                options: UserPatchOptions = UserPatchOptions(),
                                hooks: UserPatchHooks = UserPatchHooks()) throws(UserPatchError) -> UserPatchEngineResult {
        try runSession(pid: pid, options: options, hooks: hooks) { (session) throws(UserPatchError) in
            try session.activate(request, startTime: startTime)
        }
    }

    /// Deactivates patch `uuid` in `pid` using only the region header found in the process.
    /// - Throws: `UserPatchError`.
    public static func deactivate(uuid: String, pid: Int32, startTime: UInt64? = nil,
                                  options: UserPatchOptions = UserPatchOptions(),
                                  hooks: UserPatchHooks = UserPatchHooks()) throws(UserPatchError) -> UserPatchEngineResult {
        try runSession(pid: pid, options: options, hooks: hooks) { (session) throws(UserPatchError) in
            try session.deactivate(uuid: uuid.lowercased(), startTime: startTime)
        }
    }

    /// Lists Suture patch regions in `pid` from `/proc/PID/maps` and their headers (process_vm_readv);
    /// never stops the process. Empty when the process is gone.
    public static func readback(pid: Int32) -> [UserPatchRegion] {
        guard let maps = ProcMapping.read(pid: pid) else { return [] }
        return regions(pid: pid, maps: maps)
    }

    /// Runs `operation` in a fresh session on a dedicated ptrace thread.
    ///
    /// Every step leaves the target correct if the tracer dies (docs/user-patches.md, "If suture dies");
    /// still, SIGINT/SIGTERM/SIGHUP/SIGQUIT wait for the operation's end (when `suture` installed the
    /// deferral), so an operation is not cut short, and the OOM killer is told to pick someone else meanwhile.
    private static func runSession(pid: Int32, options: UserPatchOptions, hooks: UserPatchHooks,
                                   _ operation: @escaping (EngineSession) throws(UserPatchError) -> UserPatchEngineResult)
        throws(UserPatchError) -> UserPatchEngineResult {
        cls_critical_enter()
        defer { cls_critical_leave() }
        let thread = PtraceThread(name: "suture-ptrace")
        defer { thread.shutdown() }
        let result: Result<UserPatchEngineResult, UserPatchError> = thread.run {
            let session = EngineSession(pid: pid, options: options, hooks: hooks)
            do throws(UserPatchError) {
                return .success(try operation(session))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }
}
