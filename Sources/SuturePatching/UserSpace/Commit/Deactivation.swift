#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim
import SutureCore
import SystemPackage

/// Deactivation: revert the detours from the region header alone, then unmap the inert region.
extension EngineSession {
    // MARK: - Deactivate

    func deactivate(uuid: String, startTime: UInt64?) throws(UserPatchError) -> UserPatchEngineResult {
        raiseScheduler()
        defer { restoreScheduler() }
        try preflight(startTime: startTime)
        guard let maps = ProcMapping.read(pid: pid) else { throw error(.targetExited, "the process exited") }
        guard let region = UserPatchEngine.regions(in: tracee, maps: maps).first(where: { $0.uuid == uuid }) else {
            return UserPatchEngineResult(outcome: .notPresent, pauseNanoseconds: nil, threads: 0, busyRetries: 0,
                                         regionAddress: nil)
        }
        guard let header = region.header else {
            throw error(.inconsistent, "the region of patch \(uuid) has no valid header", hint: "restart the process")
        }
        if header.state == .inconsistent {
            throw error(.inconsistent, "the region of patch \(uuid) is marked INCONSISTENT", hint: "restart the process")
        }
        let mapName = "/proc/\(pid)/map_files/\(hex(region.address))-\(hex(region.address + UInt64(header.headerSize)))"
        let file = open(mapName, O_RDWR | O_CLOEXEC)
        if file < 0 {
            throw error(.permission, "cannot open the region header \(mapName): \(Errno.last.description)")
        }
        defer { close(file) }
        if header.state == .prepared {
            // Inert region (no detour references it): just unmap it.
            try withInjectionThread(phase: "cleanup") { (inj) throws(UserPatchError) in
                let r = try inj.syscall(.munmap, region.address, region.end - region.address)
                if r < 0 { throw self.injectedFailure("munmap", r) }
            }
            return UserPatchEngineResult(outcome: .notPresent, pauseNanoseconds: nil, threads: 0, busyRetries: 0,
                                         regionAddress: region.address)
        }
        let ranges = ActivenessRanges.revert(uuid: uuid, regionStart: region.address, regionEnd: region.end, header: header)
        let ((pause, count), retries) = try retryingBusy { () throws(CommitFailure) in
            try revertOnce(region: region, header: header, ranges: ranges, file: file)
        }
        return UserPatchEngineResult(outcome: .deactivated, pauseNanoseconds: pause, threads: count, busyRetries: retries,
                                     regionAddress: region.address, steppedInstructions: stepOutInstructions)
    }

    func revertOnce(region: UserPatchRegion, header: PatchRegionHeader, ranges: ActivenessRanges,
                    file: Int32) throws(CommitFailure) -> (UInt64, Int) {
        let result = try stoppedWindow(phase: "revert", regionStart: region.address, uuid: header.uuid, ranges: ranges,
                                       busyHint: "a thread is inside the patch code; retry later") {
            (mem) throws(CommitFailure) in
            switch DetourWriter.revert(header.functions, text: mem, setState: { writeState($0, file: file) }) {
            case .reverted:
                break
            case let .foreign(f, cur):
                throw CommitFailure.fatal(error(.foreignModification,
                    "\(f.symbol) at 0x\(hex(f.site)) holds \(cur.map(PatchRegionHeader.hexString) ?? "unreadable bytes"), neither our detour nor the original",
                    hint: "another tool changed the entry; nothing was restored"))
            case let .restoreFailed(f, failed):
                throw CommitFailure.fatal(failed
                    ? error(.inconsistent, "restoring \(f.symbol) failed and re-applying the detours failed", hint: "restart the process")
                    : error(.permission, "restoring \(f.symbol) through /proc/\(pid)/mem failed; the patch stays active"))
            }
        }
        // Unmap the now-inert region (header PREPARED, no detour points into it, no thread was in it)
        // after the whole-process window, with one thread borrowed for the munmap: keeps the injection
        // out of the pause. If it fails the region stays mapped and inert; a later deactivate removes it.
        _ = try? withInjectionThread(phase: "cleanup") { (inj) throws(UserPatchError) in
            _ = try inj.syscall(.munmap, region.address, region.end - region.address)
        }
        return result
    }
}
