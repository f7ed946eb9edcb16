/// Everything the planner needs to know about this host, read fresh from `/sys`, `/proc`, the package
/// database and the patch store under a root path. Codable so it can be saved as a snapshot
/// (`suture snapshot`) and fingerprinted for saved plans.
public struct LiveState: Codable, Sendable, Hashable {
    /// `/proc/sys/kernel/hostname` (or `gethostname`).
    public var hostname: String
    /// Host labels (`/etc/suture/labels`).
    public var labels: [String: String]
    /// `/proc/sys/kernel/random/boot_id`.
    public var bootID: String
    /// Kernel release (`/proc/sys/kernel/osrelease`).
    public var kernelRelease: String
    /// Kernel livepatch state.
    public var kernel: KernelLiveState
    /// Bundles in the patch store, sorted by uuid.
    public var store: [InstalledBundle]
    /// Processes that map a target ELF of interest or carry a Suture marker, sorted by pid.
    public var processes: [ProcessLiveState]
    /// Installed packages relevant to the desired state: name → versions (sorted; usually one).
    public var packages: [String: [String]]
    /// Facts that could not be read (e.g. permission denied on other users' `map_files`), with their effect.
    public var unreadable: [UnreadableFact]

    /// Memberwise initializer.
    public init(hostname: String = "", labels: [String: String] = [:], bootID: String = "",
                kernelRelease: String = "", kernel: KernelLiveState = KernelLiveState(),
                store: [InstalledBundle] = [], processes: [ProcessLiveState] = [],
                packages: [String: [String]] = [:], unreadable: [UnreadableFact] = []) {
        self.hostname = hostname
        self.labels = labels
        self.bootID = bootID
        self.kernelRelease = kernelRelease
        self.kernel = kernel
        self.store = store
        self.processes = processes
        self.packages = packages
        self.unreadable = unreadable
    }
}

/// A fact a reader could not read and what that means for the plan.
public struct UnreadableFact: Codable, Sendable, Hashable {
    /// The path that failed (`/proc/1234/map_files/…`).
    public var path: String
    /// The reason (`permission denied`).
    public var reason: String
    /// The consequence for the plan (`build-id of pid 1234 unknown: treated as not matching`).
    public var effect: String

    /// Memberwise initializer.
    public init(path: String, reason: String, effect: String) {
        self.path = path
        self.reason = reason
        self.effect = effect
    }
}

/// The kernel side: `/sys/kernel/livepatch`, the patch modules in `/sys/module`, taint, blockers.
///
/// Format: Documentation/ABI/testing/sysfs-kernel-livepatch. Attributes an older kernel lacks are `nil`.
public struct KernelLiveState: Codable, Sendable, Hashable {
    /// `/sys/kernel/livepatch` exists (CONFIG_LIVEPATCH=y).
    public var livepatchSupported: Bool
    /// Every directory under `/sys/kernel/livepatch`, sorted by `stackOrder` then name.
    public var patches: [KernelLivePatch]
    /// `/proc/sys/kernel/tainted` (bit 15 = K, livepatch).
    public var tainted: UInt64
    /// `/proc/sys/kernel/ftrace_enabled`, when readable.
    public var ftraceEnabled: Bool?
    /// Tasks whose `patch_state` is not the target state while a transition is in progress.
    public var blockers: [TransitionBlocker]
    /// Livepatch modules loaded in `/sys/module` (their `taint` has `K`), by module name, whether or not they
    /// still have a `/sys/kernel/livepatch` directory: a module listed here but absent from ``patches`` is
    /// disabled or replaced and awaits `rmmod`. Patch modules in ``patches`` are listed too.
    public var livepatchModules: [String: KernelModuleInfo]

    /// Memberwise initializer.
    public init(livepatchSupported: Bool = false, patches: [KernelLivePatch] = [], tainted: UInt64 = 0,
                ftraceEnabled: Bool? = nil, blockers: [TransitionBlocker] = [],
                livepatchModules: [String: KernelModuleInfo] = [:]) {
        self.livepatchSupported = livepatchSupported
        self.patches = patches
        self.tainted = tainted
        self.ftraceEnabled = ftraceEnabled
        self.blockers = blockers
        self.livepatchModules = livepatchModules
    }
}

/// One `/sys/kernel/livepatch/<name>` directory and its module.
public struct KernelLivePatch: Codable, Sendable, Hashable {
    /// Directory name = module name (`livepatch_kvmlp`).
    public var name: String
    /// `enabled` (0/1).
    public var enabled: Bool
    /// `transition` (0/1).
    public var transition: Bool
    /// `replace` (Linux ≥ 5.x with atomic replace exposed), when present.
    public var replace: Bool?
    /// `stack_order` (Linux ≥ 6.14), when present.
    public var stackOrder: Int?
    /// Patched objects (`vmlinux` or module names), sorted by name.
    public var objects: [KernelPatchObject]
    /// `/sys/module/<name>` attributes, when the module directory exists.
    public var module: KernelModuleInfo?

    /// Memberwise initializer.
    public init(name: String, enabled: Bool, transition: Bool, replace: Bool? = nil, stackOrder: Int? = nil,
                objects: [KernelPatchObject] = [], module: KernelModuleInfo? = nil) {
        self.name = name
        self.enabled = enabled
        self.transition = transition
        self.replace = replace
        self.stackOrder = stackOrder
        self.objects = objects
        self.module = module
    }
}

