/// What `suture status` prints: every patch known from the store, the live state and the manifests, with
/// its SysCare state name (see ../shared/reference/syscare.md §4: NOT-APPLIED, DEACTIVATED, ACTIVATED,
/// ACCEPTED) and conditions (DESIGN §2). Read from live facts only, never from a cache.
///
/// JSON (`suture status --json`) carries `format_version` 1; keys are snake_case.
public struct StatusReport: Codable, Sendable, Hashable {
    /// JSON format version (1).
    public var formatVersion: Int
    /// Hostname of the live state.
    public var hostname: String
    /// Kernel release of the live state.
    public var kernelRelease: String
    /// Boot id of the live state.
    public var bootID: String
    /// Fingerprint of the live state (`LiveStateFingerprint`).
    public var liveFingerprint: String
    /// One entry per patch, sorted by name then uuid.
    public var patches: [PatchStatusEntry]

    /// Memberwise initializer.
    public init(formatVersion: Int = 1, hostname: String, kernelRelease: String, bootID: String,
                liveFingerprint: String, patches: [PatchStatusEntry]) {
        self.formatVersion = formatVersion
        self.hostname = hostname
        self.kernelRelease = kernelRelease
        self.bootID = bootID
        self.liveFingerprint = liveFingerprint
        self.patches = patches
    }

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", hostname, kernelRelease = "kernel_release", bootID = "boot_id",
             liveFingerprint = "live_fingerprint", patches
    }
}

/// The status of one patch.
public struct PatchStatusEntry: Codable, Sendable, Hashable {
    /// Patch name (the livepatch module name or the marker uuid for foreign patches).
    public var name: String
    /// Bundle uuid, when known.
    public var uuid: String?
    /// `user` or `kernel`, when known (foreign markers are `user`, foreign livepatches `kernel`).
    public var kind: PatchKind
    /// What it targets (`libssl3 3.0.15-1~deb12u1`, `kernel 6.1.0-57-amd64`), when known.
    public var target: String?
    /// The declared state, when a manifest declares it.
    public var declared: DesiredPatchState?
    /// The manifest entry, when declared.
    public var location: SourceLocation?
    /// The state: NOT-APPLIED (not in the store and not live), DEACTIVATED (in the store, not live),
    /// ACTIVATED (live: kernel enabled=1 and transition=0; user: in at least one matching process — in every
    /// one unless `Partial`), ACCEPTED (activated and declared accepted).
    public var status: PatchStatus
    /// Qualifying conditions, sorted.
    public var conditions: [PatchCondition]
    /// Store digest, when in the store.
    public var storeDigest: String?
    /// Store verification problems.
    public var storeProblems: [String]
    /// Kernel patches: one per livepatch module.
    public var modules: [ModuleStatus]
    /// User patches: one per process that maps a target or carries the marker, sorted by pid.
    public var processes: [ProcessPatchStatus]
    /// Further remarks ("no running process maps /usr/sbin/demo").
    public var notes: [String]

    /// Memberwise initializer.
    public init(name: String, uuid: String?, kind: PatchKind, target: String?, declared: DesiredPatchState?,
                location: SourceLocation?, status: PatchStatus, conditions: [PatchCondition],
                storeDigest: String?, storeProblems: [String] = [], modules: [ModuleStatus] = [],
                processes: [ProcessPatchStatus] = [], notes: [String] = []) {
        self.name = name
        self.uuid = uuid
        self.kind = kind
        self.target = target
        self.declared = declared
        self.location = location
        self.status = status
        self.conditions = conditions
        self.storeDigest = storeDigest
        self.storeProblems = storeProblems
        self.modules = modules
        self.processes = processes
        self.notes = notes
    }

    enum CodingKeys: String, CodingKey {
        case name, uuid, kind, target, declared, location, status, conditions, storeDigest = "store_digest",
             storeProblems = "store_problems", modules, processes, notes
    }

    /// `ACTIVATED (Partial, Drifted)` or `DEACTIVATED`.
    public var statusText: String {
        conditions.isEmpty ? status.rawValue
            : "\(status.rawValue) (\(conditions.map(\.rawValue).joined(separator: ", ")))"
    }
}

/// A kernel livepatch module of a patch.
public struct ModuleStatus: Codable, Sendable, Hashable {
    /// Module name.
    public var module: String
    /// Whether `/sys/kernel/livepatch/<module>` exists.
    public var loaded: Bool
    /// `enabled`, when loaded.
    public var enabled: Bool?
    /// `transition`, when loaded.
    public var transition: Bool?

