#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim
import SutureCore

/// The activeness check: is a stopped thread executing in, or returning into, the code a commit or
/// revert changes?
extension EngineSession {

    /// Finds a thread executing in, or returning into, one of `ranges`: `rip`, the return addresses found
    /// by unwinding its stack with libdw CFI, and (safety net) every word of its used stack. A thread whose
    /// only hit is its pc (a hot leaf function, the common case for small patched functions) is first
    /// run out of the ranges in short slices (`stepOut`) and checked again; only what remains is reported.
    /// Threads created during a slice join the window and are checked too.
    /// - Returns: a description of the first thread still active (tid, function, frame), or nil.
    func activeThread(ranges: ActivenessRanges, maps: [ProcMapping]) throws(CommitFailure) -> String? {
        var checked: Set<Int32> = []
        while let tid = threads.keys.filter({ !checked.contains($0) }).min() {
            checked.insert(tid)
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

    /// The activeness check of one stopped thread (``ActivenessCheck``); nil when the thread is not ours or
    /// exited meanwhile.
    func activeHit(tid: Int32, ranges: ActivenessRanges, maps: [ProcMapping]) throws(CommitFailure) -> ActiveThreadHit? {
        guard threads[tid] != nil else { return nil }
        do throws(PtraceFailure) {
            return try ActivenessCheck.hit(tid: tid, tracee: tracee, ranges: ranges, maps: maps,
                                           returnAddresses: { unwinder?.returnAddresses(tid: tid) })
        } catch {
            if case .exited = error, !processGone() { return nil }
            throw .fatal(map(error, phase: "the activeness check"))
        }
    }
}
