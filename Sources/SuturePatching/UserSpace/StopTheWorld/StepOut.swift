#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim
import SutureCore

/// Step-out: single-stepping a thread whose only hit is its pc out of the patched code.
extension EngineSession {
    /// Single-steps stopped thread `tid` (`PTRACE_SINGLESTEP`) until its pc leaves `ranges`, at most
    /// `options.stepOutLimit` instructions. Never steps a thread that is inside a system call (it could
    /// block or restart), about to enter the kernel (`syscall`, `sysenter`, `int 0x80`), or inside an rseq
    /// critical section.
    /// Signals that arrive meanwhile are kept and passed on at detach.
    /// - Returns: the number of instructions stepped when the thread left the ranges (or exited), nil when
    ///   it did not (the caller reports BUSY and retries later).
    /// - Throws: `.fatal` when ptrace fails for another reason than the thread exiting.
    func stepOut(tid: Int32, ranges: ActivenessRanges) throws(CommitFailure) -> Int? {
        let deadline = cls_monotonic_ns() + UInt64(options.stopDeadline * 1e9)
        var steps = 0
        do throws(PtraceFailure) {
            var regs = try Ptrace.getRegisters(tid)
            // orig_rax != -1: stopped inside a system call (restart semantics must stay untouched).
            if regs.orig_rax != UInt64.max || inRseqCriticalSection(tid: tid, rip: regs.rip) { return nil }
            while ranges.name(of: regs.rip) != nil {
                if steps >= options.stepOutLimit { return nil }
                guard let op = tracee.readMemory(at: regs.rip, count: 2), !EngineSession.entersKernel(op) else {
                    return nil
                }
                try Ptrace.singleStep(tid)
                switch try Ptrace.waitStop(tid, deadline: deadline) {
                case .gone:
                    threads[tid] = nil
                    return steps
                case let .stopped(sig, event):
                    // The trap of the step itself is SIGTRAP; any other signal arrived meanwhile.
                    if event == 0 && sig != SIGTRAP { threads[tid]?.keep(sig) }
                }
                steps += 1
                regs = try Ptrace.getRegisters(tid)
            }
            return steps
        } catch {
            if case .exited = error, !processGone() {
                threads[tid] = nil
                return steps
            }
            throw .fatal(map(error, phase: "stepping thread \(tid) out of the patched code"))
        }
    }

    /// Whether the instruction starting with `opcode` (its first two bytes) enters the kernel — `syscall`
    /// (0f 05), `sysenter` (0f 34), `int 0x80` (cd 80) — which a single-step must not do (it could block).
    static func entersKernel(_ opcode: [UInt8]) -> Bool {
        opcode == [0x0F, 0x05] || opcode == [0x0F, 0x34] || opcode == [0xCD, 0x80]
    }
}
