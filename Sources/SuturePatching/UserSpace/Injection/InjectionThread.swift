#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim
import SutureCore

/// The borrowed thread: gadget search, seizing one thread outside rseq critical sections, the signal-return
/// frame that makes it tracer-death-safe, exact register restore.
extension EngineSession {
    /// The `syscall; ret` and `__restore_rt` sequences of the target (``SafeInjectionGadgets``), found once.
    func findSafeInjectionGadgets() -> SafeInjectionGadgets? {
        if let safeGadgets { return safeGadgets }
        guard let maps = ProcMapping.read(pid: pid) else { return nil }
        safeGadgets = SafeInjectionGadgets.find(pid: pid, maps: maps)
        return safeGadgets
    }

    /// Seizes one thread (preferring one blocked in a syscall, never one inside an rseq critical section),
    /// stops it at a `PTRACE_EVENT_STOP` (a signal that stops it first is delivered right away, so none is
    /// held back by the tracer), saves its registers, signal mask and XSAVE state, writes the
    /// ``SignalReturnFrame`` below its red zone, runs `body` with an injector, restores the thread exactly
    /// and detaches it (``Injector/finish()``).
    func withInjectionThread<T>(phase: String, _ body: (Injector) throws(UserPatchError) -> T) throws(UserPatchError) -> T {
        guard let gadgets = findSafeInjectionGadgets() else {
            throw error(.unpatchableFunction,
                        "no `syscall; ret` and `__restore_rt` (mov rax, 15; syscall) sequences found in the executable mappings",
                        hint: "the engine injects system calls only through code that returns the thread to its own context if suture dies; a program without glibc is not supported")
        }
        let deadline = cls_monotonic_ns() + UInt64(options.stopDeadline * 1e9)
        while true {
            let all = ProcFiles.tids(pid)
            if all.isEmpty { throw error(.targetExited, "the process exited during \(phase)") }
            let inSyscall = all.filter { ProcFiles.inSyscall(pid: pid, tid: $0) }
            let ordered = inSyscall + all.filter { !inSyscall.contains($0) }
            for tid in ordered where vforkChild(of: tid) == nil {
                do throws(PtraceFailure) {
                    try Ptrace.seize(tid, options: Int(CLS_PTRACE_O_TRACEEXEC | CLS_PTRACE_O_TRACESYSGOOD))
                } catch {
                    if case .exited = error { continue }
                    throw map(error, phase: phase)
                }
                var saved = user_regs_struct()
                var mask: UInt64 = 0
                var xstate: [UInt8] = []
                do throws(PtraceFailure) {
                    try Ptrace.interrupt(tid)
                    var gone = false
                    while true {
                        let report = try Ptrace.waitStop(tid, deadline: deadline)
                        guard case let .stopped(sig, event) = report else { gone = true; break }
                        if event != 0 { break }
                        // A signal-delivery-stop before our PTRACE_EVENT_STOP: deliver it now; the
                        // interrupt is still pending and stops the thread right after.
                        try Ptrace.cont(tid, signal: sig)
                    }
                    if gone { continue }
                    saved = try Ptrace.getRegisters(tid)
                    mask = try Ptrace.signalMask(tid)
                    xstate = try Ptrace.xstate(tid)
                } catch {
                    Ptrace.detach(tid)
                    if case .exited = error { continue }
                    throw map(error, phase: phase)
                }
                if inRseqCriticalSection(tid: tid, rip: saved.rip) {
                    Ptrace.detach(tid)
                    continue
                }
                var filters: SeccompFilterSet?
                do throws(UserPatchError) {
                    filters = try seccompFilterSet(tid: tid, gadget: gadgets.syscallReturn)
                    if let filters {
                        let action = filters.action(for: SeccompData(nr: LinuxSyscall.rtSigreturn.seccompNumber,
                                                                     instructionPointer: gadgets.restorer &+ 9, args: []))
                        if !SeccompFilterSet.allows(action) {
                            throw error(.seccompBlocked,
                                        "the seccomp filter of thread \(tid) answers rt_sigreturn with \(SeccompFilterSet.describe(action)); nothing was injected",
                                        hint: "the engine needs rt_sigreturn to return the thread to its own context if suture dies")
                        }
                    }
                } catch {
                    Ptrace.detach(tid)
                    throw error
                }
                guard let frame = SignalReturnFrame(regs: saved, sigmask: mask, xstate: xstate, restorer: gadgets.restorer),
                      Ptrace.writeMemory(pid: pid, address: frame.frameAddress, bytes: frame.bytes) else {
                    Ptrace.detach(tid)
                    if processGone() { throw error(.targetExited, "the process exited during \(phase)") }
                    throw error(.unstoppable, "cannot write a signal-return frame below the stack pointer of thread \(tid) (0x\(hex(saved.rsp))) or its XSAVE state lacks the signal-frame format")
                }
                let inj = Injector(pid: pid, tid: tid, saved: saved, savedMask: mask, gadgets: gadgets, frame: frame,
                                   deadline: deadline, session: self)
                inj.seccomp = filters
                let result: Result<T, UserPatchError>
                do throws(UserPatchError) {
                    result = .success(try body(inj))
                } catch {
                    result = .failure(error)
                }
                if !inj.finish() && !processGone() {
                    throw error(.inconsistent, "could not restore the registers of thread \(tid) (it returns to its own context through the signal-return frame)",
                                hint: "restart the process if it misbehaves")
                }
                return try result.get()
            }
            if cls_monotonic_ns() > deadline {
                throw error(.unstoppable, "no thread could be stopped outside an rseq critical section within \(options.stopDeadline) s")
            }
            var ts = timespec(tv_sec: 0, tv_nsec: 1_000_000)
            nanosleep(&ts, nil)
        }
    }

    /// Whether `rip` lies in the thread's current rseq critical section (struct rseq.rseq_cs →
    /// struct rseq_cs {version, flags, start_ip, post_commit_offset, abort_ip}; linux/rseq.h).
    func inRseqCriticalSection(tid: Int32, rip: UInt64) -> Bool {
        guard let area = Ptrace.rseqArea(tid),
              let csPtr = tracee.readMemory(at: area + 8, count: 8) else { return false }
        let cs = csPtr.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        if cs == 0 { return false }
        guard let d = tracee.readMemory(at: cs, count: 32) else { return true }
        func u(_ o: Int) -> UInt64 { (0..<8).reduce(UInt64(0)) { $0 | UInt64(d[o + $1]) << (8 * UInt64($1)) } }
        let start = u(8), len = u(16)
        return rip >= start && rip < start &+ len
    }
}
