#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim
import SutureCore

/// The borrowed thread: syscall gadget search, seizing one thread outside rseq critical sections, exact
/// register restore.
extension EngineSession {
    /// Finds an existing `syscall` instruction (0f 05) in an executable mapping: the vDSO first (8 KiB),
    /// then libc, then any other r-x mapping. Nothing is written into the target's text.
    func findSyscallGadget() -> UInt64? {
        if let gadget { return gadget }
        guard let maps = ProcMapping.read(pid: pid) else { return nil }
        let exec = maps.filter { $0.executable && $0.readable }
        let ordered = exec.filter { $0.path == "[vdso]" } + exec.filter { $0.path.contains("/libc") }
            + exec.filter { $0.path != "[vdso]" && !$0.path.contains("/libc") && !$0.path.hasPrefix("/memfd:") }
        for m in ordered {
            var addr = m.start
            while addr < m.end {
                let n = Int(min(m.end - addr, 65536))
                guard let b = tracee.readMemory(at: addr, count: n) else { break }
                var i = 0
                while i + 1 < b.count {
                    if b[i] == 0x0f && b[i + 1] == 0x05 {
                        gadget = addr + UInt64(i)
                        return gadget
                    }
                    i += 1
                }
                addr += UInt64(max(n - 1, 1))
            }
        }
        return nil
    }

    /// Seizes one thread (preferring one blocked in a syscall, never one inside an rseq critical section),
    /// runs `body` with an injector, restores the thread's registers exactly and detaches it.
    func withInjectionThread<T>(phase: String, _ body: (Injector) throws(UserPatchError) -> T) throws(UserPatchError) -> T {
        guard let gadget = findSyscallGadget() else {
            throw error(.unpatchableFunction, "no syscall instruction found in any executable mapping")
        }
        let deadline = cls_monotonic_ns() + UInt64(options.stopDeadline * 1e9)
        while true {
            let all = ProcFiles.tids(pid)
            if all.isEmpty { throw error(.targetExited, "the process exited during \(phase)") }
            let inSyscall = all.filter { ProcFiles.inSyscall(pid: pid, tid: $0) }
            let ordered = inSyscall + all.filter { !inSyscall.contains($0) }
            for tid in ordered where vforkChild(of: tid) == nil {
                do throws(PtraceFailure) {
                    try Ptrace.seize(tid, options: Int(CLS_PTRACE_O_TRACEEXEC))
                } catch {
                    if case .exited = error { continue }
                    throw map(error, phase: phase)
                }
                var pending: [Int32] = []
                var saved = user_regs_struct()
                do throws(PtraceFailure) {
                    try Ptrace.interrupt(tid)
                    let report = try Ptrace.waitStop(tid, deadline: deadline)
                    if report == .gone { continue }
                    if let s = report.deliverableSignal { pending.append(s) }
                    saved = try Ptrace.getRegisters(tid)
                } catch {
                    Ptrace.detach(tid, signal: pending.first ?? 0)
                    if case .exited = error { continue }
                    throw map(error, phase: phase)
                }
                if inRseqCriticalSection(tid: tid, rip: saved.rip) {
                    Ptrace.detach(tid, signal: pending.first ?? 0)
                    continue
                }
                var filters: SeccompFilterSet?
                do throws(UserPatchError) {
                    filters = try seccompFilterSet(tid: tid, gadget: gadget)
                } catch {
                    Ptrace.detach(tid, signal: pending.first ?? 0)
                    throw error
                }
                let inj = Injector(pid: pid, tid: tid, saved: saved, gadget: gadget, deadline: deadline, session: self)
                inj.pendingSignals = pending
                inj.seccomp = filters
                let result: Result<T, UserPatchError>
                do throws(UserPatchError) {
                    result = .success(try body(inj))
                } catch {
                    result = .failure(error)
                }
                // Restore registers exactly (orig_rax and an -ERESTART* rax included, so an interrupted
                // syscall restarts), then detach passing on the first pending signal and re-raising others.
                let restored: Bool
                do throws(PtraceFailure) {
                    try Ptrace.setRegisters(tid, saved)
                    restored = true
                } catch {
                    restored = false
                }
                Ptrace.detach(tid, signal: inj.pendingSignals.first ?? 0)
                for s in inj.pendingSignals.dropFirst() { _ = cls_tgkill(pid, tid, s) }
                if !restored && !processGone() {
                    throw error(.inconsistent, "could not restore the registers of thread \(tid)", hint: "restart the process")
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
