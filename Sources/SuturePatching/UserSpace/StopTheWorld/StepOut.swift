#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim
import SutureCore

/// Step-out: letting a thread whose only hit is its pc run out of the patched code, in short slices that
/// end with `PTRACE_INTERRUPT` — never with the trap flag, so the thread is correct at every instant even if
/// the tracer dies (a single-stepped thread whose tracer vanishes dies of SIGTRAP).
extension EngineSession {
    /// Lets stopped thread `tid` run for a short slice (`PTRACE_CONT`, a sleep of 5–50 µs, growing to 1 ms
    /// while it makes no progress, then `PTRACE_INTERRUPT`) until its pc is outside `ranges`, at most
    /// `options.stepOutLimit` slices. The other threads stay stopped. Never runs out a thread stopped inside
    /// a system call (it would rather block there) or inside an rseq critical section.
    /// A signal the thread stopped with is delivered with the next slice (its handler runs now); one that
    /// arrives during the last slice is passed on at detach. Threads the thread creates meanwhile are
    /// auto-attached (`PTRACE_O_TRACECLONE`) and join the window.
    /// - Returns: the number of slices when the thread left the ranges (or exited), nil when it did not
    ///   (the caller reports BUSY and retries later).
    /// - Throws: `.fatal` when ptrace fails for another reason than the thread exiting, or the process
    ///   exec'd meanwhile.
    func stepOut(tid: Int32, ranges: ActivenessRanges) throws(CommitFailure) -> Int? {
        let deadline = cls_monotonic_ns() + UInt64(options.stopDeadline * 1e9)
        var slices = 0
        var sliceNs: UInt64 = 5_000
        do throws(PtraceFailure) {
            var regs = try Ptrace.getRegisters(tid)
            // orig_rax != -1: stopped inside a system call.
            if regs.orig_rax != UInt64.max || inRseqCriticalSection(tid: tid, rip: regs.rip) { return nil }
            while ranges.name(of: regs.rip) != nil {
                if slices >= options.stepOutLimit { return nil }
                let signal = threads[tid]?.pendingSignal ?? 0
                threads[tid]?.pendingSignal = 0
                try Ptrace.cont(tid, signal: signal)
                TracerDeathHook.at("run-slice")
                var ts = timespec(tv_sec: 0, tv_nsec: Int(sliceNs / 2 + UInt64.random(in: 0...(sliceNs * 9 / 2))))
                nanosleep(&ts, nil)
                try Ptrace.interrupt(tid)
                guard try waitSliceStop(tid: tid, deadline: deadline) else { return slices }
                slices += 1
                let before = regs.rip
                regs = try Ptrace.getRegisters(tid)
                if regs.rip == before { sliceNs = min(sliceNs * 2, 200_000) }
                if regs.orig_rax != UInt64.max && ranges.name(of: regs.rip) != nil { return nil }
            }
            return slices
        } catch {
            if case .exited = error, !processGone() {
                threads[tid] = nil
                return slices
            }
            throw .fatal(map(error, phase: "running thread \(tid) out of the patched code"))
        }
    }

    /// Waits for the stop that ends a run slice. A signal-delivery-stop is kept as the thread's pending
    /// signal; a clone event adds the new thread to the window (waiting for its first stop).
    /// - Returns: false when the thread exited.
    private func waitSliceStop(tid: Int32, deadline: UInt64) throws(PtraceFailure) -> Bool {
        switch try Ptrace.waitStop(tid, deadline: deadline) {
        case .gone:
            threads[tid] = nil
            return false
        case let .stopped(sig, event):
            TracerDeathHook.at("run-slice-stop")
            if event == 0 {
                threads[tid]?.pendingSignal = sig
            } else if event == Int32(CLS_PTRACE_EVENT_CLONE) {
                let child = Int32(truncatingIfNeeded: Ptrace.eventMessage(tid))
                if child > 0, threads[child] == nil {
                    threads[child] = StoppedThread()
                    switch try Ptrace.waitStop(child, deadline: deadline) {
                    case .gone: threads[child] = nil
                    case .stopped: threads[child]?.stopped = true
                    }
                }
            }
            return true
        }
    }

    /// Whether the instruction starting with `opcode` (its first two bytes) enters the kernel — `syscall`
    /// (0f 05), `sysenter` (0f 34), `int 0x80` (cd 80) — which a single-step must not do (it could block).
    static func entersKernel(_ opcode: [UInt8]) -> Bool {
        opcode == [0x0F, 0x05] || opcode == [0x0F, 0x34] || opcode == [0xCD, 0x80]
    }
}
