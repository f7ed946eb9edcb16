/// The x86-64 detour rules, shared by `bundle create` (which refuses functions that break them) and the
/// engine (which writes the detours).
///
/// A detour is a 5-byte `jmp rel32` (`e9` + a little-endian signed 32-bit displacement from the end of the
/// jump) written over the first bytes of a function. An entry that starts with `endbr64` (`f3 0f 1e fa`,
/// Intel CET indirect-branch tracking) keeps it and takes the jump after it, so such a function needs
/// 9 bytes. No branch may land strictly inside the jump's bytes (it would execute half an instruction);
/// landing on its first byte is fine (that is the jump).
public enum X86Detour {
    /// Length of the `jmp rel32` in bytes.
    public static let jumpSize: UInt64 = 5
    /// The `jmp rel32` opcode.
    public static let jumpOpcode: UInt8 = 0xe9
    /// The `endbr64` instruction.
    public static let endbr64: [UInt8] = [0xf3, 0x0f, 0x1e, 0xfa]

    /// Offset of the detour site from the function entry: 4 when the entry is `endbr64`, else 0.
    /// - Parameter entryBytes: the function's first bytes (at least 4 to recognise `endbr64`).
    public static func siteOffset<C: Collection<UInt8>>(entryBytes: C) -> UInt64 {
        entryBytes.starts(with: endbr64) ? UInt64(endbr64.count) : 0
    }

    /// The smallest function, in bytes, that can hold the detour: `siteOffset + jumpSize` (5, or 9 after
    /// `endbr64`).
    public static func minimumFunctionSize<C: Collection<UInt8>>(entryBytes: C) -> UInt64 {
        siteOffset(entryBytes: entryBytes) + jumpSize
    }

    /// The `jmp rel32` to write at `site` to reach `target`, or nil when `target` is out of rel32 reach
    /// (more than ±2 GiB from the end of the jump).
    public static func jump(at site: UInt64, to target: UInt64) -> [UInt8]? {
        let rel = Int64(bitPattern: target &- (site &+ jumpSize))
        guard rel >= Int64(Int32.min), rel <= Int64(Int32.max) else { return nil }
        let r = UInt32(bitPattern: Int32(rel))
        return [jumpOpcode, UInt8(r & 0xff), UInt8((r >> 8) & 0xff), UInt8((r >> 16) & 0xff), UInt8(r >> 24)]
    }

    /// The target of a `jmp rel32` at `site`, or nil when `bytes` is not one.
    public static func jumpTarget(_ bytes: [UInt8], at site: UInt64) -> UInt64? {
        guard bytes.count == Int(jumpSize), bytes[0] == jumpOpcode else { return nil }
        let r = UInt32(bytes[1]) | UInt32(bytes[2]) << 8 | UInt32(bytes[3]) << 16 | UInt32(bytes[4]) << 24
        return UInt64(bitPattern: Int64(bitPattern: site &+ jumpSize) &+ Int64(Int32(bitPattern: r)))
    }

    /// Whether a branch landing at `address` would land strictly inside the detour written at `site`
    /// (bytes `site+1 ..< site+5`).
    public static func landsInside(_ address: UInt64, site: UInt64) -> Bool {
        address > site && address < site &+ jumpSize
    }

    /// Whether a function entry already looks detoured or breakpointed (by another live patch or a debugger):
    /// `jmp rel32` or `int3` first, or `jmp rel32` right after `endbr64`. Used for error hints only.
    public static func looksDetoured<C: Collection<UInt8>>(entryBytes: C) -> Bool {
        entryBytes.first == jumpOpcode || entryBytes.first == 0xcc || entryBytes.starts(with: endbr64 + [jumpOpcode])
    }
}
