/// The part of a `LiveState` a saved plan depends on, so that `suture apply PLANFILE` refuses a plan only
/// when a fact that could change what the plan does has changed (not when an unrelated process starts or
/// another service's patch becomes live elsewhere on the host).
///
/// Kept: boot id, kernel release and livepatch support; every `/sys/kernel/livepatch` entry and loaded
/// livepatch module when any declared, stored or planned patch is a kernel patch; the whole store; the
/// packages the desired state or a declared/stored bundle names; and, whole (every mapped object and
/// marker), each process that maps a target object of a declared or stored bundle (by path or build-id),
/// carries a marker of a declared, stored or planned patch, or is named by a plan action.
public struct PlanDependencies: Sendable, Hashable {
    /// Target object paths (entity `target_path`).
    public var targetPaths: Set<String>
    /// Target build-ids, lower-case hex.
    public var targetBuildIDs: Set<String>
    /// Patch uuids the plan depends on (declared and planned; stored ones are added per live state).
    public var uuids: Set<String>
    /// Pids named by plan actions.
    public var pids: Set<Int32>
    /// Package names named by the desired state.
    public var packages: Set<String>
    /// Whether a kernel patch is declared or planned.
    public var kernel: Bool

    /// The dependencies of `plan` made for `desired`.
    public init(desired: DesiredState, plan: Plan) {
        targetPaths = []; targetBuildIDs = []; uuids = []; pids = []; packages = []; kernel = false
        for patch in desired.patches {
            if case let .package(name, _) = patch.target { packages.insert(name) }
            if case .kernel = patch.target { kernel = true }
            if let bundle = patch.bundle { add(bundle.metadata) }
        }
        for action in plan.actions {
            uuids.insert(action.uuid)
            if let pid = action.pid { pids.insert(pid) }
            if let path = action.targetPath { targetPaths.insert(path) }
            if action.patchKind == .kernel { kernel = true }
        }
    }

    private mutating func add(_ meta: BundleMetadata) {
        uuids.insert(meta.uuid)
        packages.insert(meta.target.package)
        if meta.kind == .kernel { kernel = true }
        for entity in meta.entities {
            targetPaths.insert(entity.targetPath)
            if !entity.targetBuildID.isEmpty { targetBuildIDs.insert(entity.targetBuildID.lowercased()) }
        }
    }

    /// `live` without the facts the plan does not depend on (see the type's documentation). Idempotent;
    /// the store's bundles count as declared.
    public func restrict(_ live: LiveState) -> LiveState {
        var deps = self
        for entry in live.store { deps.add(entry.bundle.metadata) }
        var out = live
        if !deps.kernel {
            out.kernel.patches = []
            out.kernel.livepatchModules = [:]
        }
        out.packages = live.packages.filter { deps.packages.contains($0.key) }
        out.processes = live.processes.filter { process in
            deps.pids.contains(process.pid)
                || process.patches.contains { deps.uuids.contains($0.uuid) }
                || process.objects.contains {
                    deps.targetPaths.contains($0.path) || deps.targetBuildIDs.contains($0.buildID.lowercased())
                }
        }
        return out
    }
}
