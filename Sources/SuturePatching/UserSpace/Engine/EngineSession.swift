#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim
import SutureCore
import SystemPackage

/// Everything one operation on one process does; lives on the ptrace thread only.
final class EngineSession {
    let pid: Int32
    /// The process as the engine's decisions read it.
    let tracee: LiveTracee
    let comm: String
    let options: UserPatchOptions
    let hooks: UserPatchHooks
    /// Threads seized in the current window.
    var threads: [Int32: StoppedThread] = [:]
    var firstStopNs: UInt64 = 0
    /// Run slices that took threads out of the patched code (whole operation; `stepOut`).
    var stepOutInstructions = 0
    /// `/proc/PID/status` said `Seccomp: 2` (filter mode).
    var seccompFiltered = false
    /// Seccomp filters per injecting thread, read once per operation.
    var seccompFilters: [Int32: SeccompFilterSet] = [:]
    /// `syscall; ret` and `__restore_rt` in the target, found once per operation (tracer-death-safe injection).
    var safeGadgets: SafeInjectionGadgets?
    var savedScheduler: (policy: Int32, priority: Int32)?
    /// libdwfl state for CFI unwinding, created once per operation outside the stopped window.
    var unwinder: StackUnwinder?
    var unwinderTried = false

    func prepareUnwinder() {
        if unwinderTried { return }
        unwinderTried = true
        unwinder = StackUnwinder(pid: pid)
    }

    init(pid: Int32, options: UserPatchOptions, hooks: UserPatchHooks) {
        self.pid = pid
        self.tracee = LiveTracee(pid: pid)
        self.comm = ProcFiles.comm(pid)
        self.options = options
        self.hooks = hooks
    }

    func error(_ code: UserPatchErrorCode, _ message: String, hint: String = "") -> UserPatchError {
        UserPatchError(code, pid: pid, comm: comm, message: message, hint: hint)
    }

    func processGone() -> Bool {
        guard let st = ProcFiles.stat(pid) else { return true }
        return st.state == "Z" || st.state == "X"
    }

    /// Maps a ptrace-level failure to a stable error.
    func map(_ f: PtraceFailure, phase: String) -> UserPatchError {
        switch f {
        case .exited:
            return error(.targetExited, "the process exited during \(phase)")
        case .exec:
            return error(.execRace, "the process called execve during \(phase)",
                         hint: "retry: the new program image is not patched")
        case let .permission(tid, e):
            return error(.permission, "PTRACE_SEIZE of thread \(tid) failed: \(Errno(rawValue: e).description)",
                         hint: "needs root (CAP_SYS_PTRACE); check Yama, SELinux deny_ptrace and existing tracers")
        case let .timeout(tid):
            return error(.unstoppable, "thread \(tid) did not stop within \(options.stopDeadline) s during \(phase)",
                         hint: "the thread may be in uninterruptible sleep (D state) or in a frozen cgroup; retry later")
        case let .failed(request, tid, e):
            if processGone() { return error(.targetExited, "the process exited during \(phase)") }
            return error(.unstoppable, "\(request) on thread \(tid) failed during \(phase): \(Errno(rawValue: e).description)")
        }
    }

    /// Runs the ptrace thread at SCHED_FIFO for the whole operation (prepare, every stopped window and
    /// the detaches): busy targets would otherwise starve the tracer between its polls and detaches
    /// (measured: seconds instead of microseconds). The previous policy is restored when the operation ends.
    func raiseScheduler() {
        if savedScheduler != nil { return }
        var prio: Int32 = 0
        let policy = cls_get_thread_scheduler(&prio)
        guard policy >= 0 else { return }
        if cls_set_thread_scheduler(SCHED_FIFO, 10) == 0 {
            savedScheduler = (policy, prio)
        }
    }

    func restoreScheduler() {
        if let s = savedScheduler {
            _ = cls_set_thread_scheduler(s.policy, s.priority)
            savedScheduler = nil
        }
    }
}