/// `/sys/kernel/livepatch/<patch>/<object>`.
public struct KernelPatchObject: Codable, Sendable, Hashable {
    /// `vmlinux` or a module name.
    public var name: String
    /// `patched` (0/1), when present (Linux ≥ 5.x).
    public var patched: Bool?
    /// Function directories `<func>,<sympos>`, sorted.
    public var functions: [KernelPatchFunction]

    /// Memberwise initializer.
    public init(name: String, patched: Bool? = nil, functions: [KernelPatchFunction] = []) {
        self.name = name
        self.patched = patched
        self.functions = functions
    }
}

/// A `<function>,<sympos>` directory.
public struct KernelPatchFunction: Codable, Sendable, Hashable {
    /// Function name.
    public var name: String
    /// Symbol position (0 = unique).
    public var sympos: Int

    /// Memberwise initializer.
    public init(name: String, sympos: Int) {
        self.name = name
        self.sympos = sympos
    }
}

/// `/sys/module/<m>` attributes.
public struct KernelModuleInfo: Codable, Sendable, Hashable {
    /// `refcnt`.
    public var refcount: Int?
    /// `taint` letters (`OEK`).
    public var taint: String?
    /// `initstate` (`live`, `coming`, `going`).
    public var initState: String?

    /// Memberwise initializer.
    public init(refcount: Int? = nil, taint: String? = nil, initState: String? = nil) {
        self.refcount = refcount
        self.taint = taint
        self.initState = initState
    }
}

/// A task that holds a livepatch transition open (its `patch_state` differs from the target state).
public struct TransitionBlocker: Codable, Sendable, Hashable {
    /// Thread group id.
    public var pid: Int32
    /// Task id.
    public var tid: Int32
    /// `/proc/<pid>/task/<tid>/comm` (or the process comm).
    public var comm: String
    /// `patch_state`: -1 (no transition), 0 (unpatched), 1 (patched).
    public var patchState: Int
    /// `/proc/<pid>/task/<tid>/stack` lines, when readable.
    public var stack: [String]

    /// Memberwise initializer.
    public init(pid: Int32, tid: Int32, comm: String, patchState: Int, stack: [String] = []) {
        self.pid = pid
        self.tid = tid
        self.comm = comm
        self.patchState = patchState
        self.stack = stack
    }
}

/// A bundle in the patch store (`/var/lib/suture/store/<uuid>/`), re-verified when read.
public struct InstalledBundle: Codable, Sendable, Hashable {
    /// The bundle as read from the store (path is the store directory).
    public var bundle: ResolvedBundle
    /// Problems found on re-verification (a tampered payload is named); empty when intact.
    public var problems: [String]

    /// Memberwise initializer.
    public init(bundle: ResolvedBundle, problems: [String] = []) {
        self.bundle = bundle
        self.problems = problems
    }

    /// The bundle uuid.
    public var uuid: String { bundle.metadata.uuid }
}

/// One process relevant to the plan.
public struct ProcessLiveState: Codable, Sendable, Hashable {
    /// Process id.
    public var pid: Int32
    /// `/proc/PID/comm`.
    public var comm: String
    /// Start time in clock ticks since boot (`/proc/PID/stat` field 22): with `pid`, identifies the process.
    public var startTime: UInt64
    /// Target ELF files this process maps, matched by device:inode, build-id confirmed.
    public var objects: [MappedObject]
    /// Suture patch markers (`/memfd:suture:<uuid>`) found in its maps.
    public var patches: [UserPatchMarker]

    /// Memberwise initializer.
    public init(pid: Int32, comm: String, startTime: UInt64, objects: [MappedObject] = [],
                patches: [UserPatchMarker] = []) {
        self.pid = pid
        self.comm = comm
        self.startTime = startTime
        self.objects = objects
        self.patches = patches
    }
}

/// An ELF object mapped into a process.
public struct MappedObject: Codable, Sendable, Hashable {
    /// Path as shown in `/proc/PID/maps` (may end in ` (deleted)` stripped; see `deleted`).
    public var path: String
    /// GNU build-id, lower-case hex; empty when it could not be read.
    public var buildID: String
    /// Device (`major:minor` hex as in maps).
    public var device: String
    /// Inode.
    public var inode: UInt64
    /// Load bias = start of the lowest mapping − (lowest `PT_LOAD` `p_vaddr` rounded down to the page).
    public var loadBias: UInt64
    /// The file was deleted or replaced on disk after it was mapped.
    public var deleted: Bool

    /// Memberwise initializer.
    public init(path: String, buildID: String, device: String, inode: UInt64, loadBias: UInt64, deleted: Bool = false) {
        self.path = path
        self.buildID = buildID
        self.device = device
        self.inode = inode
        self.loadBias = loadBias
        self.deleted = deleted
    }
}

/// A Suture patch region found in a process (`/memfd:suture:<uuid> (deleted)` in `/proc/PID/maps`).
public struct UserPatchMarker: Codable, Sendable, Hashable {
    /// The patch uuid from the mapping name.
    public var uuid: String
    /// Start address of the region.
    public var address: UInt64
    /// Region state when its header was read (and, for ACTIVE, its entries), `nil` if not read.
    public var state: PatchRegionMarker.State?

    /// Memberwise initializer.
    public init(uuid: String, address: UInt64, state: PatchRegionMarker.State? = nil) {
        self.uuid = uuid
        self.address = address
        self.state = state
    }
}
