/// The planner: a pure function from (desired state, live state) to an ordered `Plan`. No I/O, no clock,
/// no environment: the same inputs give a byte-identical plan, whatever order the inputs list things in.
///
/// ## Rules
/// - **User patches** are live in a process when it carries the patch's marker mapping
///   (`/memfd:suture:<uuid>`, `ProcessLiveState.patches`, any state but `prepared`). A declared
///   `activated`/`accepted` patch is live when every process mapping an entity's target — matched by
///   build-id through `ProcessLiveState.objects` — carries it; one `activate` action is planned per
///   (process, entity) where it is missing. `deactivated`/`absent` patches get one `deactivate` per
///   process that carries a marker.
/// - **Kernel patches** are identified by `BundleEntity.moduleName`; live when
///   `/sys/kernel/livepatch/<module>` has `enabled=1` and `transition=0` (kernel ABI:
///   Documentation/ABI/testing/sysfs-kernel-livepatch). A transition already moving toward the desired
///   state gets no action (it is reported as drift). Activating a `replace: true` patch disables every other
///   livepatch atomically (kernel `klp_patch.replace`): the deactivations it implies are not planned as
///   separate actions but noted.
/// - **Store**: `install` when a patch that must be installed is missing from the store, has another digest,
///   or failed re-verification; `remove` for `absent` patches (and undeclared ones with `prune: true`).
/// - **Order** (the executor runs actions in this order, one at a time): every `install`, then every
///   `deactivate` (kernel ones consecutive), then every `activate` (kernel ones consecutive, `replace`
///   patches first), then every `remove`. This satisfies: install before activate, deactivate before
///   remove, a deactivation before any activation touching the same function (same target and symbol),
///   and kernel actions serialized, one livepatch at a time.
/// - **Drift**: foreign live patches (a livepatch no store bundle provides; a marker whose uuid is not in
///   the store), partial user patches, kernel transitions in progress or blocked, target package missing
///   or at another version (a plan error for patches that must be live), target not running, undeclared
///   store patches (reported, or pruned with `prune: true`), corrupt store entries.
public enum Planner {
    /// Computes the plan that takes `live` to `desired`, with its drift, errors and notes, and sets
    /// `Plan.liveFingerprint` to `LiveStateFingerprint.compute(live)`.
    ///
    /// - Parameters:
    ///   - desired: the merged manifests (`ManifestLoader`).
    ///   - live: the state read by the live-state readers.
    /// - Returns: a plan whose actions, drift, errors and notes are sorted deterministically. A plan with
    ///   `errors` must not be applied; its actions omit the patches in error.
    public static func plan(desired: DesiredState, live: LiveState) -> Plan {
        var builder = PlanBuilder(desired: desired.canonicalized(), index: LiveIndex(live))
        return builder.build()
    }
}

/// Accumulates actions, drift, errors and notes for one planning run.
struct PlanBuilder {
    let desired: DesiredState
    let index: LiveIndex
    var actions: [PlanAction] = []
    var drift: [Drift] = []
    var errors: [Diagnostic] = []
    var notes: [String] = []
    /// Store uuids claimed by a declaration (whatever its state).
    var claimed: Set<String> = []
    /// Entities of kernel activations planned, by module, for the atomic-replace pass.
    var plannedKernelActivations: [String: BundleEntity] = [:]

    init(desired: DesiredState, index: LiveIndex) {
        self.desired = desired
        self.index = index
    }

    var live: LiveState { index.live }

    mutating func build() -> Plan {
        checkDuplicateUUIDs()
        for patch in desired.patches { planDeclared(patch) }
        checkFunctionConflicts()
        planUndeclared()
        reportCorruptStore()
        reportForeign()
        reportTransitions()
        reportLingeringModules()
        applyAtomicReplace()
        let sortedActions = orderedActions()
        let sortedDrift = Array(Set(drift)).sorted(by: PlanBuilder.driftOrder)
        let sortedErrors = Array(Set(errors)).sorted(by: PlanBuilder.diagnosticOrder)
        let sortedNotes: [String] = Array(Set(notes)).sorted()
        return Plan(actions: sortedActions, drift: sortedDrift, errors: sortedErrors,
                    liveFingerprint: LiveStateFingerprint.compute(live), notes: sortedNotes)
    }

