import Testing
@testable import SuturePatching

/// Which injected system call a seccomp filter blocks, decided before anything is injected (hand-assembled
/// classic BPF: opcodes from linux/filter.h, `seccomp_data` offsets from linux/seccomp.h; syscall numbers
/// from the x86-64 table).
struct InjectedSyscallSeccompTests {
    typealias I = SockFilterInstruction
    // BPF_LD|BPF_W|BPF_ABS, BPF_JMP|BPF_JEQ|BPF_K, BPF_JMP|BPF_JSET|BPF_K, BPF_RET|BPF_K
    let ldAbs: UInt16 = 0x20, jeq: UInt16 = 0x15, jset: UInt16 = 0x45, ret: UInt16 = 0x06
    let allow = SeccompFilterSet.retAllow, eperm: UInt32 = 0x0005_0001
    let gadget: UInt64 = 0x7fff_1234_5000

    func stmt(_ code: UInt16, _ k: UInt32) -> I { I(code: code, jt: 0, jf: 0, k: k) }
    func jump(_ code: UInt16, _ k: UInt32, _ jt: UInt8, _ jf: UInt8) -> I { I(code: code, jt: jt, jf: jf, k: k) }

    /// Returns `action` for system call `nr`, allows everything else.
    func deny(_ nr: UInt32, _ action: UInt32) -> [I] {
        [stmt(ldAbs, 0), jump(jeq, nr, 0, 1), stmt(ret, action), stmt(ret, allow)]
    }

    @Test func aPermissiveFilterBlocksNothing() {
        #expect(EngineSession.firstBlockedInjection(by: SeccompFilterSet(programs: [[stmt(ret, allow)]]), gadget: gadget) == nil)
    }

    @Test func theNamedSystemCallsAreTheOnesChecked() {
        #expect(EngineSession.injectedSyscallShapes.map(\.call.rawValue) == [9, 319, 9, 9, 9, 3, 11])
        for (nr, name) in [(UInt32(319), "memfd_create(MFD_CLOEXEC)"), (3, "close"), (11, "munmap")] {
            let blocked = EngineSession.firstBlockedInjection(by: SeccompFilterSet(programs: [deny(nr, eperm)]), gadget: gadget)
            #expect(blocked?.name == name && blocked?.action == eperm)
        }
    }

    @Test func anExecutableMappingBanIsFoundAtTheExecMmap() {
        // Kill mmap with PROT_EXEC (args[2] low word at offset 32).
        let killExec: [I] = [stmt(ldAbs, 0), jump(jeq, 9, 0, 3), stmt(ldAbs, 32), jump(jset, 4, 0, 1),
                             stmt(ret, SeccompFilterSet.retKillProcess), stmt(ret, allow)]
        let blocked = EngineSession.firstBlockedInjection(by: SeccompFilterSet(programs: [killExec]), gadget: gadget)
        #expect(blocked?.name == "mmap(PROT_READ|PROT_EXEC, MAP_SHARED|MAP_FIXED_NOREPLACE)")
        #expect(blocked?.action == SeccompFilterSet.retKillProcess)
    }

    @Test func memfdCreatePassesWhenEitherFlagSetIsAllowed() {
        // memfd_create allowed only with MFD_EXEC (0x10) set in args[1] (low word at offset 24).
        let onlyWithExec: [I] = [stmt(ldAbs, 0), jump(jeq, 319, 0, 4), stmt(ldAbs, 24), jump(jset, 0x10, 0, 1),
                                 stmt(ret, allow), stmt(ret, eperm), stmt(ret, allow)]
        #expect(EngineSession.firstBlockedInjection(by: SeccompFilterSet(programs: [onlyWithExec]), gadget: gadget) == nil)
    }
}
