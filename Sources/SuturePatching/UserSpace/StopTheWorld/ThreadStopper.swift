#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim
import SutureCore


/// Per-thread state during a stop-the-world window.
struct StoppedThread {
    var stopped = false
    /// The signal of the thread's signal-delivery-stop, passed on at detach (0 = none). The thread stays in
    /// that stop until then, so the kernel delivers the signal itself should the tracer die first.
    var pendingSignal: Int32 = 0
}

/// Stop-the-world: seizing and stopping every thread, releasing them, vfork children.
extension EngineSession {
    // MARK: - Stop the world

    /// Seizes and interrupts every thread until the set of TIDs in `/proc/PID/task` is stable and every
    /// one is stopped. New threads created meanwhile are auto-attached (`PTRACE_O_TRACECLONE`).
    func stopAll(phase: String) throws(UserPatchError) {
        threads = [:]
        firstStopNs = 0
        if processGone() { throw error(.targetExited, "the process exited before \(phase)") }
        // Checked before anything is seized (the suspended thread could not be stopped, nor released).
        for tid in ProcFiles.tids(pid) {
            if let child = vforkChild(of: tid) {
                throw error(.busy, "thread \(tid) is suspended in vfork(): vfork child \(child) shares the memory and has not exec'd or exited yet",
                            hint: "retry in a moment")
            }
        }
        let deadline = cls_monotonic_ns() + UInt64(options.stopDeadline * 1e9)
        let opts = Int(CLS_PTRACE_O_TRACECLONE | CLS_PTRACE_O_TRACEEXEC)
        // A zombie leader (main thread called pthread_exit) never reports a stop.
        let leaderZombie = ProcStat.read(pid: pid, tid: pid)?.state == "Z"
        do throws(PtraceFailure) {
            while true {
                let listed = ProcFiles.tids(pid)
                if listed.isEmpty { throw PtraceFailure.exited(tid: pid) }
                var fresh = false
                for tid in listed where threads[tid] == nil {
                    if tid == pid && leaderZombie { continue }
                    fresh = true
                    do throws(PtraceFailure) {
                        try Ptrace.seize(tid, options: opts)
                        threads[tid] = StoppedThread()
                        try Ptrace.interrupt(tid)
                    } catch {
                        switch error {
                        case .exited:
                            threads[tid] = nil
                        case .permission:
                            // Already ours: auto-attached by TRACECLONE before we saw its clone event.
                            let tracer = ProcFiles.status("/proc/\(pid)/task/\(tid)/status")?["TracerPid"]
                            if tracer == String(getpid()) {
                                threads[tid] = StoppedThread()
                            } else if ProcFiles.status("/proc/\(pid)/task/\(tid)/status") == nil {
                                threads[tid] = nil
                            } else {
                                throw error
                            }
                        default:
                            throw error
                        }
                    }
                }
                var waited = false
                for tid in Array(threads.keys) where threads[tid]?.stopped == false {
                    waited = true
                    let report = try Ptrace.waitStop(tid, deadline: deadline)
                    switch report {
                    case .gone:
                        threads[tid] = nil
                    case let .stopped(sig, event):
                        if firstStopNs == 0 { firstStopNs = cls_monotonic_ns() }
                        threads[tid]?.stopped = true
                        if event == Int32(CLS_PTRACE_EVENT_CLONE) {
                            let child = Int32(truncatingIfNeeded: Ptrace.eventMessage(tid))
                            if child > 0, threads[child] == nil { threads[child] = StoppedThread() }
                        } else if event == 0 {
                            threads[tid]?.pendingSignal = sig
                        }
                    }
                }
                if !fresh && !waited { break }
            }
        } catch {
            resumeAll()
            throw map(error, phase: phase)
        }
    }

    /// Detaches every seized thread, passing on its pending signal; returns the time of the last detach.
    @discardableResult
    func resumeAll() -> UInt64 {
        for (tid, t) in threads {
            Ptrace.detach(tid, signal: t.stopped ? t.pendingSignal : 0)
        }
        let end = cls_monotonic_ns()
        threads = [:]
        return end
    }

    /// BUSY when another process shares our target's memory (a `vfork`/`posix_spawn` child that has not
    /// exec'd yet): it is not in `/proc/PID/task`, so it cannot be stopped with the threads.
    func sharedMemoryChild() -> Int32? {
        for tid in threads.keys {
            if let child = vforkChild(of: tid) { return child }
        }
        return nil
    }

    /// The child of thread `tid` that still shares the process's memory (`kcmp(KCMP_VM)`): `tid` is
    /// suspended in `vfork()` until that child execs or exits, in a killable sleep that `PTRACE_INTERRUPT`
    /// cannot end, so it must never be seized meanwhile (a seized thread that cannot stop cannot be
    /// detached either).
    func vforkChild(of tid: Int32) -> Int32? {
        for child in ProcFiles.children(pid: pid, tid: tid) where cls_kcmp(pid, child, 1 /* KCMP_VM */, 0, 0) == 0 {
            return child
        }
        return nil
    }
}
