/// Sorted, indexed views of a `LiveState` shared by the planner and the status builder. Pure: no I/O.
///
/// Canonicalizing first makes every later iteration order independent of the order the readers
/// produced, which is what makes plans byte-identical for the same facts.
struct LiveIndex {
    /// The canonicalized live state.
    let live: LiveState
    /// Store entries by uuid (the first one, by digest, when a broken reader listed a uuid twice).
    let storeByUUID: [String: InstalledBundle]
    /// `/sys/kernel/livepatch/<name>` entries by name.
    let kernelByName: [String: KernelLivePatch]
    /// Livepatch module names claimed by kernel bundles in the store → the bundle uuid.
    let storeModules: [String: String]

    init(_ live: LiveState) {
        let live = live.canonicalized()
        self.live = live
        var store: [String: InstalledBundle] = [:]
        var modules: [String: String] = [:]
        for entry in live.store where store[entry.uuid] == nil {
            store[entry.uuid] = entry
            if entry.bundle.metadata.kind == .kernel {
                for entity in entry.bundle.metadata.entities {
                    if let module = entity.moduleName, modules[module] == nil { modules[module] = entry.uuid }
                }
            }
        }
        storeByUUID = store
        storeModules = modules
        var kernel: [String: KernelLivePatch] = [:]
        for patch in live.kernel.patches where kernel[patch.name] == nil { kernel[patch.name] = patch }
        kernelByName = kernel
    }

    /// What the live state says about one user entity of a bundle.
    struct UserEntityFacts {
        /// The entity.
        let entity: BundleEntity
        /// Processes that map the entity's target (by build-id; by path when the bundle has no build-id).
        let matching: [ProcessLiveState]
        /// The subset of `matching` where the patch is live (a marker of the uuid, not merely `prepared`).
        let live: [ProcessLiveState]
        /// Processes that map the target path with another build-id (another version of the file).
        let otherBuild: [ProcessLiveState]
    }

    /// Whether `object` is the target of `entity`: equal build-ids (case-insensitive), or, when the bundle
    /// records no build-id, the same path.
    static func matches(_ object: MappedObject, _ entity: BundleEntity) -> Bool {
        if entity.targetBuildID.isEmpty { return object.path == entity.targetPath }
        if object.buildID.isEmpty { return false }
        if object.buildID == entity.targetBuildID { return true }
        // ASCII case-insensitive without allocating: this runs for every process × object × entity, and
        // `lowercased()` here was a top entry of the plan path's profile.
        @inline(__always) func lower(_ c: UInt8) -> UInt8 { c >= 0x41 && c <= 0x5A ? c | 0x20 : c }
        return object.buildID.utf8.elementsEqual(entity.targetBuildID.utf8) { lower($0) == lower($1) }
    }

    /// Whether a marker counts as "live" (``PatchRegionMarker/State/isLive``; an unread state counts as live).
    static func isLive(_ marker: UserPatchMarker) -> Bool { marker.state?.isLive ?? true }

    /// Facts for every user entity of `metadata`, sorted by target path.
    func userFacts(_ metadata: BundleMetadata) -> [UserEntityFacts] {
        metadata.entities.sorted { ($0.targetPath, $0.targetBuildID) < ($1.targetPath, $1.targetBuildID) }.map { entity in
            var matching: [ProcessLiveState] = []
            var live: [ProcessLiveState] = []
            var other: [ProcessLiveState] = []
            for process in self.live.processes {
                if process.objects.contains(where: { Self.matches($0, entity) }) {
                    matching.append(process)
                    if process.patches.contains(where: { $0.uuid == metadata.uuid && Self.isLive($0) }) {
                        live.append(process)
                    }
                } else if process.objects.contains(where: { $0.path == entity.targetPath }) {
                    other.append(process)
                }
            }
            return UserEntityFacts(entity: entity, matching: matching, live: live, otherBuild: other)
        }
    }

    /// Processes carrying any marker (any state) of `uuid`, sorted by pid.
    func carriers(of uuid: String) -> [ProcessLiveState] {
        live.processes.filter { $0.patches.contains { $0.uuid == uuid } }
    }

    /// The first entity of `metadata` whose target `process` maps, if any.
    static func mappedEntity(_ metadata: BundleMetadata, in process: ProcessLiveState) -> BundleEntity? {
        metadata.entities.sorted { $0.targetPath < $1.targetPath }
            .first { entity in process.objects.contains { matches($0, entity) } }
    }
}

extension LiveState {
    /// A copy with every list sorted (store by uuid then digest, processes by pid then start time, their
    /// objects and markers, kernel patches by name, package versions), so that iteration order does not
    /// depend on the readers.
    func canonicalized() -> LiveState {
        var copy = self
        copy.store.sort { ($0.uuid, $0.bundle.digest, $0.bundle.path) < ($1.uuid, $1.bundle.digest, $1.bundle.path) }
        for i in copy.store.indices { copy.store[i].problems.sort() }
        copy.processes.sort { ($0.pid, $0.startTime, $0.comm) < ($1.pid, $1.startTime, $1.comm) }
        for i in copy.processes.indices {
            copy.processes[i].objects.sort { ($0.path, $0.buildID, $0.inode) < ($1.path, $1.buildID, $1.inode) }
            copy.processes[i].patches.sort {
                ($0.uuid, $0.address, $0.state?.rawValue ?? "") < ($1.uuid, $1.address, $1.state?.rawValue ?? "")
            }
        }
        copy.kernel.patches.sort { $0.name < $1.name }
        copy.kernel.blockers.sort { ($0.pid, $0.tid) < ($1.pid, $1.tid) }
        for key in copy.packages.keys { copy.packages[key]?.sort() }
        copy.unreadable.sort { ($0.path, $0.reason) < ($1.path, $1.reason) }
        return copy
    }
}

extension DesiredState {
    /// A copy with patches sorted by name then location.
    func canonicalized() -> DesiredState {
        var copy = self
        copy.patches.sort { ($0.name, $0.location) < ($1.name, $1.location) }
        copy.patchSets.sort()
        return copy
    }
}

/// Shortens a hex digest for messages: the first 12 characters.
func shortDigest(_ digest: String) -> String { String(digest.prefix(12)) }

/// "1 process" / "3 processes".
func plural(_ count: Int, _ singular: String, _ pluralForm: String? = nil) -> String {
    "\(count) \(count == 1 ? singular : (pluralForm ?? singular + "s"))"
}

/// "pids 12, 34 and 56" (at most `limit` shown, then "and N more").
func pidList(_ processes: [ProcessLiveState], limit: Int = 8) -> String {
    let shown = processes.prefix(limit).map { "\($0.pid) (\($0.comm))" }
    var text = (processes.count == 1 ? "pid " : "pids ") + shown.joined(separator: ", ")
    if processes.count > limit { text += " and \(processes.count - limit) more" }
    return text
}