    static func driftOrder(_ a: Drift, _ b: Drift) -> Bool {
        if a.patch != b.patch { return a.patch < b.patch }
        if a.kind != b.kind { return a.kind.rawValue < b.kind.rawValue }
        return a.message < b.message
    }

    static func diagnosticOrder(_ a: Diagnostic, _ b: Diagnostic) -> Bool {
        switch (a.location, b.location) {
        case let (x?, y?) where x != y: return x < y
        case (nil, _?): return true
        case (_?, nil): return false
        default: return a.message < b.message
        }
    }

    // MARK: Ordering

    /// Phase of an action: installs, deactivations, activations, removals.
    static func phase(_ action: PlanAction) -> Int {
        switch action.kind {
        case .install: return 0
        case .deactivate: return 1
        case .activate: return 2
        case .remove: return 3
        }
    }

    /// The sort key of an action (see `Planner` for the order). Computed once per action: sorting 10,000
    /// per-process activations must not rebuild keys in every comparison.
    struct OrderKey {
        var phase: Int
        var kindRank: Int
        var replaceRank: Int
        var patch: String
        var uuid: String
        var module: String
        var targetPath: String
        var pid: Int64
        var startTime: UInt64
        var reason: String
        var comm: String

        init(_ x: PlanAction, replacing: Set<String>) {
            phase = PlanBuilder.phase(x)
            // Kernel actions consecutive (first in each phase); replace patches first among activations.
            kindRank = x.patchKind == .kernel ? 0 : 1
            replaceRank = x.kind == .activate && x.module.map(replacing.contains) == true ? 0 : 1
            patch = x.patch
            uuid = x.uuid
            module = x.module ?? ""
            targetPath = x.targetPath ?? ""
            pid = Int64(x.pid ?? -1)
            startTime = x.startTime ?? 0
            reason = x.reason
            comm = x.comm ?? ""
        }

        static func < (a: OrderKey, b: OrderKey) -> Bool {
            if a.phase != b.phase { return a.phase < b.phase }
            if a.kindRank != b.kindRank { return a.kindRank < b.kindRank }
            if a.replaceRank != b.replaceRank { return a.replaceRank < b.replaceRank }
            if a.patch != b.patch { return a.patch < b.patch }
            if a.uuid != b.uuid { return a.uuid < b.uuid }
            if a.module != b.module { return a.module < b.module }
            if a.targetPath != b.targetPath { return a.targetPath < b.targetPath }
            if a.pid != b.pid { return a.pid < b.pid }
            if a.startTime != b.startTime { return a.startTime < b.startTime }
            if a.reason != b.reason { return a.reason < b.reason }
            return a.comm < b.comm
        }
    }

    /// `actions` in execution order.
    func orderedActions() -> [PlanAction] {
        let replacing = Set(plannedKernelActivations.filter { $0.value.replace == true }.keys)
        let keys = actions.map { OrderKey($0, replacing: replacing) }
        return actions.indices.sorted { keys[$0] < keys[$1] }.map { actions[$0] }
    }

    /// Text every atomic-replace activation's reason contains (also used to order them first).
    static let atomicReplaceMarker = "atomic replace"

    // MARK: Declared patches

    mutating func checkDuplicateUUIDs() {
        var seen: [String: DesiredPatch] = [:]
        for patch in desired.patches {
            guard let uuid = patch.uuid else { continue }
            if let first = seen[uuid] {
                errors.append(Diagnostic(
                    .error, "patches '\(first.name)' and '\(patch.name)' use the same bundle uuid \(uuid)",
                    at: patch.location,
                    notes: [Diagnostic(.note, "'\(first.name)' is declared here", at: first.location)]))
            } else {
                seen[uuid] = patch
            }
        }
    }

