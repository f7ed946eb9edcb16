#if canImport(Glibc)
import Glibc
#endif
@testable import SuturePatching

/// A process made of plain values for the engine's unit tests: memory as byte arrays at fixed addresses,
/// one register set per thread, a maps list. It implements the same ``Tracee`` / ``TraceeText`` seam as the
/// live process, so the engine's decisions run unchanged against it.
final class FakeTracee: Tracee, TraceeText {
    let pid: Int32 = 4242
    /// Memory: disjoint `(start, bytes)` blocks; a read or write touching any other byte fails.
    var memory: [(start: UInt64, bytes: [UInt8])] = []
    /// Registers per thread; a thread without an entry has exited (`PtraceFailure.exited`).
    var registerSets: [Int32: user_regs_struct] = [:]
    var maps: [ProcMapping] = []
    /// Addresses whose write fails (checked against the first byte of each write).
    var failingWrites: Set<UInt64> = []
    /// Every successful write, in order.
    private(set) var writes: [(address: UInt64, bytes: [UInt8])] = []

    /// Adds a memory block and a maps line for it.
    func map(_ start: UInt64, _ bytes: [UInt8], perms: String = "r-xp", path: String = "") {
        memory.append((start, bytes))
        maps.append(ProcMapping(start: start, end: start + UInt64(bytes.count), perms: perms, offset: 0,
                                device: "00:00", inode: 0, path: path))
    }

    /// Sets the pc and stack pointer of thread `tid`.
    func setThread(_ tid: Int32, rip: UInt64, rsp: UInt64) {
        var r = user_regs_struct()
        r.rip = rip
        r.rsp = rsp
        registerSets[tid] = r
    }

    private func block(_ address: UInt64, _ count: Int) -> Int? {
        memory.firstIndex { address >= $0.start && address + UInt64(count) <= $0.start + UInt64($0.bytes.count) }
    }

    func readMemory(at address: UInt64, count: Int) -> [UInt8]? {
        guard let i = block(address, count) else { return nil }
        let o = Int(address - memory[i].start)
        return Array(memory[i].bytes[o..<o + count])
    }

    func registers(of tid: Int32) throws(PtraceFailure) -> user_regs_struct {
        guard let r = registerSets[tid] else { throw .exited(tid: tid) }
        return r
    }

    func mappings() -> [ProcMapping]? { maps }
    func threadIDs() -> [Int32] { registerSets.keys.sorted() }

    func read(_ count: Int, at address: UInt64) -> [UInt8]? { readMemory(at: address, count: count) }

    func write(_ bytes: [UInt8], at address: UInt64) -> Bool {
        guard !failingWrites.contains(address), let i = block(address, bytes.count) else { return false }
        let o = Int(address - memory[i].start)
        memory[i].bytes.replaceSubrange(o..<o + bytes.count, with: bytes)
        writes.append((address, bytes))
        return true
    }

    /// Writes `value` little-endian at `address` (a stack slot).
    func poke(_ value: UInt64, at address: UInt64) {
        _ = write((0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }, at: address)
        writes.removeLast()
    }
}

/// A detoured function record for the fake: entry at `site`, `original` = `55 48 89 e5 90`, detour
/// `jmp rel32` to `replacement`.
func fakeFunction(_ symbol: String, site: UInt64, replacement: UInt64) -> PatchRegionHeader.Function {
    PatchRegionHeader.Function(entry: site, site: site, size: 32, replacement: replacement,
                               original: [0x55, 0x48, 0x89, 0xe5, 0x90],
                               detour: X86Detour.jump(at: site, to: replacement)!, symbol: symbol)
}
