import CLinuxShim
import Glibc
import SystemPackage

/// One classic BPF instruction (`struct sock_filter`, linux/filter.h): 8 bytes, little-endian
/// `{u16 code; u8 jt; u8 jf; u32 k}`.
struct SockFilterInstruction: Hashable, Sendable {
    var code: UInt16
    var jt: UInt8
    var jf: UInt8
    var k: UInt32
}

/// The input of a seccomp filter (`struct seccomp_data`, linux/seccomp.h): 64 bytes — `nr` (s32) at 0,
/// `arch` (u32) at 4, `instruction_pointer` (u64) at 8, `args[6]` (u64 each) at 16.
struct SeccompData: Hashable, Sendable {
    /// `AUDIT_ARCH_X86_64` (linux/audit.h: EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE).
    static let archX86_64: UInt32 = 0xC000_003E
    var nr: Int32
    var arch: UInt32 = SeccompData.archX86_64
    var instructionPointer: UInt64
    var args: [UInt64]

    /// The 32-bit word at byte `offset` (what `BPF_LD|BPF_W|BPF_ABS` loads); nil when out of range or
    /// misaligned (the kernel's seccomp_check_filter refuses such programs).
    func word(at offset: UInt32) -> UInt32? {
        guard offset % 4 == 0, offset < 64 else { return nil }
        func half(_ v: UInt64, _ high: Bool) -> UInt32 { UInt32(truncatingIfNeeded: high ? v >> 32 : v) }
        switch offset {
        case 0: return UInt32(bitPattern: nr)
        case 4: return arch
        case 8, 12: return half(instructionPointer, offset == 12)
        default:
            let i = Int((offset - 16) / 8)
            let v = i < args.count ? args[i] : 0
            return half(v, (offset - 16) % 8 == 4)
        }
    }
}

/// The seccomp filters of one thread, read with `PTRACE_SECCOMP_GET_FILTER` (Linux 4.4+,
/// CONFIG_CHECKPOINT_RESTORE, tracer with CAP_SYS_ADMIN, tracee stopped), and an evaluator that runs
/// them the way the kernel does (kernel/seccomp.c: every filter runs; the action with the lowest
/// signed `ret & SECCOMP_RET_ACTION_FULL` wins). The engine uses it to inject only system calls the
/// filters allow: a filter that kills on `mmap(PROT_EXEC)` would otherwise kill the process we patch.
struct SeccompFilterSet: Sendable {
    /// `SECCOMP_RET_*` actions (linux/seccomp.h).
    static let retKillProcess: UInt32 = 0x8000_0000
    static let retAllow: UInt32 = 0x7FFF_0000
    static let retLog: UInt32 = 0x7FFC_0000
    static let actionFull: UInt32 = 0xFFFF_0000

    /// Programs, most recently installed first (the order `PTRACE_SECCOMP_GET_FILTER` indexes them).
    var programs: [[SockFilterInstruction]]

    /// Why the filters could not be read.
    struct ReadFailure: Error, CustomStringConvertible {
        var description: String
    }

    /// Reads every filter of stopped tracee `tid`.
    /// - Throws: `ReadFailure` naming the errno (EINVAL: kernel without CONFIG_CHECKPOINT_RESTORE;
    ///   EACCES: no CAP_SYS_ADMIN; EMEDIUMTYPE: the thread is not in filter mode).
    static func read(tid: Int32) throws(ReadFailure) -> SeccompFilterSet {
        let request: Int32 = 0x420C // PTRACE_SECCOMP_GET_FILTER
        var programs: [[SockFilterInstruction]] = []
        for index in 0..<1024 {
            let count = cls_ptrace(request, tid, UnsafeMutableRawPointer(bitPattern: index), nil)
            if count < 0 {
                let e = errno
                if e == ENOENT && index > 0 { break }
                throw ReadFailure(description: "PTRACE_SECCOMP_GET_FILTER #\(index) on thread \(tid): \(Errno(rawValue: e).description)")
            }
            var raw = [UInt8](repeating: 0, count: max(Int(count), 1) * 8)
            let got = raw.withUnsafeMutableBytes { cls_ptrace(request, tid, UnsafeMutableRawPointer(bitPattern: index), $0.baseAddress) }
            guard got == count else {
                throw ReadFailure(description: "PTRACE_SECCOMP_GET_FILTER #\(index) on thread \(tid) returned \(got) instructions, expected \(count)")
            }
            programs.append((0..<Int(count)).map { i in
                let b = raw[(i * 8)..<(i * 8 + 8)].map { $0 }
                return SockFilterInstruction(code: UInt16(b[0]) | UInt16(b[1]) << 8, jt: b[2], jf: b[3],
                                             k: UInt32(b[4]) | UInt32(b[5]) << 8 | UInt32(b[6]) << 16 | UInt32(b[7]) << 24)
            })
        }
        return SeccompFilterSet(programs: programs)
    }