    mutating func planDeclared(_ patch: DesiredPatch) {
        guard let bundle = patch.bundle else {
            if patch.state != .absent {
                errors.append(Diagnostic(.error, "patch '\(patch.name)' is declared \(patch.state.rawValue) but its bundle was not loaded",
                                         at: patch.location))
                return
            }
            // An absent patch whose bundle is gone: every store entry with that name goes.
            for entry in live.store where entry.bundle.metadata.name == patch.name && !claimed.contains(entry.uuid) {
                claimed.insert(entry.uuid)
                planTakeDown(entry.bundle.metadata, why: "declared absent", location: patch.location)
                actions.append(PlanAction(kind: .remove, patch: patch.name, uuid: entry.uuid,
                                          patchKind: entry.bundle.metadata.kind,
                                          reason: "declared absent; in the store (digest \(shortDigest(entry.bundle.digest)))",
                                          location: patch.location))
            }
            return
        }
        let meta = bundle.metadata
        claimed.insert(meta.uuid)
        let wantLive = patch.state == .activated || patch.state == .accepted
        if patch.state != .absent && !checkTarget(patch, meta) { return }
        if wantLive && meta.kind == .kernel && !live.kernel.livepatchSupported {
            errors.append(Diagnostic(.error, "patch '\(patch.name)' is a kernel livepatch but this kernel has no livepatch support (/sys/kernel/livepatch is missing)",
                                     at: patch.location))
            return
        }

        let stored = index.storeByUUID[meta.uuid]
        let declared = "declared \(patch.state.rawValue)"
        // The live copy was built from store content other than the declared bundle.
        let staleLive = stored.map { $0.bundle.digest != bundle.digest } ?? false

        if patch.state != .absent {
            if let stored {
                if stored.bundle.digest != bundle.digest {
                    actions.append(PlanAction(kind: .install, patch: patch.name, uuid: meta.uuid, patchKind: meta.kind,
                                              reason: "\(declared); the store holds digest \(shortDigest(stored.bundle.digest)), the manifest's bundle is \(shortDigest(bundle.digest))",
                                              location: patch.location))
                } else if !stored.problems.isEmpty {
                    actions.append(PlanAction(kind: .install, patch: patch.name, uuid: meta.uuid, patchKind: meta.kind,
                                              reason: "\(declared); the store copy failed verification (\(stored.problems.joined(separator: "; ")))",
                                              location: patch.location))
                }
            } else {
                actions.append(PlanAction(kind: .install, patch: patch.name, uuid: meta.uuid, patchKind: meta.kind,
                                          reason: "\(declared); not in the store", location: patch.location))
            }
        }

        if wantLive {
            switch meta.kind {
            case .user: planUserLive(patch, meta, staleFrom: staleLive ? stored?.bundle.digest : nil)
            case .kernel: planKernelLive(patch, meta, staleFrom: staleLive ? stored?.bundle.digest : nil)
            }
        } else {
            planTakeDown(meta, why: declared, location: patch.location)
        }

        if patch.state == .absent, let stored {
            actions.append(PlanAction(kind: .remove, patch: patch.name, uuid: meta.uuid, patchKind: meta.kind,
                                      reason: "declared absent; in the store (digest \(shortDigest(stored.bundle.digest)))",
                                      location: patch.location))
        }
    }

    /// Checks the declared target against the installed packages and kernel release. Returns false (and
    /// records an error) when a patch that must be live targets something not on this host.
    mutating func checkTarget(_ patch: DesiredPatch, _ meta: BundleMetadata) -> Bool {
        let wantLive = patch.state == .activated || patch.state == .accepted
        var problem: String?
        switch patch.target {
        case let .package(name, version):
            let installed = live.packages[name] ?? []
            if installed.isEmpty {
                problem = "target package \(name) is not installed (the manifest targets \(name) \(version))"
            } else if !installed.contains(version) {
                problem = "target package \(name) is at version \(installed.joined(separator: ", ")), the manifest targets \(version)"
            }
        case let .kernel(release):
            if !live.kernelRelease.isEmpty && live.kernelRelease != release {
                problem = "the running kernel is \(live.kernelRelease), the manifest targets kernel \(release)"
            }
        case .path:
            problem = nil
        }
        guard let problem else { return true }
        if wantLive {
            errors.append(Diagnostic(.error, "patch '\(patch.name)' cannot be \(patch.state.rawValue): \(problem)",
                                     at: patch.location))
            return false
        }
        drift.append(Drift(kind: .targetPackageMismatch, patch: patch.name,
                           message: "\(problem); the patch is only kept in the store", location: patch.location))
        return true
    }

