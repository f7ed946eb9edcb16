/// The keys Manifest v1 accepts, per mapping. The loader checks keys against these lists and the schema
/// test checks that `schema/manifest.schema.json` declares exactly the same properties, so the two
/// cannot drift apart.
public enum ManifestKeys {
    /// The supported `apiVersion`.
    public static let apiVersion = "suture.dev/v1"
    /// The supported `kind`.
    public static let kind = "PatchSet"

    /// Top level of a document.
    public static let document = ["apiVersion", "kind", "metadata", "spec"]
    /// `metadata`.
    public static let metadata = ["name"]
    /// `spec`.
    public static let spec = ["hosts", "prune", "patches"]
    /// `spec.hosts`.
    public static let hosts = ["hostnames", "labels"]
    /// One item of `spec.patches`.
    public static let patch = ["name", "bundle", "sha256", "state", "target", "allowPartial", "onStall"]
    /// `spec.patches[].target`.
    public static let target = ["package", "version", "path", "kernel"]

    /// Every mapping, keyed by its name in the schema's `$defs` (`PatchSet`, `Metadata`, …).
    public static let bySchemaDefinition: [String: [String]] = [
        "PatchSet": document, "Metadata": metadata, "Spec": spec, "Hosts": hosts, "Patch": patch,
        "Target": target,
    ]
}

/// One PatchSet document as written, decoded and checked, before bundles are resolved and before
/// merging. Positions point into the manifest file.
public struct PatchSetManifest: Sendable, Hashable {
    /// `metadata.name`.
    public var name: String
    /// `spec.hosts`; empty selects every host.
    public var hosts: HostSelector
    /// `spec.prune` (default `false`).
    public var prune: Bool
    /// `spec.patches`, in file order (entries with errors are left out).
    public var patches: [PatchEntry]
    /// Where the document starts.
    public var location: SourceLocation
    /// Where `metadata.name`'s value is.
    public var nameLocation: SourceLocation

    /// Memberwise initializer.
    public init(name: String, hosts: HostSelector, prune: Bool, patches: [PatchEntry], location: SourceLocation,
                nameLocation: SourceLocation) {
        self.name = name
        self.hosts = hosts
        self.prune = prune
        self.patches = patches
        self.location = location
        self.nameLocation = nameLocation
    }
}

/// One `spec.patches[]` item as written.
public struct PatchEntry: Sendable, Hashable {
    /// `name`.
    public var name: String
    /// `bundle` exactly as written.
    public var bundle: String
    /// `bundle` made absolute: relative paths are resolved against the manifest file's directory.
    public var bundlePath: String
    /// `sha256`, lower-cased, when given.
    public var pin: String?
    /// `state`.
    public var state: DesiredPatchState
    /// `target`.
    public var target: PatchTargetSelector
    /// `allowPartial`, when given (the config supplies the default).
    public var allowPartial: Bool?
    /// `onStall`, when given (the config supplies the default).
    public var onStall: StallPolicy?
    /// Where the item starts (its first key).
    public var location: SourceLocation
    /// Where the `bundle` value is.
    public var bundleLocation: SourceLocation
    /// Where the `sha256` value is, when given.
    public var pinLocation: SourceLocation?
    /// Where the `state` value is.
    public var stateLocation: SourceLocation
    /// Where the `target` value is.
    public var targetLocation: SourceLocation

    /// Memberwise initializer.
    public init(name: String, bundle: String, bundlePath: String, pin: String?, state: DesiredPatchState,
                target: PatchTargetSelector, allowPartial: Bool?, onStall: StallPolicy?, location: SourceLocation,
                bundleLocation: SourceLocation, pinLocation: SourceLocation?, stateLocation: SourceLocation,
                targetLocation: SourceLocation) {
        self.name = name
        self.bundle = bundle
        self.bundlePath = bundlePath
        self.pin = pin
        self.state = state
        self.target = target
        self.allowPartial = allowPartial
        self.onStall = onStall
        self.location = location
        self.bundleLocation = bundleLocation
        self.pinLocation = pinLocation
        self.stateLocation = stateLocation
        self.targetLocation = targetLocation
    }
}
