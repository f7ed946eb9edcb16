#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim
import SutureCore

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

/// Why one stopped thread makes a commit or revert unsafe.
struct ActiveThreadHit {
    let tid: Int32
    /// Frame #0 (the pc) is in a range, no deeper frame is: single-stepping the thread can take it out.
    let pcOnly: Bool
    let message: String
}

/// The activeness check: is a stopped thread executing in, or returning into, the code a commit or
/// revert changes?
extension EngineSession {

    /// Finds a thread executing in, or returning into, one of `ranges`: `rip`, the return addresses found
    /// by unwinding its stack with libdw CFI, and (safety net) every word of its used stack. A thread whose
    /// only hit is its pc (a hot leaf function, the common case for small patched functions) is first
    /// single-stepped out of the ranges (`stepOut`) and checked again; only what remains is reported.
    /// - Returns: a description of the first thread still active (tid, function, frame), or nil.
    func activeThread(ranges: ActivenessRanges, maps: [ProcMapping]) throws(CommitFailure) -> String? {
        for tid in threads.keys.sorted() {
            guard var hit = try activeHit(tid: tid, ranges: ranges, maps: maps) else { continue }
            if hit.pcOnly, options.stepOutLimit > 0 {
                let steps = try stepOut(tid: tid, ranges: ranges)
                if let steps {
                    stepOutInstructions += steps
                    guard let again = try activeHit(tid: tid, ranges: ranges, maps: maps) else { continue }
                    hit = again
                }
            }
            return hit.message
        }
        return nil
    }

    /// The activeness check of one stopped thread.
    func activeHit(tid: Int32, ranges: ActivenessRanges, maps: [ProcMapping]) throws(CommitFailure) -> ActiveThreadHit? {
        guard threads[tid] != nil else { return nil }
        let lowest = ranges.ranges.map(\.start).min() ?? 0
        let highest = ranges.ranges.map(\.end).max() ?? 0
        let regs: user_regs_struct
        do throws(PtraceFailure) {
            regs = try Ptrace.getRegisters(tid)
        } catch {
            if case .exited = error, !processGone() { return nil }
            throw .fatal(map(error, phase: "the activeness check"))
        }
        let pcHit = ranges.name(of: regs.rip).map {
            "thread \(tid) is executing \($0) (frame #0, pc 0x\(hex(regs.rip)))"
        }
        if let frames = unwinder?.returnAddresses(tid: tid) {
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
            if let words = Ptrace.readMemory(pid: pid, address: from, count: Int(to - from)) {
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
