#if canImport(Glibc)
import Glibc
#endif

/// Which code ranges make a thread "active" for the operation.
struct ActivenessRanges {
    /// Half-open ranges `[start, end)` with the function name for messages.
    var ranges: [(start: UInt64, end: UInt64, name: String)]

    /// The name of the range holding `address`, or nil.
    func name(of address: UInt64) -> String? {
        for r in ranges where address >= r.start && address < r.end { return r.name }
        return nil
    }
}

extension ActivenessRanges {
    /// The code a commit changes: every replaced function, whole (`entry ..< entry + size`).
    static func commit(_ header: PatchRegionHeader) -> ActivenessRanges {
        ActivenessRanges(ranges: header.functions.map { ($0.entry, $0.entry + $0.size, $0.symbol) })
    }

    /// The code a revert of patch `uuid` changes or removes: the whole region (`start ..< end`) and the
    /// interior of each detour (`site + 1 ..< site + length`; a thread at the site itself is at a whole
    /// instruction of the original either way).
    static func revert(uuid: String, regionStart: UInt64, regionEnd: UInt64, header: PatchRegionHeader) -> ActivenessRanges {
        var ranges = [(start: UInt64, end: UInt64, name: String)]()
        ranges.append((regionStart, regionEnd, "the patch region of \(uuid)"))
        for f in header.functions where f.detour.count > 1 {
            ranges.append((f.site + 1, f.site + UInt64(f.detour.count), "the detour of \(f.symbol)"))
        }
        return ActivenessRanges(ranges: ranges)
    }
}

/// Why one stopped thread makes a commit or revert unsafe.
struct ActiveThreadHit {
    let tid: Int32
    /// Frame #0 (the pc) is in a range, no deeper frame is: single-stepping the thread can take it out.
    let pcOnly: Bool
    let message: String
}

/// Whether one stopped thread is executing in, or returning into, code that a commit or revert changes.
enum ActivenessCheck {
    /// Checks thread `tid`: its pc (frame #0), the return addresses `returnAddresses` gives (libdw CFI
    /// unwinding; nil when unavailable), and, as a safety net, every 8-byte word of its used stack (from
    /// 128 bytes below `rsp`, the red zone, to the end of the mapping holding `rsp`, at most 8 MiB) that
    /// falls in a range or one byte past it (a return address).
    /// - Returns: the first hit, `pcOnly` when only the pc is in a range; nil when the thread is idle.
    /// - Throws: the failure of reading the thread's registers.
    static func hit(tid: Int32, tracee: some Tracee, ranges: ActivenessRanges, maps: [ProcMapping],
                    returnAddresses: () -> [UInt64]?) throws(PtraceFailure) -> ActiveThreadHit? {
        let lowest = ranges.ranges.map(\.start).min() ?? 0
        let highest = ranges.ranges.map(\.end).max() ?? 0
        let regs = try tracee.registers(of: tid)
        let pcHit = ranges.name(of: regs.rip).map {
            "thread \(tid) is executing \($0) (frame #0, pc 0x\(hex(regs.rip)))"
        }
        if let frames = returnAddresses() {
            for (i, pc) in frames.enumerated() {
                // A return address belongs to the call instruction before it.
                if let name = ranges.name(of: pc &- 1) {
                    return ActiveThreadHit(tid: tid, pcOnly: false, message: pcHit
                        ?? "thread \(tid) will return into \(name) (frame #\(i + 1), pc 0x\(hex(pc)))")
                }
            }
        }
        let rsp = regs.rsp
        if let m = maps.first(where: { rsp >= $0.start && rsp < $0.end }) {
            let from = max(m.start, rsp >= 128 ? rsp - 128 : 0) & ~7
            let to = min(m.end, from + (8 << 20))
            if let words = tracee.readMemory(at: from, count: Int(to - from)) {
                var found: (UInt64, String)?
                words.withUnsafeBytes { raw in
                    let w = raw.bindMemory(to: UInt64.self)
                    var i = 0
                    let n = w.count
                    while i < n {
                        let v = w[i]
                        // Fast reject: one comparison pair per word against the union bounds.
                        if v >= lowest && v <= highest, let name = ranges.name(of: v) ?? ranges.name(of: v &- 1) {
                            found = (from + UInt64(i * 8), name)
                            break
                        }
                        i += 1
                    }
                }
                if let (at, name) = found {
                    return ActiveThreadHit(tid: tid, pcOnly: false, message: pcHit
                        ?? "thread \(tid) has a code address of \(name) on its stack at 0x\(hex(at)) (stack scan)")
                }
            }
        }
        return pcHit.map { ActiveThreadHit(tid: tid, pcOnly: true, message: $0) }
    }
}
