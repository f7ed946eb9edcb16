/// Finds the direct branch targets of x86-64 machine code, to check that a detour at a function's entry
/// overwrites no byte that some branch lands on.
///
/// Method: a linear sweep with an instruction-length decoder for the general-purpose, x87, SSE, VEX and
/// EVEX encodings gcc emits (Intel SDM Vol. 2, "Instruction Format" and Appendix A opcode maps). Direct
/// branches are `jmp rel8/rel32` (EB, E9), `jcc rel8/rel32` (70–7F, 0F 80–8F), `call rel32` (E8) and
/// `loop/jrcxz rel8` (E0–E3). When the decoder meets a byte sequence it does not know, the result falls
/// back to a conservative scan that treats every byte offset as a possible instruction start (more
/// targets, so possible false refusals, never a missed branch that the decoder could have seen).
///
/// Limits (documented in docs/user-payloads.md): indirect branches (jump tables, `jmp *%rax`) and
/// branches from other functions are not seen, except the function's own `.cold` parts, which
/// `UserBundleBuilder` scans too; data embedded in code would be decoded as instructions.
public enum X86BranchScanner {
    /// The result of a scan.
    public struct Result: Sendable, Hashable {
        /// Branch targets as offsets from the start of the scanned bytes (may be negative or beyond the end).
        public var targets: [Int64]
        /// True if the precise decoder covered every byte; false if the conservative fallback was used.
        public var decoded: Bool
    }

    /// Scans `code`.
    public static func branchTargets(in code: [UInt8]) -> Result {
        if let precise = decode(code) { return Result(targets: precise, decoded: true) }
        return Result(targets: conservative(code), decoded: false)
    }

    /// Every offset where a branch opcode could start (no decoding).
    static func conservative(_ code: [UInt8]) -> [Int64] {
        var targets: [Int64] = []
        for i in 0..<code.count {
            let b = code[i]
            if (b == 0xeb || (0x70...0x7f).contains(b) || (0xe0...0xe3).contains(b)), i + 1 < code.count {
                targets.append(Int64(i + 2) + Int64(Int8(bitPattern: code[i + 1])))
            }
            if (b == 0xe8 || b == 0xe9), i + 4 < code.count {
                targets.append(Int64(i + 5) + Int64(rel32(code, i + 1)))
            }
            if b == 0x0f, i + 5 < code.count, (0x80...0x8f).contains(code[i + 1]) {
                targets.append(Int64(i + 6) + Int64(rel32(code, i + 2)))
            }
        }
        return targets
    }

    static func rel32(_ c: [UInt8], _ at: Int) -> Int32 {
        Int32(bitPattern: UInt32(c[at]) | UInt32(c[at + 1]) << 8 | UInt32(c[at + 2]) << 16 | UInt32(c[at + 3]) << 24)
    }

    /// Linear sweep; nil if an unknown or truncated instruction is met.
    static func decode(_ code: [UInt8]) -> [Int64]? {
        var targets: [Int64] = []
        var pc = 0
        while pc < code.count {
            guard let (length, target) = instruction(code, at: pc) else { return nil }
            if let target { targets.append(target) }
            pc += length
        }
        return pc == code.count ? targets : nil
    }

