import Testing
@testable import SuturePatching

/// The classic-BPF evaluator of seccomp filters against hand-assembled programs (opcodes from
/// linux/filter.h and linux/bpf_common.h; seccomp_data layout from linux/seccomp.h).
private typealias I = SockFilterInstruction
private func stmt(_ code: UInt16, _ k: UInt32) -> I { I(code: code, jt: 0, jf: 0, k: k) }
private func jump(_ code: UInt16, _ k: UInt32, _ jt: UInt8, _ jf: UInt8) -> I { I(code: code, jt: jt, jf: jf, k: k) }
// BPF_LD|BPF_W|BPF_ABS, BPF_JMP|BPF_JEQ|BPF_K, BPF_JMP|BPF_JSET|BPF_K, BPF_RET|BPF_K
private let ldAbs: UInt16 = 0x20, jeq: UInt16 = 0x15, jset: UInt16 = 0x45, ret: UInt16 = 0x06
private let allow = SeccompFilterSet.retAllow, kill = SeccompFilterSet.retKillProcess

struct SeccompFilterTests {

    func data(_ nr: Int32, _ args: [UInt64] = [], arch: UInt32 = SeccompData.archX86_64) -> SeccompData {
        SeccompData(nr: nr, arch: arch, instructionPointer: 0x7f00_1234_5678, args: args)
    }

    /// The shape of the engine fixture's "seccomp" filter: kill on mmap with PROT_EXEC in args[2].
    private let killExecMmap: [I] = [
        stmt(ldAbs, 0), jump(jeq, 9, 0, 3), stmt(ldAbs, 32), jump(jset, 4, 0, 1), stmt(ret, kill), stmt(ret, allow),
    ]

    @Test func argumentTestsSelectTheAction() {
        let set = SeccompFilterSet(programs: [killExecMmap])
        #expect(set.action(for: data(9, [0, 4096, 5, 0x100001, 3, 0])) == kill)
        #expect(set.action(for: data(9, [0, 4096, 3, 0x100001, 3, 0])) == allow)
        #expect(set.action(for: data(319, [0, 1])) == allow)
    }

    @Test func highHalvesOfArgumentsAndTheInstructionPointer() {
        // args[1] high half == 0x7f00 → ERRNO(13); instruction_pointer high half == 0x7f00 → LOG.
        let p: [I] = [stmt(ldAbs, 28), jump(jeq, 0x7F00, 0, 1), stmt(ret, 0x0005_000D),
                      stmt(ldAbs, 12), jump(jeq, 0x7F00, 0, 1), stmt(ret, SeccompFilterSet.retLog), stmt(ret, allow)]
        let set = SeccompFilterSet(programs: [p])
        #expect(set.action(for: data(1, [0, 0x7F00_0000_0000])) == 0x0005_000D)
        #expect(set.action(for: data(1, [0, 0x7F00])) == SeccompFilterSet.retLog)
        #expect(SeccompFilterSet.allows(SeccompFilterSet.retLog))
        #expect(!SeccompFilterSet.allows(0x0005_000D))
        #expect(SeccompFilterSet.describe(0x0005_000D) == "ERRNO(13)")
    }

    @Test func theMostRestrictiveProgramWins() {
        let errnoAll: [I] = [stmt(ret, 0x0005_0001)]
        let trapAll: [I] = [stmt(ret, 0x0003_0000)]
        let allowAll: [I] = [stmt(ret, allow)]
        #expect(SeccompFilterSet(programs: [allowAll, errnoAll]).action(for: data(0)) == 0x0005_0001)
        #expect(SeccompFilterSet(programs: [errnoAll, trapAll, allowAll]).action(for: data(0)) == 0x0003_0000)
        // KILL_PROCESS (0x80000000) is negative as s32: it beats KILL_THREAD (0).
        #expect(SeccompFilterSet(programs: [[stmt(ret, 0)], [stmt(ret, kill)]]).action(for: data(0)) == kill)
        #expect(SeccompFilterSet(programs: []).action(for: data(0)) == allow)
    }

    @Test func aluScratchMemoryAndIndexRegister() {
        // A = nr; A += 1; M[3] = A; X = 10; A = M[3]; if A == X → ERRNO(7) else ALLOW. (nr 9 → 10)
        let p: [I] = [stmt(ldAbs, 0), stmt(0x04, 1) /* ALU ADD K */, stmt(0x02, 3) /* ST */, stmt(0x01, 10) /* LDX IMM */,
                      stmt(0x60, 3) /* LD MEM */, jump(0x1D, 0, 0, 1) /* JEQ X */, stmt(ret, 0x0005_0007), stmt(ret, allow)]
        let set = SeccompFilterSet(programs: [p])
        #expect(set.action(for: data(9)) == 0x0005_0007)
        #expect(set.action(for: data(8)) == allow)
        // LD LEN is sizeof(struct seccomp_data); RET A returns the accumulator.
        #expect(SeccompFilterSet.run([stmt(0x80, 0), stmt(0x16, 0)], data(0)) == 64)
    }

    @Test func foreignArchAndMalformedProgramsAreRefused() {
        let archCheck: [I] = [stmt(ldAbs, 4), jump(jeq, SeccompData.archX86_64, 1, 0), stmt(ret, kill), stmt(ret, allow)]
        #expect(SeccompFilterSet(programs: [archCheck]).action(for: data(0)) == allow)
        #expect(SeccompFilterSet(programs: [archCheck]).action(for: data(0, arch: 0x4000_0003)) == kill)
        // Out-of-range load, unknown opcode, running off the end: treated as KILL (never injected).
        #expect(SeccompFilterSet.run([stmt(ldAbs, 64), stmt(ret, allow)], data(0)) == kill)
        #expect(SeccompFilterSet.run([stmt(ldAbs, 2), stmt(ret, allow)], data(0)) == kill)
        #expect(SeccompFilterSet.run([stmt(0xE7, 0), stmt(ret, allow)], data(0)) == kill)
        #expect(SeccompFilterSet.run([stmt(ldAbs, 0)], data(0)) == kill)
    }
}