    /// Memberwise initializer.
    public init(module: String, loaded: Bool, enabled: Bool?, transition: Bool?) {
        self.module = module
        self.loaded = loaded
        self.enabled = enabled
        self.transition = transition
    }
}

/// One process relevant to a user patch.
public struct ProcessPatchStatus: Codable, Sendable, Hashable {
    /// Process id.
    public var pid: Int32
    /// Process comm.
    public var comm: String
    /// Start time (clock ticks since boot).
    public var startTime: UInt64
    /// The target it maps, if any (a process can carry a marker without mapping a target by build-id).
    public var targetPath: String?
    /// Whether the patch is live in it.
    public var live: Bool
    /// The marker state, when a marker is present.
    public var markerState: String?

    /// Memberwise initializer.
    public init(pid: Int32, comm: String, startTime: UInt64, targetPath: String?, live: Bool, markerState: String?) {
        self.pid = pid
        self.comm = comm
        self.startTime = startTime
        self.targetPath = targetPath
        self.live = live
        self.markerState = markerState
    }

    enum CodingKeys: String, CodingKey {
        case pid, comm, startTime = "start_time", targetPath = "target_path", live, markerState = "marker_state"
    }
}

extension StatusReport {
    /// Builds the report. Pure; runs the planner to mark patches with pending actions `Drifted`.
    ///
    /// - Parameters:
    ///   - desired: the merged manifests (may be empty: then only the store and live facts are shown).
    ///   - live: the live state.
    public static func build(desired: DesiredState, live: LiveState) -> StatusReport {
        let desired = desired.canonicalized()
        let index = LiveIndex(live)
        let plan = Planner.plan(desired: desired, live: live)
        let drifted = Set(plan.actions.map(\.uuid))
        let partialAllowed = Set(desired.patches.filter(\.allowPartial).compactMap(\.uuid))
        var entries: [PatchStatusEntry] = []
        var seenUUIDs: Set<String> = []
        var seenModules: Set<String> = []

        // Every bundle we know: declared ones (manifest bundle), then store entries not declared.
        var known: [(meta: BundleMetadata, declared: DesiredPatch?, target: String)] = []
        for patch in desired.patches {
            if let meta = patch.bundle?.metadata {
                known.append((meta, patch, patch.target.description))
            } else {
                // Absent without a bundle: report the store entries of that name, or a NOT-APPLIED line.
                let stored = index.live.store.filter { $0.bundle.metadata.name == patch.name }
                if stored.isEmpty {
                    entries.append(PatchStatusEntry(name: patch.name, uuid: nil, kind: .user, target: patch.target.description,
                                                    declared: patch.state, location: patch.location, status: .notApplied,
                                                    conditions: [], storeDigest: nil,
                                                    notes: ["bundle not available; nothing of that name in the store"]))
                }
                for entry in stored { known.append((entry.bundle.metadata, patch, patch.target.description)) }
            }
        }
        let declaredUUIDs = Set(known.map(\.meta.uuid))
        for entry in index.live.store where !declaredUUIDs.contains(entry.uuid) {
            let t = entry.bundle.metadata.target
            known.append((entry.bundle.metadata, nil, "\(t.package) \(t.version)"))
        }

        for (meta, declared, target) in known where seenUUIDs.insert(meta.uuid).inserted {
            let stored = index.storeByUUID[meta.uuid]
            var conditions: Set<PatchCondition> = []
            var notes: [String] = []
            var modules: [ModuleStatus] = []
            var processes: [ProcessPatchStatus] = []
            var isLive = false
            switch meta.kind {
            case .user:
                let facts = index.userFacts(meta)
                let carriers = index.carriers(of: meta.uuid)
                var byPid: [Int32: ProcessPatchStatus] = [:]
                for f in facts {
                    if f.matching.isEmpty { notes.append("no running process maps \(f.entity.targetPath)") }
                    if !f.live.isEmpty { isLive = true }
                    if !f.live.isEmpty && f.live.count < f.matching.count { conditions.insert(.partial) }
                    for p in f.matching where byPid[p.pid] == nil {
                        let marker = p.patches.first { $0.uuid == meta.uuid }
                        byPid[p.pid] = ProcessPatchStatus(pid: p.pid, comm: p.comm, startTime: p.startTime,
                                                          targetPath: f.entity.targetPath,
                                                          live: marker.map(LiveIndex.isLive) ?? false,
                                                          markerState: marker.map { $0.state?.rawValue ?? "present" })
                    }
                }
                for p in carriers where byPid[p.pid] == nil {
                    let marker = p.patches.first { $0.uuid == meta.uuid }!
                    if LiveIndex.isLive(marker) { isLive = true }
                    byPid[p.pid] = ProcessPatchStatus(pid: p.pid, comm: p.comm, startTime: p.startTime, targetPath: nil,
                                                      live: LiveIndex.isLive(marker), markerState: marker.state?.rawValue ?? "present")
                }
                processes = byPid.values.sorted { $0.pid < $1.pid }
                if stored == nil && !carriers.isEmpty { conditions.insert(.foreign) }
            case .kernel:
                var allLive = !meta.entities.isEmpty
                for entity in meta.entities.sorted(by: { $0.targetPath < $1.targetPath }) {
                    guard let module = entity.moduleName else { allLive = false; continue }
                    seenModules.insert(module)
                    let lp = index.kernelByName[module]
                    modules.append(ModuleStatus(module: module, loaded: lp != nil, enabled: lp?.enabled, transition: lp?.transition))
                    if lp?.transition == true {
                        conditions.insert(.transitioning)
                        if !index.live.kernel.blockers.isEmpty { conditions.insert(.stalled) }
                    }
                    if !(lp?.enabled == true && lp?.transition == false) { allLive = false }
                    if lp != nil && stored == nil { conditions.insert(.foreign) }
                }
                isLive = allLive
            }
            let status: PatchStatus
            if isLive {
                status = declared?.state == .accepted ? .accepted : .activated
            } else {
                status = stored == nil ? .notApplied : .deactivated
            }
            if drifted.contains(meta.uuid) { conditions.insert(.drifted) }
            if conditions.contains(.partial), partialAllowed.contains(meta.uuid) { notes.append("partial activation allowed (allowPartial)") }
            if declared == nil, stored != nil { notes.append("declared by no manifest") }
            entries.append(PatchStatusEntry(
                name: meta.name, uuid: meta.uuid, kind: meta.kind, target: target, declared: declared?.state,
                location: declared?.location, status: status, conditions: conditions.sorted(),
                storeDigest: stored?.bundle.digest, storeProblems: stored?.problems ?? [], modules: modules,
                processes: processes, notes: notes.sorted()))
        }

        // Foreign kernel livepatches.
        for lp in index.live.kernel.patches where !seenModules.contains(lp.name) {
            var conditions: Set<PatchCondition> = [.foreign]
            if lp.transition { conditions.insert(.transitioning) }
            if lp.transition && !index.live.kernel.blockers.isEmpty { conditions.insert(.stalled) }
            entries.append(PatchStatusEntry(
                name: lp.name, uuid: nil, kind: .kernel, target: nil, declared: nil, location: nil,
                status: lp.enabled && !lp.transition ? .activated : .notApplied, conditions: conditions.sorted(),
                storeDigest: nil,
                modules: [ModuleStatus(module: lp.name, loaded: true, enabled: lp.enabled, transition: lp.transition)],
                notes: ["not from a bundle in the store"]))
        }
        // Foreign user markers.
        var foreign: [String: [ProcessLiveState]] = [:]
        for p in index.live.processes {
            for uuid in Set(p.patches.map(\.uuid)) where !seenUUIDs.contains(uuid) { foreign[uuid, default: []].append(p) }
        }
        for uuid in foreign.keys.sorted() {
            let carriers = foreign[uuid]!
            let processes = carriers.map { p -> ProcessPatchStatus in
                let marker = p.patches.first { $0.uuid == uuid }!
                return ProcessPatchStatus(pid: p.pid, comm: p.comm, startTime: p.startTime, targetPath: nil,
                                          live: LiveIndex.isLive(marker), markerState: marker.state?.rawValue ?? "present")
            }
            let isLive = processes.contains(where: \.live)
            entries.append(PatchStatusEntry(
                name: uuid, uuid: uuid, kind: .user, target: nil, declared: nil, location: nil,
                status: isLive ? .activated : .notApplied, conditions: [.foreign], storeDigest: nil,
                processes: processes, notes: ["patch marker not from a bundle in the store"]))
        }
        entries.sort { ($0.name, $0.uuid ?? "") < ($1.name, $1.uuid ?? "") }
        return StatusReport(hostname: index.live.hostname, kernelRelease: index.live.kernelRelease,
                            bootID: index.live.bootID, liveFingerprint: plan.liveFingerprint, patches: entries)
    }
}
