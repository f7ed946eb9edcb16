/// What a manifest's patch applies to (`spec.patches[].target`): exactly one of
/// `package`+`version`, `path`, or `kernel`.
public enum PatchTargetSelector: Codable, Sendable, Hashable, CustomStringConvertible {
    /// An installed package at an exact version (dpkg or rpm version string).
    case package(name: String, version: String)
    /// An ELF file that no package manager installed, by absolute path.
    case path(String)
    /// A kernel release (`uname -r`, e.g. `6.1.0-57-amd64`).
    case kernel(release: String)

    /// `libssl3 3.0.15-1~deb12u1`, `/opt/app/bin/server`, `kernel 6.1.0-57-amd64`.
    public var description: String {
        switch self {
        case let .package(name, version): return "\(name) \(version)"
        case let .path(path): return path
        case let .kernel(release): return "kernel \(release)"
        }
    }
}

/// Which hosts a PatchSet applies to (`spec.hosts`). Empty selectors match every host.
public struct HostSelector: Codable, Sendable, Hashable {
    /// Shell-style globs (`fnmatch`) on the hostname; any match selects the host. Empty: any hostname.
    public var hostnames: [String]
    /// Labels that must all be present with these values (`/etc/suture/labels`, `key=value` lines).
    public var labels: [String: String]

    /// Memberwise initializer.
    public init(hostnames: [String] = [], labels: [String: String] = [:]) {
        self.hostnames = hostnames
        self.labels = labels
    }
}

/// What Suture does when a kernel transition does not finish by the hard deadline.
public enum StallPolicy: String, Codable, Sendable, Hashable, CaseIterable {
    /// Reverse the transition (write the opposite `enabled` value) and report. Default.
    case revert
    /// Keep waiting (report and exit 6, leaving it in transition).
    case wait
    /// Fail without reversing (exit 6).
    case fail
}

/// One patch declared by a manifest, with its bundle already loaded and verified.
public struct DesiredPatch: Codable, Sendable, Hashable {
    /// `spec.patches[].name`; matches the bundle's `name`.
    public var name: String
    /// The desired state.
    public var state: DesiredPatchState
    /// What it applies to.
    public var target: PatchTargetSelector
    /// The bundle (metadata, absolute path, digest); `nil` only when `state` is `absent` and the
    /// bundle file is gone (absent patches may name a bundle that no longer exists).
    public var bundle: ResolvedBundle?
    /// The `sha256` pin the manifest gave, if any (already checked against `bundle.digest`).
    public var pin: String?
    /// Accept success in only some matching processes (`allowPartial`), reported as `Partial`.
    public var allowPartial: Bool
    /// Kernel patches: what to do when the transition stalls.
    public var onStall: StallPolicy
    /// The PatchSet (`metadata.name`) that declares it.
    public var patchSet: String
    /// Where the patch entry starts (the `- name:` item), for plan errors.
    public var location: SourceLocation
    /// Where its `state:` value is, for conflict errors.
    public var stateLocation: SourceLocation?

    /// Memberwise initializer.
    public init(name: String, state: DesiredPatchState, target: PatchTargetSelector, bundle: ResolvedBundle?,
                pin: String? = nil, allowPartial: Bool = false, onStall: StallPolicy = .revert,
                patchSet: String, location: SourceLocation, stateLocation: SourceLocation? = nil) {
        self.name = name
        self.state = state
        self.target = target
        self.bundle = bundle
        self.pin = pin
        self.allowPartial = allowPartial
        self.onStall = onStall
        self.patchSet = patchSet
        self.location = location
        self.stateLocation = stateLocation
    }

    /// The bundle uuid, when the bundle is known.
    public var uuid: String? { bundle?.metadata.uuid }
}

/// The merged manifests that select this host: the desired state the planner works toward.
public struct DesiredState: Codable, Sendable, Hashable {
    /// Declared patches, sorted by name then location; a name appears at most once.
    public var patches: [DesiredPatch]
    /// True when any selected PatchSet has `spec.prune: true`: patches in the store that no manifest
    /// declares are deactivated and removed instead of only reported.
    public var prune: Bool
    /// Names of the PatchSets that were loaded and select this host, sorted.
    public var patchSets: [String]
    /// sha256 over the manifest files' bytes (sorted by path), recorded in generations.
    public var manifestDigest: String

    /// Memberwise initializer.
    public init(patches: [DesiredPatch], prune: Bool = false, patchSets: [String] = [], manifestDigest: String = "") {
        self.patches = patches
        self.prune = prune
        self.patchSets = patchSets
        self.manifestDigest = manifestDigest
    }
}
