import Foundation

/// The patch store as the executor needs it: look up, install, remove. The real implementation is the
/// store of `<root>/var/lib/suture/store/<uuid>/`; unit tests use an in-memory one.
public protocol PatchStoreAccess: Sendable {
    /// The installed bundle with `uuid`, re-verified (a tampered payload is listed in `problems`), or nil
    /// when not installed.
    /// - Throws: when the store cannot be read.
    func installed(uuid: String) throws -> InstalledBundle?

    /// Verifies `bundle` (every checksum, and its digest equals `bundle.digest`) and copies it into the store
    /// atomically.
    /// - Returns: the installed copy (its `path` is the store directory).
    /// - Throws: when verification or the copy fails; the store is unchanged then.
    func install(_ bundle: ResolvedBundle) throws -> ResolvedBundle

    /// Deletes bundle `uuid` from the store; no error when it is absent.
    /// - Throws: when the deletion fails.
    func remove(uuid: String) throws
}

/// A user patch in one process, as seen right now.
public enum ProcessPatchProbe: Sendable, Hashable {
    /// The process is gone (or its pid was recycled: the start time differs).
    case gone
    /// The process exists and carries no region of the patch.
    case absent
    /// The process carries a region of the patch; `state` is the region state when known.
    case present(state: PatchRegionMarker.State?)
}

/// Re-reads the live state of one object right before an action acts on it (the executor is
/// level-triggered: an action already done is skipped).
public protocol LiveProbe: Sendable {
    /// Patch `uuid` in process `pid` (`startTime` in clock ticks guards against a recycled pid).
    func userPatch(uuid: String, pid: Int32, startTime: UInt64?) -> ProcessPatchProbe
    /// `/sys/kernel/livepatch/<moduleName>`, nil when the livepatch is not loaded.
    func kernelPatch(moduleName: String) -> KernelLivePatch?
}

/// The real probe: `/proc/<pid>/stat` and `/proc/<pid>/maps`, and `/sys/kernel/livepatch`, under a root.
///
/// A user patch region is recognised by its mapping name `/memfd:suture:<uuid>` in `/proc/PID/maps`
/// (see docs/ for the marker format). The header state is asked of `headerState` when given (the engine's
/// readback), else reported as unknown.
public struct ProcFSProbe: LiveProbe {
    /// The state layout (for the root).
    public var paths: StatePaths
    /// Reads the header state of the region at `address` in `pid` (engine readback); nil: unknown.
    public var headerState: (@Sendable (_ pid: Int32, _ uuid: String, _ address: UInt64) -> PatchRegionMarker.State?)?

    /// Creates a probe under `paths.root`.
    public init(paths: StatePaths,
                headerState: (@Sendable (_ pid: Int32, _ uuid: String, _ address: UInt64) -> PatchRegionMarker.State?)? = nil) {
        self.paths = paths
        self.headerState = headerState
    }

    /// See `LiveProbe.userPatch`.
    public func userPatch(uuid: String, pid: Int32, startTime: UInt64?) -> ProcessPatchProbe {
        let proc = paths.path("/proc/\(pid)")
        if let startTime {
            guard let now = ProcFSProbe.startTime(statPath: proc + "/stat"), now == startTime else { return .gone }
        }
        guard let maps = try? String(contentsOfFile: proc + "/maps", encoding: .utf8) else { return .gone }
        let marker = PatchRegionMarker.mapsPathname(for: uuid.lowercased())
        for line in maps.split(separator: "\n") where line.contains(marker) {
            // The name must be exactly the marker (optionally followed by " (deleted)").
            guard let range = line.range(of: marker) else { continue }
            let rest = line[range.upperBound...]
            if !(rest.isEmpty || rest.hasPrefix(" ")) { continue }
            let address = UInt64(line.prefix { $0 != "-" }, radix: 16) ?? 0
            return .present(state: headerState?(pid, uuid, address))
        }
        return .absent
    }

    /// See `LiveProbe.kernelPatch`.
    public func kernelPatch(moduleName: String) -> KernelLivePatch? {
        LivepatchSysfs.state(of: moduleName, read: { LiveFS.readTrimmed(paths.path($0)) })
    }

    /// Field 22 (`starttime`, clock ticks since boot) of the stat file at `statPath` (``ProcStat``).
    public static func startTime(statPath: String) -> UInt64? {
        ProcStat.read(path: statPath)?.startTime
    }
}
