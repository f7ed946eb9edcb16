#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim
import SutureCore

/// Commit: in a stopped window, ``DetourWriter/commit(_:text:setState:)`` and its errors.
extension EngineSession {
    /// One commit attempt: in a stopped window, verify the original bytes, write the detours, header ACTIVE.
    func commitDetours(region: PreparedRegion, header: inout PatchRegionHeader) throws(CommitFailure) -> (UInt64, Int) {
        let ranges = ActivenessRanges.commit(header)
        let functions = header.functions
        let result = try stoppedWindow(phase: "commit", regionStart: region.base, uuid: header.uuid, ranges: ranges,
                                       busyHint: "the function is running or on a stack; retry later, or patch a function that returns") {
            (mem) throws(CommitFailure) in
            switch DetourWriter.commit(functions, text: mem, setState: { writeState($0, file: region.file) }) {
            case .committed:
                break
            case let .foreign(f, cur):
                throw CommitFailure.fatal(error(.foreignModification,
                    "\(f.symbol) at 0x\(hex(f.site)) holds \(cur.map(PatchRegionHeader.hexString) ?? "unreadable bytes"), expected \(PatchRegionHeader.hexString(f.original))",
                    hint: "another tool changed the function since the check; nothing was written"))
            case let .detourWriteFailed(f, failed):
                throw CommitFailure.fatal(failed
                    ? error(.inconsistent, "writing the detour of \(f.symbol) failed and the rollback failed", hint: "restart the process")
                    : error(.permission, "writing the detour of \(f.symbol) into /proc/\(pid)/mem failed; rolled back",
                            hint: "proc_mem.force_override=never forbids text writes"))
            case let .headerWriteFailed(failed):
                throw CommitFailure.fatal(failed
                    ? error(.inconsistent, "updating the region header failed and the rollback failed", hint: "restart the process")
                    : error(.permission, "updating the region header failed; rolled back"))
            }
        }
        header.state = .active
        return result
    }

    /// Writes `state` into the region header through the tracer's descriptor of the memfd.
    func writeState(_ state: PatchRegionHeader.State, file: Int32) -> Bool {
        var v = state.rawValue.littleEndian
        return withUnsafeBytes(of: &v) { pwrite(file, $0.baseAddress, 4, off_t(PatchRegionHeader.stateOffset)) == 4 }
    }
}