    mutating func planUserLive(_ patch: DesiredPatch, _ meta: BundleMetadata, staleFrom: String?) {
        let declared = "declared \(patch.state.rawValue)"
        var restarted: Set<Int32> = []
        if let staleFrom {
            // The running copy is the old store content: take it down everywhere first.
            for process in index.carriers(of: meta.uuid) {
                restarted.insert(process.pid)
                let entity = LiveIndex.mappedEntity(meta, in: process)
                actions.append(PlanAction(kind: .deactivate, patch: patch.name, uuid: meta.uuid, patchKind: .user,
                                          pid: process.pid, comm: process.comm, startTime: process.startTime,
                                          targetPath: entity?.targetPath,
                                          reason: "\(declared); the live copy is from store digest \(shortDigest(staleFrom)), replaced by \(shortDigest(patch.bundle?.digest ?? ""))",
                                          location: patch.location))
            }
        }
        var activated: Set<Int32> = []
        for facts in index.userFacts(meta) {
            let path = facts.entity.targetPath
            let n = facts.matching.count, k = facts.live.count
            if n == 0 {
                var message = "no running process maps \(path)"
                if !facts.entity.targetBuildID.isEmpty { message += " (build-id \(shortDigest(facts.entity.targetBuildID)))" }
                message += "; nothing to patch now"
                drift.append(Drift(kind: .targetNotRunning, patch: patch.name, message: message, location: patch.location))
            } else if k > 0 && k < n && staleFrom == nil {
                drift.append(Drift(kind: .partial, patch: patch.name,
                                   message: "live in \(k) of \(plural(n, "process", "processes")) of \(path)"
                                       + (patch.allowPartial ? " (allowPartial)" : ""),
                                   location: patch.location))
            }
            if !facts.otherBuild.isEmpty {
                let builds = Set(facts.otherBuild.flatMap { $0.objects.filter { $0.path == path }.map { $0.buildID.isEmpty ? "unknown" : shortDigest($0.buildID) } })
                drift.append(Drift(kind: .targetPackageMismatch, patch: patch.name,
                                   message: "\(plural(facts.otherBuild.count, "process maps", "processes map")) \(path) with another build-id (\(builds.sorted().joined(separator: ", "))) than the bundle's \(shortDigest(facts.entity.targetBuildID)), not patched: \(pidList(facts.otherBuild))",
                                   location: patch.location))
            }
            let liveNow = Set(facts.live.map(\.pid)).subtracting(restarted)
            // One string per entity, shared by its per-process actions.
            let missingReason = "\(declared); live in \(k) of \(plural(n, "process", "processes")) of \(path)"
            let restartReason = "\(declared); re-activate with the new bundle in \(path)"
            for process in facts.matching where !liveNow.contains(process.pid) && !activated.contains(process.pid) {
                activated.insert(process.pid)
                let reason = restarted.contains(process.pid) ? restartReason : missingReason
                actions.append(PlanAction(kind: .activate, patch: patch.name, uuid: meta.uuid, patchKind: .user,
                                          pid: process.pid, comm: process.comm, startTime: process.startTime,
                                          targetPath: path, reason: reason, location: patch.location))
            }
        }
    }

