#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import SuturePatching
import CLinuxShim

/// The signal-return frame that makes injected system calls tracer-death-safe: layout per the kernel's
/// struct rt_sigframe / ucontext / sigcontext (x86-64) and the restart rules of arch_do_signal_or_restart.
@Suite struct SignalReturnFrameTests {
    func regs(rip: UInt64 = 0x5555_0000_1234, rsp: UInt64 = 0x7ffd_0000_1000, rax: UInt64 = 7, origRax: UInt64 = .max) -> user_regs_struct {
        var r = user_regs_struct()
        r.rip = rip; r.rsp = rsp; r.rax = rax; r.orig_rax = origRax
        r.rdi = 0x11; r.r15 = 0x22; r.eflags = 0x246; r.cs = 0x33; r.ss = 0x2b
        return r
    }

    func u64(_ b: [UInt8], _ o: Int) -> UInt64 { (0..<8).reduce(UInt64(0)) { $0 | UInt64(b[o + $1]) << (8 * UInt64($1)) } }
    func u32(_ b: [UInt8], _ o: Int) -> UInt32 { (0..<4).reduce(UInt32(0)) { $0 | UInt32(b[o + $1]) << (8 * UInt32($1)) } }

    @Test func restartRulesMirrorTheKernel() {
        // read() interrupted by our stop: -ERESTARTSYS → re-executed (rip − 2, rax = nr).
        let r = SignalReturnFrame.resumeContext(regs(rax: UInt64(bitPattern: -512), origRax: 0))
        #expect(r.rip == 0x5555_0000_1232 && r.rax == 0 && r.orig_rax == .max)
        // nanosleep: -ERESTART_RESTARTBLOCK → restart_syscall (219).
        let n = SignalReturnFrame.resumeContext(regs(rax: UInt64(bitPattern: -516), origRax: 35))
        #expect(n.rip == 0x5555_0000_1232 && n.rax == 219)
        // A finished call (or user mode) is left alone.
        #expect(SignalReturnFrame.resumeContext(regs(rax: 5, origRax: 0)).rip == 0x5555_0000_1234)
        #expect(SignalReturnFrame.resumeContext(regs()).rax == 7)
    }

    @Test func frameLayoutMatchesRtSigframe() throws {
        var xstate = [UInt8](repeating: 0xAB, count: 832)
        for i in 464..<512 { xstate[i] = 0 }
        xstate[464] = 0x07 // XCR0 = x87|SSE|AVX, as PTRACE_GETREGSET reports it
        let s = regs()
        let f = try #require(SignalReturnFrame(regs: s, sigmask: 0x8000_0001, xstate: xstate, restorer: 0x7f00_0000_0050))
        let b = f.bytes
        // Below the red zone, 16-aligned; XSAVE area 64-aligned.
        let frameEnd: UInt64 = f.frameAddress + UInt64(b.count)
        #expect(frameEnd <= s.rsp - 64)
        #expect(f.frameAddress % 16 == 0)
        #expect(u64(b, 0) == 0x7f00_0000_0050)              // pretcode = __restore_rt
        #expect(u64(b, 8) == 0x3)                            // UC_FP_XSTATE | UC_SIGCONTEXT_SS
        #expect(u32(b, 8 + 24) == 3)                         // uc_stack.ss_flags: invalid mode, altstack kept
        let sc = 8 + 40
        #expect(u64(b, sc) == 0)                             // r8
        #expect(u64(b, sc + 56) == 0x22)                     // r15
        #expect(u64(b, sc + 64) == 0x11)                  // rdi
        #expect(u64(b, sc + 104) == 7)                    // rax
        #expect(u64(b, sc + 120) == s.rsp)                // rsp
        #expect(u64(b, sc + 128) == s.rip)                // rip
        #expect(u64(b, sc + 136) == 0x246)                // eflags
        #expect(b[sc + 144] == 0x33 && b[sc + 150] == 0x2b)  // cs, ss
        let fp = u64(b, sc + 184)
        #expect(fp % 64 == 0)
        #expect(u64(b, 8 + 296) == 0x8000_0001)             // uc_sigmask
        let o = Int(fp - f.frameAddress)
        #expect(u32(b, o + 464) == SignalReturnFrame.xstateMagic1)
        #expect(u32(b, o + 468) == 832 + 4)
        #expect(u64(b, o + 472) == 0x07)
        #expect(u32(b, o + 480) == 832)
        #expect(u32(b, o + 832) == SignalReturnFrame.xstateMagic2)
        #expect(b[o] == 0xAB && b[o + 831] == 0xAB)
    }

    @Test func tooShortXStateIsRefused() {
        #expect(SignalReturnFrame(regs: regs(), sigmask: 0, xstate: [UInt8](repeating: 0, count: 512), restorer: 1) == nil)
    }

    @Test func gadgetSearchFindsBothSequences() {
        let hay: [UInt8] = [0x90, 0x0F, 0x05, 0x90, 0x0F, 0x05, 0xC3]
        #expect(SafeInjectionGadgets.firstIndex(of: SafeInjectionGadgets.syscallReturnBytes, in: hay) == 4)
        #expect(SafeInjectionGadgets.firstIndex(of: SafeInjectionGadgets.restorerBytes, in: hay) == nil)
    }
}
