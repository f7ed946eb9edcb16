#if canImport(Glibc)
import Glibc
#endif

/// A kernel `rt_sigframe` (x86-64) that returns a borrowed thread to its own context: the safety net of
/// every injected system call. The injection runs `syscall; ret` with `rsp` pointing at this frame's
/// return address, which is `__restore_rt` (`mov rax, 15; syscall`): if the tracer vanishes at any
/// instant, the thread finishes the injected call, returns into `rt_sigreturn`, and the kernel restores
/// every register, the FPU/AVX state and the signal mask from the frame — exactly what the kernel does at
/// the end of a signal handler. While the tracer lives, the thread never executes the `ret`: the tracer
/// stops it at the syscall-exit and restores the registers itself (see `docs/user-patches.md`, "If suture
/// dies").
///
/// Layout written at `frameAddress` (arch/x86/include/asm/sigframe.h, uapi asm/sigcontext.h,
/// asm-generic/ucontext.h): `pretcode` (8) then `struct ucontext` — `uc_flags` (8), `uc_link` (8),
/// `uc_stack` (24), `uc_mcontext` = `struct sigcontext` (256), `uc_sigmask` (8) — and, 64-byte aligned
/// above it, the XSAVE area (`PTRACE_GETREGSET NT_X86_XSTATE`, with `struct _fpx_sw_bytes` at 464)
/// followed by `FP_XSTATE_MAGIC2`.
struct SignalReturnFrame {
    /// Where `rsp` points when the injected `syscall; ret` runs (the `pretcode` slot).
    let frameAddress: UInt64
    /// The bytes to write at `frameAddress` (frame, padding, XSAVE area, magic).
    let bytes: [UInt8]

    /// Bytes kept free below the thread's stack pointer: the x86-64 ABI red zone.
    static let redZone: UInt64 = 128
    static let ucontextSize = 304
    static let xstateMagic1: UInt32 = 0x4650_5853
    static let xstateMagic2: UInt32 = 0x4650_5845

    /// The registers a thread stopped at `regs` will run if nothing else touches it: when it was stopped
    /// inside an interrupted system call (`orig_rax ≥ 0`, `rax` = -ERESTARTSYS/-ERESTARTNOINTR/
    /// -ERESTARTNOHAND), the kernel would restart it (rip − 2, rax = orig_rax); -ERESTART_RESTARTBLOCK
    /// restarts through `restart_syscall` (219). Mirrors arch_do_signal_or_restart without a handler.
    static func resumeContext(_ regs: user_regs_struct) -> user_regs_struct {
        var r = regs
        guard Int64(bitPattern: regs.orig_rax) >= 0 else { return r }
        switch Int64(bitPattern: regs.rax) {
        case -512, -513, -514: // ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND
            r.rax = regs.orig_rax
            r.rip = regs.rip &- 2
        case -516: // ERESTART_RESTARTBLOCK
            r.rax = 219
            r.rip = regs.rip &- 2
        default:
            break
        }
        r.orig_rax = UInt64.max
        return r
    }

