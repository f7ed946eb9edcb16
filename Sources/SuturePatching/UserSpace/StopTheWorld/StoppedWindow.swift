#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim
import SutureCore

/// The whole-process window that commit and revert share.
extension EngineSession {
    /// One whole-process window shared by commit and revert: stop every thread; check that the region
    /// (`regionStart`, marker `uuid`) is still mapped (else TARGET_EXITED / EXEC_RACE), that no vfork child
    /// shares the memory and that no thread is active in `ranges` (BUSY with `busyHint`); run `body` with
    /// `/proc/PID/mem`; call the test hook; release every thread.
    /// - Returns: the pause (first thread stopped → last thread released, ns) and the number of threads.
    func stoppedWindow(phase: String, regionStart: UInt64, uuid: String, ranges: ActivenessRanges, busyHint: String,
                       _ body: (ProcMem) throws(CommitFailure) -> Void) throws(CommitFailure) -> (UInt64, Int) {
        prepareUnwinder()
        do {
            try stopAll(phase: phase)
        } catch {
            throw error.code == .busy ? .busy(error) : .fatal(error)
        }
        let count = threads.count
        do throws(CommitFailure) {
            guard let maps = ProcMapping.read(pid: pid) else {
                throw CommitFailure.fatal(error(.targetExited, "the process exited during \(phase)"))
            }
            guard maps.contains(where: { $0.start == regionStart && PatchRegionMarker.patchID(fromMapsPathname: $0.path) == uuid }) else {
                if processGone() { throw CommitFailure.fatal(error(.targetExited, "the process exited during \(phase)")) }
                throw CommitFailure.fatal(error(.execRace, "the patch region disappeared during \(phase) (the process exec'd)",
                                                hint: "retry: the new program image is not patched"))
            }
            if let child = sharedMemoryChild() {
                throw CommitFailure.busy(error(.busy, "memory is shared with vfork child \(child), which has not exec'd yet",
                                               hint: "retry in a moment"))
            }
            if let who = try activeThread(ranges: ranges, maps: maps) {
                throw CommitFailure.busy(error(.busy, who, hint: busyHint))
            }
            guard let mem = ProcMem(pid: pid) else {
                throw CommitFailure.fatal(error(.targetExited, "cannot open /proc/\(pid)/mem"))
            }
            TracerDeathHook.at("window")
            try body(mem)
            hooks.whileStopped?(pid, threads.keys.sorted())
        } catch {
            resumeAll()
            throw error
        }
        let first = firstStopNs
        let end = resumeAll()
        return (first == 0 ? 0 : end - first, count)
    }
}
