/// An ordered list of actions that brings the live state to the desired state, with the drift and errors
/// the planner found. Produced by the pure `Planner`; executed by the executor.
///
/// JSON (`suture plan --json`) carries `format_version` 1.
public struct Plan: Codable, Sendable, Hashable {
    /// JSON format version (1).
    public var formatVersion: Int
    /// Actions in execution order.
    public var actions: [PlanAction]
    /// Differences that need no action or cannot be fixed by one (foreign patches, target not running, …).
    public var drift: [Drift]
    /// Errors that make the plan unusable (target package at another version, …); `apply` refuses a plan
    /// with errors.
    public var errors: [Diagnostic]
    /// Fingerprint of the live state the plan was made from (see `LiveStateFingerprint`).
    public var liveFingerprint: String
    /// Remarks that are neither actions nor drift, sorted (e.g. "livepatch_old is disabled implicitly by
    /// the atomic replace of livepatch_new").
    public var notes: [String]

    /// Memberwise initializer.
    public init(formatVersion: Int = 1, actions: [PlanAction] = [], drift: [Drift] = [],
                errors: [Diagnostic] = [], liveFingerprint: String = "", notes: [String] = []) {
        self.formatVersion = formatVersion
        self.actions = actions
        self.drift = drift
        self.errors = errors
        self.liveFingerprint = liveFingerprint
        self.notes = notes
    }

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", actions, drift, errors, liveFingerprint = "live_fingerprint", notes
    }

    /// Decodes a plan; `notes` may be missing (plans written before it existed).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        formatVersion = try c.decode(Int.self, forKey: .formatVersion)
        actions = try c.decode([PlanAction].self, forKey: .actions)
        drift = try c.decode([Drift].self, forKey: .drift)
        errors = try c.decode([Diagnostic].self, forKey: .errors)
        liveFingerprint = try c.decode(String.self, forKey: .liveFingerprint)
        notes = try c.decodeIfPresent([String].self, forKey: .notes) ?? []
    }

    /// True when there is nothing to do.
    public var isEmpty: Bool { actions.isEmpty }
}

/// The kind of a plan action.
public enum ActionKind: String, Codable, Sendable, Hashable, CaseIterable {
    /// Copy a verified bundle into the store.
    case install
    /// Make a patch live (kernel: load + enable; user: in one process).
    case activate
    /// Make a patch not live (kernel: disable + unload; user: in one process).
    case deactivate
    /// Delete a bundle from the store.
    case remove
}

/// One step of a plan.
public struct PlanAction: Codable, Sendable, Hashable {
    /// What to do.
    public var kind: ActionKind
    /// Patch name.
    public var patch: String
    /// Patch uuid.
    public var uuid: String
    /// `user` or `kernel`.
    public var patchKind: PatchKind
    /// User patches: the process (one action per process); `nil` for install/remove and kernel actions.
    public var pid: Int32?
    /// User patches: the process comm, for display.
    public var comm: String?
    /// User patches: the process start time (clock ticks), so a recycled pid is not patched by mistake.
    public var startTime: UInt64?
    /// User patches: the target ELF path in that process. Kernel activate/deactivate: the entity's
    /// target (`vmlinux` or the patched module's name).
    public var targetPath: String?
    /// Kernel activate/deactivate: the livepatch module name (`/sys/kernel/livepatch/<module>`).
    public var module: String?
    /// Why, in words: "declared activated; live in 3 of 5 processes of /usr/sbin/demo".
    public var reason: String
    /// The manifest entry that caused it, when one did (prune actions have none).
    public var location: SourceLocation?

    /// Memberwise initializer.
    public init(kind: ActionKind, patch: String, uuid: String, patchKind: PatchKind, pid: Int32? = nil,
                comm: String? = nil, startTime: UInt64? = nil, targetPath: String? = nil,
                module: String? = nil, reason: String, location: SourceLocation? = nil) {
        self.kind = kind
        self.patch = patch
        self.uuid = uuid
        self.patchKind = patchKind
        self.pid = pid
        self.comm = comm
        self.startTime = startTime
        self.targetPath = targetPath
        self.module = module
        self.reason = reason
        self.location = location
    }

    enum CodingKeys: String, CodingKey {
        case kind, patch, uuid, patchKind = "patch_kind", pid, comm, startTime = "start_time",
             targetPath = "target_path", module, reason, location
    }
}

/// A difference between desired and live state reported by the planner.
public struct Drift: Codable, Sendable, Hashable {
    /// Kinds of drift.
    public enum Kind: String, Codable, Sendable, Hashable, CaseIterable {
        /// A live patch (kernel livepatch or user marker) that is not ours.
        case foreign
        /// A user patch live in some matching processes, not all.
        case partial
        /// A kernel transition in progress or stalled.
        case stalledTransition = "stalled_transition"
        /// The target package is not installed, or at another version.
        case targetPackageMismatch = "target_package_mismatch"
        /// No process maps the target: nothing to do now.
        case targetNotRunning = "target_not_running"
        /// A patch we installed that no manifest declares (`prune: false`).
        case undeclared
        /// A forced transition happened: reboot required.
        case forced
        /// A store entry failed re-verification.
        case corruptStore = "corrupt_store"
    }

    /// The kind.
    public var kind: Kind
    /// The patch name (or the live object name for foreign patches).
    public var patch: String
    /// Explanation.
    public var message: String
    /// The manifest entry concerned, when any.
    public var location: SourceLocation?

    /// Memberwise initializer.
    public init(kind: Kind, patch: String, message: String, location: SourceLocation? = nil) {
        self.kind = kind
        self.patch = patch
        self.message = message
        self.location = location
    }
}