    /// Decodes one instruction at `start`: its length and, for a direct branch, its target offset.
    static func instruction(_ c: [UInt8], at start: Int) -> (Int, Int64?)? {
        var i = start
        var opsize16 = false, addr32 = false, rexW = false
        func byte() -> UInt8? { i < c.count ? c[i] : nil }
        // Legacy prefixes.
        while let b = byte(), [0x66, 0x67, 0xf0, 0xf2, 0xf3, 0x2e, 0x36, 0x3e, 0x26, 0x64, 0x65].contains(b) {
            if b == 0x66 { opsize16 = true }
            if b == 0x67 { addr32 = true }
            i += 1
        }
        _ = addr32
        // REX.
        if let b = byte(), b & 0xf0 == 0x40 { rexW = b & 0x08 != 0; i += 1 }
        guard let op = byte() else { return nil }
        i += 1

        // ModRM (+SIB, displacement) length from position i.
        func modrm() -> Bool {
            guard let m = byte() else { return false }
            i += 1
            let mod = m >> 6, rm = m & 7
            if mod == 3 { return true }
            if rm == 4 {
                guard let sib = byte() else { return false }
                i += 1
                if mod == 0 && sib & 7 == 5 { i += 4 }
            } else if mod == 0 && rm == 5 {
                i += 4
            }
            if mod == 1 { i += 1 } else if mod == 2 { i += 4 }
            return i <= c.count
        }
        func done(_ target: Int64? = nil) -> (Int, Int64?)? { i <= c.count ? (i - start, target) : nil }
        let immz = opsize16 ? 2 : 4

        // VEX (C4/C5) and EVEX (62): opcode maps 0F, 0F38, 0F3A.
        if op == 0xc4 || op == 0xc5 || op == 0x62 {
            var map = 1
            if op == 0xc5 { i += 1 } else if op == 0xc4 {
                guard let p0 = byte() else { return nil }
                map = Int(p0 & 0x1f); i += 2
            } else {
                guard let p0 = byte() else { return nil }
                map = Int(p0 & 0x07); i += 3
            }
            guard let vop = byte(), (1...3).contains(map) else { return nil }
            i += 1
            if map == 1 && vop == 0x77 { return done() }      // vzeroupper/vzeroall
            guard modrm() else { return nil }
            if map == 3 || (map == 1 && ([0x70, 0x71, 0x72, 0x73, 0xc2, 0xc4, 0xc5, 0xc6] as [UInt8]).contains(vop)) { i += 1 }
            return done()
        }

        if op == 0x0f {
            guard let op2 = byte() else { return nil }
            i += 1
            switch op2 {
            case 0x38:
                i += 1; guard modrm() else { return nil }; return done()
            case 0x3a:
                i += 1; guard modrm() else { return nil }; i += 1; return done()
            case 0x80...0x8f:
                i += 4
                guard i <= c.count else { return nil }
                return done(Int64(i - start) + Int64(start) + Int64(rel32(c, i - 4)))
            case 0x05, 0x06, 0x07, 0x08, 0x09, 0x0b, 0x0e, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x77, 0xa0, 0xa1,
                 0xa2, 0xa8, 0xa9, 0xaa, 0xc8...0xcf:
                return done()
            case 0x70...0x73, 0xa4, 0xac, 0xba, 0xc2, 0xc4, 0xc5, 0xc6:
                guard modrm() else { return nil }; i += 1; return done()
            case 0x04, 0x0a, 0x0c, 0x24...0x27, 0x36, 0x39, 0x3b...0x3f, 0x7a, 0x7b, 0xa6, 0xa7, 0xff:
                return nil
            default:
                guard modrm() else { return nil }; return done()
            }
        }

        switch op {
        // ALU r/m forms, movsxd, mov, lea, pop r/m, shifts, x87, inc/dec/call/jmp/push r/m.
        case 0x00...0x03, 0x08...0x0b, 0x10...0x13, 0x18...0x1b, 0x20...0x23, 0x28...0x2b, 0x30...0x33,
             0x38...0x3b, 0x63, 0x84...0x8f, 0xd0...0xd3, 0xd8...0xdf, 0xfe, 0xff:
            guard modrm() else { return nil }; return done()
        case 0x04, 0x0c, 0x14, 0x1c, 0x24, 0x2c, 0x34, 0x3c, 0x6a, 0xa8, 0xb0...0xb7, 0xcd, 0xe4...0xe7:
            i += 1; return done()
        case 0x05, 0x0d, 0x15, 0x1d, 0x25, 0x2d, 0x35, 0x3d, 0x68, 0xa9:
            i += immz; return done()
        case 0x70...0x7f, 0xeb, 0xe0...0xe3:
            i += 1
            guard i <= c.count else { return nil }
            return done(Int64(i) + Int64(Int8(bitPattern: c[i - 1])))
        case 0xe8, 0xe9:
            i += 4
            guard i <= c.count else { return nil }
            return done(Int64(i) + Int64(rel32(c, i - 4)))
        case 0x69, 0x81, 0xc7:
            guard modrm() else { return nil }; i += immz; return done()
        case 0x6b, 0x80, 0x83, 0xc0, 0xc1, 0xc6:
            guard modrm() else { return nil }; i += 1; return done()
        case 0xf6, 0xf7:
            guard let m = byte() else { return nil }
            let reg = (m >> 3) & 7
            guard modrm() else { return nil }
            if reg == 0 || reg == 1 { i += op == 0xf6 ? 1 : immz }
            return done()
        case 0xb8...0xbf:
            i += rexW ? 8 : immz; return done()
        case 0xa0...0xa3:
            i += addr32 ? 4 : 8; return done()
        case 0xc2, 0xca:
            i += 2; return done()
        case 0xc8:
            i += 3; return done()
        case 0x50...0x5f, 0x90...0x99, 0x9b...0x9f, 0xa4...0xa7, 0xaa...0xaf, 0xc3, 0xc9, 0xcb, 0xcc, 0xcf,
             0xd7, 0xec...0xef, 0xf1, 0xf4, 0xf5, 0xf8...0xfd, 0x6c...0x6f:
            return done()
        default:
            return nil
        }
    }
}