    /// Builds the frame for a thread whose saved registers are `regs`, blocked-signal mask `sigmask` and
    /// XSAVE area `xstate` (as `PTRACE_GETREGSET NT_X86_XSTATE` returns it: standard format, the user
    /// XCR0 in bytes 464–471), below its red zone. The software-reserved bytes 464–511 are replaced by the
    /// `struct _fpx_sw_bytes` a signal frame carries (magic1, extended size, XCR0 as the feature mask, size;
    /// uapi asm/sigcontext.h), so `rt_sigreturn` restores every vector register, not just x87/SSE.
    /// - Parameters:
    ///   - restorer: address of a `mov rax, 15; syscall` sequence (`__restore_rt`) in the target.
    /// - Returns: nil when `xstate` is shorter than the legacy area plus the XSAVE header (576 bytes).
    init?(regs: user_regs_struct, sigmask: UInt64, xstate: [UInt8], restorer: UInt64) {
        guard xstate.count >= 576 else { return nil }
        var xs = xstate
        let xcr0 = (0..<8).reduce(UInt64(0)) { $0 | UInt64(xstate[464 + $1]) << (8 * UInt64($1)) }
        let xstateSize = xstate.count
        func put32(_ v: UInt32, _ o: Int) { for i in 0..<4 { xs[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) } }
        for i in 464..<512 { xs[i] = 0 }
        put32(SignalReturnFrame.xstateMagic1, 464)
        put32(UInt32(xstateSize + 4), 468)
        put32(UInt32(truncatingIfNeeded: xcr0), 472)
        put32(UInt32(truncatingIfNeeded: xcr0 >> 32), 476)
        put32(UInt32(xstateSize), 480)
        let resume = SignalReturnFrame.resumeContext(regs)
        // XSAVE area: 64-byte aligned, below the red zone, with room for MAGIC2.
        let fpAddress = (regs.rsp &- SignalReturnFrame.redZone &- UInt64(xstateSize + 4)) & ~UInt64(63)
        let address = (fpAddress &- UInt64(8 + SignalReturnFrame.ucontextSize)) & ~UInt64(15)
        var b = [UInt8](repeating: 0, count: Int(fpAddress - address) + xstateSize + 4)
        func put(_ v: UInt64, _ o: Int) { for i in 0..<8 { b[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) } }
        func put16(_ v: UInt64, _ o: Int) { b[o] = UInt8(truncatingIfNeeded: v); b[o + 1] = UInt8(truncatingIfNeeded: v >> 8) }
        put(restorer, 0)
        let uc = 8
        put(0x1 | 0x2, uc) // UC_FP_XSTATE | UC_SIGCONTEXT_SS
        // uc_stack.ss_flags = 3 is neither 0, SS_ONSTACK nor SS_DISABLE: rt_sigreturn's restore_altstack
        // then fails with EINVAL (ignored) and leaves the thread's sigaltstack as it is.
        put(3, uc + 16 + 8)
        let sc = uc + 40
        let gprs: [UInt64] = [resume.r8, resume.r9, resume.r10, resume.r11, resume.r12, resume.r13, resume.r14, resume.r15,
                              resume.rdi, resume.rsi, resume.rbp, resume.rbx, resume.rdx, resume.rax, resume.rcx, resume.rsp,
                              resume.rip, resume.eflags]
        for (i, v) in gprs.enumerated() { put(v, sc + 8 * i) }
        put16(resume.cs, sc + 144)
        put16(resume.ss, sc + 150)
        put(fpAddress, sc + 184)
        put(sigmask, uc + 296)
        let fp = Int(fpAddress - address)
        b.replaceSubrange(fp..<(fp + xstateSize), with: xs)
        for i in 0..<4 { b[fp + xstateSize + i] = UInt8(truncatingIfNeeded: SignalReturnFrame.xstateMagic2 >> (8 * UInt32(i))) }
        frameAddress = address
        bytes = b
    }
}

/// The two code sequences a tracer-death-safe injection borrows from the target's own executable
/// mappings (never written by Suture): `syscall; ret` (0f 05 c3) and `__restore_rt`
/// (`mov rax, 15; syscall`, 48 c7 c0 0f 00 00 00 0f 05, glibc's signal restorer).
struct SafeInjectionGadgets: Equatable {
    /// Address of `0f 05 c3`.
    let syscallReturn: UInt64
    /// Address of `48 c7 c0 0f 00 00 00 0f 05`.
    let restorer: UInt64

    static let syscallReturnBytes: [UInt8] = [0x0F, 0x05, 0xC3]
    static let restorerBytes: [UInt8] = [0x48, 0xC7, 0xC0, 0x0F, 0x00, 0x00, 0x00, 0x0F, 0x05]

    /// Searches the executable mappings of `pid` (libc first, then the others, never Suture's own
    /// regions) with process_vm_readv. Returns nil when either sequence is missing.
    static func find(pid: Int32, maps: [ProcMapping]) -> SafeInjectionGadgets? {
        let exec = maps.filter { $0.executable && $0.readable && !$0.path.hasPrefix("/memfd:") && $0.path != "[vsyscall]" }
        let ordered = exec.filter { $0.path.contains("/libc") } + exec.filter { !$0.path.contains("/libc") }
        var syscallReturn: UInt64?, restorer: UInt64?
        for m in ordered {
            var addr = m.start
            while addr < m.end, syscallReturn == nil || restorer == nil {
                let n = Int(min(m.end - addr, 1 << 20))
                guard let b = Ptrace.readMemory(pid: pid, address: addr, count: n) else { break }
                if syscallReturn == nil, let i = firstIndex(of: syscallReturnBytes, in: b) { syscallReturn = addr + UInt64(i) }
                if restorer == nil, let i = firstIndex(of: restorerBytes, in: b) { restorer = addr + UInt64(i) }
                if n < restorerBytes.count { break }
                addr += UInt64(n - restorerBytes.count + 1)
            }
            if let s = syscallReturn, let r = restorer { return SafeInjectionGadgets(syscallReturn: s, restorer: r) }
        }
        return nil
    }

    static func firstIndex(of needle: [UInt8], in hay: [UInt8]) -> Int? {
        guard hay.count >= needle.count else { return nil }
        return hay.withUnsafeBufferPointer { h -> Int? in
            var i = 0
            let last = h.count - needle.count
            while i <= last {
                if h[i] == needle[0] {
                    var j = 1
                    while j < needle.count && h[i + j] == needle[j] { j += 1 }
                    if j == needle.count { return i }
                }
                i += 1
            }
            return nil
        }
    }
}