    /// The action the kernel would take for `data`: the highest-precedence result of all programs.
    func action(for data: SeccompData) -> UInt32 {
        var result = SeccompFilterSet.retAllow
        for program in programs {
            let r = SeccompFilterSet.run(program, data)
            if Int32(bitPattern: r & SeccompFilterSet.actionFull) < Int32(bitPattern: result & SeccompFilterSet.actionFull) {
                result = r
            }
        }
        return result
    }

    /// Whether `action` lets the system call run (ALLOW or LOG).
    static func allows(_ action: UInt32) -> Bool {
        let a = action & actionFull
        return a == retAllow || a == retLog
    }

    /// A readable name of `action` for messages.
    static func describe(_ action: UInt32) -> String {
        switch action & actionFull {
        case retKillProcess: return "KILL_PROCESS"
        case 0: return "KILL_THREAD"
        case 0x0003_0000: return "TRAP"
        case 0x0005_0000: return "ERRNO(\(action & 0xFFFF))"
        case 0x7FC0_0000: return "USER_NOTIF"
        case 0x7FF0_0000: return "TRACE"
        case retLog: return "LOG"
        case retAllow: return "ALLOW"
        default: return "action 0x\(String(action, radix: 16))"
        }
    }

    /// Runs one classic BPF program with the instruction set seccomp accepts (seccomp_check_filter):
    /// LD/LDX (W ABS into seccomp_data, W LEN, IMM, MEM), ST/STX, ALU with K or X, JA/JEQ/JGT/JGE/JSET
    /// with K or X, RET K/A, TAX/TXA. Anything else, or running off the end, yields KILL_PROCESS (the
    /// kernel would have refused the program; we refuse to inject).
    static func run(_ program: [SockFilterInstruction], _ data: SeccompData) -> UInt32 {
        var a: UInt32 = 0, x: UInt32 = 0
        var mem = [UInt32](repeating: 0, count: 16)
        var pc = 0
        while pc < program.count {
            let ins = program[pc]
            let code = ins.code
            pc += 1
            switch code & 0x07 {
            case 0x00, 0x01: // LD, LDX
                let value: UInt32
                switch code & 0xE0 {
                case 0x00: value = ins.k // IMM
                case 0x20: // ABS (word only)
                    guard code & 0x18 == 0x00, code & 0x07 == 0x00, let w = data.word(at: ins.k) else { return retKillProcess }
                    value = w
                case 0x60: // MEM
                    guard ins.k < 16 else { return retKillProcess }
                    value = mem[Int(ins.k)]
                case 0x80: value = 64 // LEN: sizeof(struct seccomp_data)
                default: return retKillProcess
                }
                if code & 0x07 == 0x00 { a = value } else { x = value }
            case 0x02, 0x03: // ST, STX
                guard ins.k < 16 else { return retKillProcess }
                mem[Int(ins.k)] = code & 0x07 == 0x02 ? a : x
            case 0x04: // ALU
                let operand = code & 0x08 == 0 ? ins.k : x
                switch code & 0xF0 {
                case 0x00: a = a &+ operand
                case 0x10: a = a &- operand
                case 0x20: a = a &* operand
                case 0x30:
                    guard operand != 0 else { return 0 } // the kernel's division by zero returns 0 (KILL_THREAD)
                    a /= operand
                case 0x40: a |= operand
                case 0x50: a &= operand
                case 0x60: a = operand >= 32 ? 0 : a << operand
                case 0x70: a = operand >= 32 ? 0 : a >> operand
                case 0x80: a = 0 &- a
                case 0x90:
                    guard operand != 0 else { return 0 }
                    a %= operand
                case 0xA0: a ^= operand
                default: return retKillProcess
                }
            case 0x05: // JMP
                let op = code & 0xF0
                if op == 0x00 { // JA
                    pc += Int(ins.k)
                    continue
                }
                let operand = code & 0x08 == 0 ? ins.k : x
                let taken: Bool
                switch op {
                case 0x10: taken = a == operand
                case 0x20: taken = a > operand
                case 0x30: taken = a >= operand
                case 0x40: taken = a & operand != 0
                default: return retKillProcess
                }
                pc += Int(taken ? ins.jt : ins.jf)
            case 0x06: // RET
                switch code & 0x18 {
                case 0x00: return ins.k
                case 0x10: return a
                default: return retKillProcess
                }
            default: // MISC
                switch code & 0xF8 {
                case 0x00: x = a // TAX
                case 0x80: a = x // TXA
                default: return retKillProcess
                }
            }
        }
        return retKillProcess
    }
}