    mutating func planKernelLive(_ patch: DesiredPatch, _ meta: BundleMetadata, staleFrom: String?) {
        let declared = "declared \(patch.state.rawValue)"
        for entity in meta.entities.sorted(by: { $0.targetPath < $1.targetPath }) {
            guard let module = entity.moduleName, !module.isEmpty else {
                errors.append(Diagnostic(.error, "patch '\(patch.name)': kernel entity \(entity.targetPath) has no module_name",
                                         at: patch.location))
                continue
            }
            let replaceNote = entity.replace == true ? "; \(PlanBuilder.atomicReplaceMarker)" : ""
            func activate(_ why: String) {
                plannedKernelActivations[module] = entity
                actions.append(PlanAction(kind: .activate, patch: patch.name, uuid: meta.uuid, patchKind: .kernel,
                                          targetPath: entity.targetPath, module: module,
                                          reason: "\(declared); \(why)\(replaceNote)", location: patch.location))
            }
            guard let lp = index.kernelByName[module] else {
                activate("livepatch \(module) is not loaded")
                continue
            }
            if let staleFrom, lp.enabled {
                actions.append(PlanAction(kind: .deactivate, patch: patch.name, uuid: meta.uuid, patchKind: .kernel,
                                          targetPath: entity.targetPath, module: module,
                                          reason: "\(declared); livepatch \(module) is from store digest \(shortDigest(staleFrom)), replaced by \(shortDigest(patch.bundle?.digest ?? ""))",
                                          location: patch.location))
                activate("load the new livepatch \(module)")
                continue
            }
            switch (lp.enabled, lp.transition) {
            case (true, false): break  // live
            case (true, true): break  // patching in progress: reported by reportTransitions
            case (false, true): activate("livepatch \(module) is being disabled (transition in progress)")
            case (false, false): activate("livepatch \(module) is loaded but disabled")
            }
        }
    }

    /// Plans deactivations of every live instance of `meta` (user markers; kernel livepatches present).
    mutating func planTakeDown(_ meta: BundleMetadata, why: String, location: SourceLocation?) {
        switch meta.kind {
        case .user:
            let carriers = index.carriers(of: meta.uuid)
            guard !carriers.isEmpty else { return }
            let facts = index.userFacts(meta)
            for process in carriers {
                let entity = LiveIndex.mappedEntity(meta, in: process)
                let detail: String
                if let entity, let f = facts.first(where: { $0.entity == entity }) {
                    detail = "live in \(f.live.count) of \(plural(f.matching.count, "process", "processes")) of \(entity.targetPath)"
                } else {
                    detail = "its marker is in this process"
                }
                actions.append(PlanAction(kind: .deactivate, patch: meta.name, uuid: meta.uuid, patchKind: .user,
                                          pid: process.pid, comm: process.comm, startTime: process.startTime,
                                          targetPath: entity?.targetPath, reason: "\(why); \(detail)", location: location))
            }
        case .kernel:
            for entity in meta.entities.sorted(by: { $0.targetPath < $1.targetPath }) {
                guard let module = entity.moduleName, let lp = index.kernelByName[module] else { continue }
                let state: String
                switch (lp.enabled, lp.transition) {
                case (true, false): state = "livepatch \(module) is enabled"
                case (true, true): state = "livepatch \(module) is being enabled (transition in progress)"
                case (false, true): continue  // already being disabled: reported by reportTransitions
                case (false, false): state = "livepatch \(module) is loaded but disabled"
                }
                actions.append(PlanAction(kind: .deactivate, patch: meta.name, uuid: meta.uuid, patchKind: .kernel,
                                          targetPath: entity.targetPath, module: module,
                                          reason: "\(why); \(state)", location: location))
            }
        }
    }

    // MARK: Conflicts

    /// Two user patches that must both be live and replace the same function (same target build-id, or
    /// path when unknown, and symbol) cannot coexist: the second detour would overwrite the first.
    mutating func checkFunctionConflicts() {
        struct Key: Hashable, Comparable {
            var target: String
            var symbol: String
            static func < (a: Key, b: Key) -> Bool { (a.target, a.symbol) < (b.target, b.symbol) }
        }
        var owners: [Key: [DesiredPatch]] = [:]
        for patch in desired.patches where patch.state == .activated || patch.state == .accepted {
            guard let meta = patch.bundle?.metadata, meta.kind == .user else { continue }
            var keys: Set<Key> = []
            for entity in meta.entities {
                let target = entity.targetBuildID.isEmpty ? entity.targetPath : entity.targetBuildID.lowercased()
                for function in entity.functions ?? [] { keys.insert(Key(target: target, symbol: function.symbol)) }
            }
            for key in keys { owners[key, default: []].append(patch) }
        }
        var reported: Set<[String]> = []
        for key in owners.keys.sorted() {
            let patches = owners[key]!
            guard patches.count > 1 else { continue }
            let names = patches.map(\.name)
            guard reported.insert(names).inserted else { continue }
            let target = patches[0].bundle?.metadata.entities.first {
                ($0.targetBuildID.isEmpty ? $0.targetPath : $0.targetBuildID.lowercased()) == key.target
            }?.targetPath ?? key.target
            errors.append(Diagnostic(
                .error, "patches \(names.map { "'\($0)'" }.joined(separator: " and ")) both replace \(key.symbol) in \(target); only one can be live",
                at: patches[1].location,
                notes: [Diagnostic(.note, "'\(patches[0].name)' is declared here", at: patches[0].location)]))
            // Do not plan activations that would collide.
            let uuids = Set(patches.compactMap(\.uuid))
            actions.removeAll { $0.kind == .activate && uuids.contains($0.uuid) }
        }
    }

