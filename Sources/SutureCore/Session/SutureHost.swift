import Foundation
import Logging

/// Everything a plan or apply session reads and acts on, injected once: the root and its configuration,
/// the patch store, the live-state reader (region headers included), the probe the executor re-reads
/// objects with, and the user and kernel drivers.
///
/// The production value is `SutureHost.system(root:…)` in `SuturePatching` (ptrace engine, sysfs driver,
/// engine readback of region headers); the CLI, the tests and the benchmarks all build it that way and run
/// ``PlanSession`` and ``ApplySession`` over it.
public struct SutureHost: Sendable {
    /// The filesystem root (`/` in production; a test root or a recorded tree otherwise).
    public let root: String
    /// The state layout under the root.
    public let paths: StatePaths
    /// The host configuration (`<root>/etc/suture/suture.yaml`, `<root>/etc/suture/labels`).
    public let config: SutureConfig
    /// Warnings from reading the configuration.
    public let configWarnings: [Diagnostic]
    /// The patch store under the root.
    public let store: PatchStore
    /// Reads the live state (host facts, livepatches, processes, packages, store, region header states).
    public let liveReader: LiveStateReader
    /// Re-reads one object right before the executor acts on it.
    public let probe: any LiveProbe
    /// The user-space patch driver (ptrace engine).
    public let userDriver: any UserPatchDriver
    /// The kernel livepatch driver.
    public let kernelDriver: any KernelPatchDriver
    /// Receives the executor's structured lines.
    public let logger: Logger

    /// Creates a host.
    /// - Parameters:
    ///   - root: the filesystem root (empty means `/`).
    ///   - config: the host configuration; `configWarnings` its warnings.
    ///   - regionHeaders: reads Suture region headers for the live reader and the probe (nil: unread).
    ///   - probe: the probe; nil builds a ``ProcFSProbe`` under the root that asks `regionHeaders` for the
    ///     header state when the root's processes are the live ones.
    ///   - userDriver: the user-space driver.
    ///   - kernelDriver: the kernel livepatch driver.
    ///   - logger: the run's logger.
    public init(
        root: String, config: SutureConfig, configWarnings: [Diagnostic] = [],
        regionHeaders: (any RegionHeaderReader)?, probe: (any LiveProbe)? = nil,
        userDriver: any UserPatchDriver, kernelDriver: any KernelPatchDriver,
        logger: Logger = Logger(label: "suture")
    ) {
        let root = root.isEmpty ? "/" : root
        self.root = root
        self.paths = StatePaths(root: root)
        self.config = config
        self.configWarnings = configWarnings
        self.store = PatchStore(root: URL(fileURLWithPath: root))
        self.liveReader = LiveStateReader(root: root, regionHeaders: regionHeaders)
        if let probe {
            self.probe = probe
        } else {
            var headerState: (@Sendable (Int32, String, UInt64) -> PatchRegionMarker.State?)?
            if let reader = regionHeaders, readsLiveProcesses(root: root) {
                headerState = { pid, uuid, address in
                    var markers = [UserPatchMarker(uuid: uuid, address: address)]
                    reader.readStates(of: &markers, pid: pid)
                    return markers[0].state
                }
            }
            self.probe = ProcFSProbe(paths: StatePaths(root: root), headerState: headerState)
        }
        self.userDriver = userDriver
        self.kernelDriver = kernelDriver
        self.logger = logger
    }

    /// The hostname manifests are selected for: the root's `/proc/sys/kernel/hostname` when readable, else
    /// nil (`gethostname(2)`).
    public func hostname() -> String? {
        let path = SutureConfig.join(root, "/proc/sys/kernel/hostname")
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        let name = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return name.isEmpty ? nil : name
    }

    /// The configured manifest paths under the root, plus the local manifest written by `suture patch
    /// accept` when it exists and is not already inside one of them. Missing default locations are left
    /// out (they are optional); paths the configuration names are kept (the loader reports them missing).
    public var configuredManifestPaths: [String] {
        var list = config.manifestPaths(root: root)
        if config.manifests == SutureConfig.defaultManifests {
            list = list.filter { FileManager.default.fileExists(atPath: $0) }
        }
        let local = paths.localManifest
        if FileManager.default.fileExists(atPath: local),
            !list.contains(where: { local == $0 || local.hasPrefix($0.hasSuffix("/") ? $0 : $0 + "/") })
        {
            list.append(local)
        }
        return list
    }

    /// Kernel livepatch modules whose transition was forced (`<root>/var/lib/suture/reboot-required`, one
    /// `module<TAB>…` line each).
    public var forcedModules: Set<String> {
        guard let text = try? String(contentsOfFile: paths.stateDirectory + "/reboot-required", encoding: .utf8) else {
            return []
        }
        return Set(text.split(separator: "\n").compactMap { $0.split(separator: "\t").first.map(String.init) })
    }
}
