#if canImport(Glibc)
import Glibc
#endif

/// Test hook for tracer-death safety: `SUTURE_TEST_SIGKILL_AT=POINT:N` makes suture SIGKILL itself the N-th
/// time the engine reaches `POINT` (counted per suture process), so a test can prove that the target
/// survives the tracer vanishing at exactly that instant. Points:
/// - `inject-regs`: an injected system call's registers are set, the thread has not run it yet;
/// - `inject-entry` / `inject-exit`: the thread is at the call's syscall-entry / syscall-exit stop;
/// - `restore`: the borrowed thread is back at a signal-path stop, registers not yet restored;
/// - `restore-mask`: its signal mask is restored, its registers not yet;
/// - `run-slice`: a thread that was inside the replaced code was resumed for a run slice;
/// - `window`: every thread is stopped and checked, before the detours (or original bytes) are written.
/// Without the variable, and in release builds (no `SUTURE_TEST_HOOKS`), nothing happens.
enum TracerDeathHook {
    #if SUTURE_TEST_HOOKS
    static let target: (point: String, count: Int)? = {
        guard let raw = getenv("SUTURE_TEST_SIGKILL_AT") else { return nil }
        let parts = String(cString: raw).split(separator: ":")
        guard parts.count == 2, let n = Int(parts[1]), n > 0 else { return nil }
        return (String(parts[0]), n)
    }()
    #else
    static let target: (point: String, count: Int)? = nil   // release builds carry no test hooks
    #endif
    nonisolated(unsafe) static var reached: [String: Int] = [:]

    /// Called by the engine at `point`; kills this process with SIGKILL when the hook names this visit.
    static func at(_ point: String) {
        guard let target, target.point == point else { return }
        let n = (reached[point] ?? 0) + 1
        reached[point] = n
        if n == target.count { kill(getpid(), SIGKILL) }
    }
}
