import Foundation

/// The read side of a run over one ``SutureHost``: manifests (selected for the host's name and labels),
/// store and live state, and the plan made from them. `suture plan`, `status`, `snapshot`, the patch verbs,
/// the tests and the plan benchmark all read the host through this.
public struct PlanSession: Sendable {
    /// Everything one planning run reads.
    public struct Snapshot: Sendable {
        /// The merged manifests for this host.
        public var desired: DesiredState
        /// The live state (store included).
        public var live: LiveState
        /// Warnings from the configuration and the manifests.
        public var warnings: [Diagnostic]
    }

    /// The host.
    public let host: SutureHost

    /// A session over `host`.
    public init(host: SutureHost) { self.host = host }

    /// The manifest paths: `arguments` when given (relative to the working directory), else the
    /// configured ones under the root.
    public func manifestPaths(_ arguments: [String]) -> [String] {
        arguments.isEmpty ? host.config.manifestPaths(root: host.root) : arguments
    }

    /// Loads the manifests at `paths` for this host (``SutureHost/hostname()``, the configuration's labels).
    /// - Returns: the desired state and the warnings (errors excluded).
    /// - Throws: `DiagnosticError` with every manifest error.
    public func loadDesired(paths: [String]) throws(DiagnosticError) -> (DesiredState, [Diagnostic]) {
        let loader = ManifestLoader(
            config: host.config, hostname: host.hostname(),
            readBundle: { url throws(DiagnosticError) in try BundleReader.read(directory: url) })
        let (desired, warnings) = try loader.desiredState(paths: paths)
        return (desired, warnings.filter { $0.severity != .error })
    }

    /// Reads the live state relevant to `desired` (and to `store`, listed from the host's store when nil),
    /// region header states included.
    /// - Throws: `DiagnosticError` when the labels file is malformed.
    public func readLive(for desired: DesiredState, store: [InstalledBundle]? = nil) throws(DiagnosticError)
        -> LiveState
    {
        let bundles = store ?? host.store.list()
        do {
            return try host.liveReader.read(interest: LiveInterest(desired: desired, store: bundles), store: bundles)
        } catch {
            throw DiagnosticError(Diagnostic(.error, error.description))
        }
    }

    /// Manifests, store and live state, in that order (the live state depends on what the manifests and
    /// the store name).
    ///
    /// - Parameters:
    ///   - arguments: manifest paths from the command line (empty: the configured ones).
    ///   - manifestsOptional: when true and no path was given, missing configured manifest directories
    ///     give an empty desired state instead of an error (`status` on a host without manifests).
    /// - Throws: `DiagnosticError`.
    public func snapshot(arguments: [String], manifestsOptional: Bool = false) throws(DiagnosticError) -> Snapshot {
        var paths = manifestPaths(arguments)
        if manifestsOptional && arguments.isEmpty {
            paths = paths.filter { FileManager.default.fileExists(atPath: $0) }
        }
        var desired = DesiredState(patches: [])
        var warnings = host.configWarnings
        if !paths.isEmpty || !manifestsOptional {
            let (loaded, manifestWarnings) = try loadDesired(paths: paths)
            desired = loaded
            warnings += manifestWarnings
        }
        let live = try readLive(for: desired)
        return Snapshot(desired: desired, live: live, warnings: warnings)
    }

    /// The plan of `snapshot`.
    public func plan(_ snapshot: Snapshot) -> Plan {
        Planner.plan(desired: snapshot.desired, live: snapshot.live)
    }

    /// What `suture plan --out` writes: the plan of a fresh snapshot of the manifests at `arguments`, with
    /// the desired and live state it was made from.
    /// - Throws: `DiagnosticError` from reading the manifests or the live state.
    public func savedPlan(arguments: [String]) throws(DiagnosticError) -> SavedPlan {
        let snapshot = try snapshot(arguments: arguments)
        return SavedPlan(plan: plan(snapshot), desired: snapshot.desired, live: snapshot.live)
    }
}