    // MARK: Undeclared, corrupt, foreign, transitions

    mutating func planUndeclared() {
        for entry in live.store where !claimed.contains(entry.uuid) {
            let meta = entry.bundle.metadata
            let liveWhere = liveSummary(meta)
            if desired.prune {
                planTakeDown(meta, why: "not declared by any manifest (prune)", location: nil)
                actions.append(PlanAction(kind: .remove, patch: meta.name, uuid: meta.uuid, patchKind: meta.kind,
                                          reason: "not declared by any manifest (prune); in the store (digest \(shortDigest(entry.bundle.digest)))"))
            } else {
                drift.append(Drift(kind: .undeclared, patch: meta.name,
                                   message: "in the store (uuid \(meta.uuid)) but declared by no manifest; \(liveWhere); set prune: true to remove it"))
            }
        }
    }

    /// "live in 2 processes" / "livepatch m enabled" / "not live".
    func liveSummary(_ meta: BundleMetadata) -> String {
        switch meta.kind {
        case .user:
            let carriers = index.carriers(of: meta.uuid)
            return carriers.isEmpty ? "not live" : "live in \(plural(carriers.count, "process", "processes"))"
        case .kernel:
            let enabled = meta.entities.compactMap(\.moduleName).filter { index.kernelByName[$0]?.enabled == true }
            return enabled.isEmpty ? "not live" : "livepatch \(enabled.joined(separator: ", ")) enabled"
        }
    }

    mutating func reportCorruptStore() {
        for entry in live.store where !entry.problems.isEmpty {
            drift.append(Drift(kind: .corruptStore, patch: entry.bundle.metadata.name,
                               message: "store entry \(entry.uuid) failed verification: \(entry.problems.joined(separator: "; "))"))
        }
    }

    mutating func reportForeign() {
        let declaredModules: [String: DesiredPatch] = Dictionary(
            desired.patches.flatMap { patch in
                (patch.bundle?.metadata.entities ?? []).compactMap { $0.moduleName }.map { ($0, patch) }
            }, uniquingKeysWith: { a, _ in a })
        for lp in live.kernel.patches where index.storeModules[lp.name] == nil {
            var message = "livepatch \(lp.name) (enabled=\(lp.enabled ? 1 : 0), transition=\(lp.transition ? 1 : 0)) is not from a bundle in the store"
            if let patch = declaredModules[lp.name] {
                message += "; its name matches declared patch '\(patch.name)', which was loaded outside Suture"
            } else {
                message += "; Suture reports it and never removes it"
            }
            drift.append(Drift(kind: .foreign, patch: lp.name, message: message, location: declaredModules[lp.name]?.location))
        }
        var foreign: [String: [ProcessLiveState]] = [:]
        for process in live.processes {
            for uuid in Set(process.patches.map(\.uuid)) where index.storeByUUID[uuid] == nil {
                foreign[uuid, default: []].append(process)
            }
        }
        let declaredByUUID = Dictionary(desired.patches.compactMap { p in p.uuid.map { ($0, p) } }, uniquingKeysWith: { a, _ in a })
        for (uuid, processes) in foreign {
            var message = "patch marker \(PatchRegionMarker.mapsPathname(for: uuid)) in \(plural(processes.count, "process", "processes")) (\(pidList(processes))) is not from a bundle in the store"
            if let patch = declaredByUUID[uuid] {
                message += "; its uuid is declared patch '\(patch.name)', which was activated outside this store"
            }
            drift.append(Drift(kind: .foreign, patch: declaredByUUID[uuid]?.name ?? uuid, message: message,
                               location: declaredByUUID[uuid]?.location))
        }
    }

