#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim
import SutureCore

/// Commit: verify the original bytes, write the detours, header ACTIVE; rollback on failure.
extension EngineSession {
    /// One commit attempt: in a stopped window, verify the original bytes, write the detours, header ACTIVE.
    func commitDetours(region: PreparedRegion, header: inout PatchRegionHeader) throws(CommitFailure) -> (UInt64, Int) {
        let ranges = ActivenessRanges(ranges: header.functions.map { ($0.entry, $0.entry + $0.size, $0.symbol) })
        let functions = header.functions
        let result = try stoppedWindow(phase: "commit", regionStart: region.base, uuid: header.uuid, ranges: ranges,
                                       busyHint: "the function is running or on a stack; retry later, or patch a function that returns") {
            (mem) throws(CommitFailure) in
            for f in functions {
                let cur = mem.read(f.detour.count, at: f.site)
                if cur == f.original { continue }
                throw CommitFailure.fatal(error(.foreignModification,
                    "\(f.symbol) at 0x\(hex(f.site)) holds \(cur.map(PatchRegionHeader.hexString) ?? "unreadable bytes"), expected \(PatchRegionHeader.hexString(f.original))",
                    hint: "another tool changed the function since the check; nothing was written"))
            }
            var written: [PatchRegionHeader.Function] = []
            for f in functions {
                if mem.write(f.detour, at: f.site) {
                    written.append(f)
                    continue
                }
                let failed = rollback(mem: mem, written: written, region: region)
                throw CommitFailure.fatal(failed
                    ? error(.inconsistent, "writing the detour of \(f.symbol) failed and the rollback failed", hint: "restart the process")
                    : error(.permission, "writing the detour of \(f.symbol) into /proc/\(pid)/mem failed; rolled back",
                            hint: "proc_mem.force_override=never forbids text writes"))
            }
            if !writeState(.active, file: region.file) {
                let failed = rollback(mem: mem, written: written, region: region)
                throw CommitFailure.fatal(failed
                    ? error(.inconsistent, "updating the region header failed and the rollback failed", hint: "restart the process")
                    : error(.permission, "updating the region header failed; rolled back"))
            }
        }
        header.state = .active
        return result
    }

    /// Restores the original bytes of `written` functions; marks the header INCONSISTENT if that fails.
    /// Returns true when the rollback itself failed.
    func rollback(mem: ProcMem, written: [PatchRegionHeader.Function], region: PreparedRegion) -> Bool {
        var failed = false
        for f in written.reversed() where !mem.write(f.original, at: f.site) { failed = true }
        if failed { _ = writeState(.inconsistent, file: region.file) }
        return failed
    }

    func writeState(_ state: PatchRegionHeader.State, file: Int32) -> Bool {
        var v = state.rawValue.littleEndian
        return withUnsafeBytes(of: &v) { pwrite(file, $0.baseAddress, 4, off_t(PatchRegionHeader.stateOffset)) == 4 }
    }
}