    /// Livepatch modules loaded in `/sys/module` without a `/sys/kernel/livepatch` directory: disabled or
    /// replaced, awaiting unloading. Not an action (the kernel driver unloads what it disables); a note.
    mutating func reportLingeringModules() {
        for module in live.kernel.livepatchModules.keys.sorted() where index.kernelByName[module] == nil {
            let owner = index.storeModules[module].flatMap { index.storeByUUID[$0]?.bundle.metadata.name }
            notes.append("livepatch module \(module)\(owner.map { " (\($0))" } ?? "") is loaded but not registered (disabled or replaced); it stays in memory until unloaded (rmmod \(module))")
        }
    }

    mutating func reportTransitions() {
        for lp in live.kernel.patches where lp.transition {
            let owner = index.storeModules[lp.name].flatMap { index.storeByUUID[$0]?.bundle.metadata.name } ?? lp.name
            var message = "livepatch \(lp.name): transition to \(lp.enabled ? "enabled" : "disabled") in progress"
            let blockers = live.kernel.blockers
            if !blockers.isEmpty {
                let shown = blockers.prefix(8).map { "\($0.comm)[\($0.pid)/\($0.tid)]" }
                message += "; blocked by \(plural(blockers.count, "task")): \(shown.joined(separator: ", "))"
                if blockers.count > 8 { message += " and \(blockers.count - 8) more" }
            }
            message += "; kernel actions wait for it to finish"
            drift.append(Drift(kind: .stalledTransition, patch: owner, message: message))
        }
    }

    // MARK: Atomic replace

    /// For each planned activation of a `replace: true` livepatch, every other livepatch present is
    /// disabled by the kernel in the same transition: planned deactivations of those become implicit
    /// (removed from the plan, noted); live patches that are declared activated make the plan an error.
    mutating func applyAtomicReplace() {
        let replacing = plannedKernelActivations.filter { $0.value.replace == true }.keys.sorted()
        guard !replacing.isEmpty else { return }
        if replacing.count > 1 {
            errors.append(Diagnostic(.error, "the plan activates several atomic-replace livepatches (\(replacing.joined(separator: ", "))); each would disable the others"))
        }
        let replacer = replacing[0]
        let replacerPatch = actions.first { $0.kind == .activate && $0.module == replacer }?.patch ?? replacer
        let declaredLive: [String: DesiredPatch] = Dictionary(
            desired.patches.filter { $0.state == .activated || $0.state == .accepted }.flatMap { patch in
                (patch.bundle?.metadata.entities ?? []).compactMap { $0.moduleName }.map { ($0, patch) }
            }, uniquingKeysWith: { a, _ in a })
        for lp in live.kernel.patches where lp.name != replacer {
            if let i = actions.firstIndex(where: { $0.kind == .deactivate && $0.patchKind == .kernel && $0.module == lp.name }) {
                let removed = actions.remove(at: i)
                notes.append("livepatch \(lp.name) (\(removed.patch)) is disabled implicitly by the atomic replace of \(replacer) (\(replacerPatch)); its module stays loaded until unloaded")
            } else if plannedKernelActivations[lp.name] != nil {
                continue  // activated again after the replace (non-replace activations run later)
            } else if let patch = declaredLive[lp.name], !replacing.contains(lp.name) {
                errors.append(Diagnostic(.error, "activating atomic-replace livepatch \(replacer) (\(replacerPatch)) would disable livepatch \(lp.name), which patch '\(patch.name)' declares \(patch.state.rawValue)",
                                         at: patch.location))
            } else if lp.enabled {
                notes.append("livepatch \(lp.name) is disabled too by the atomic replace of \(replacer) (\(replacerPatch))")
            }
        }
    }
}
