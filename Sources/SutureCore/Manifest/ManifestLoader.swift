import Crypto
import Foundation
import Yams

/// Loads Manifest v1 files into a `DesiredState`: finds the files, parses them with positions, checks
/// them, resolves and verifies their bundles, selects the PatchSets for this host and merges them.
///
/// Every problem of a run is collected (never just the first) and reported as a `Diagnostic`
/// positioned `file:line:column`; see `docs/manifest.md` for the format and the rules.
public struct ManifestLoader: Sendable {
    /// Reads and verifies a bundle directory (production: `BundleReader.read(directory:)`).
    public typealias BundleReading = @Sendable (URL) throws(DiagnosticError) -> ResolvedBundle

    /// Which hosts the loaded PatchSets are selected for.
    public enum HostContext: Sendable, Hashable {
        /// One host: PatchSets whose `spec.hosts` do not select it are validated, then skipped.
        case host(name: String, labels: [String: String])
        /// Lint mode (`suture validate` without a host): every PatchSet counts as selected, and
        /// conflicts between two PatchSets are reported only when their host selectors may overlap.
        case allHosts
    }

    /// The host the manifests are loaded for.
    public var hostContext: HostContext
    /// A patch without a `sha256` pin is an error instead of a warning.
    public var requirePins: Bool
    /// `onStall` for patches that do not set it.
    public var defaultOnStall: StallPolicy
    /// `allowPartial` for patches that do not set it.
    public var defaultAllowPartial: Bool
    /// Size and alias bounds.
    public var limits: ManifestLimits
    /// The bundle reader.
    public var readBundle: BundleReading

    /// Creates a loader whose defaults come from the host configuration.
    ///
    /// - Parameters:
    ///   - config: `requirePins`, `onStall`, `allowPartial` and the host labels come from here.
    ///   - hostname: the host's name; `nil` means `gethostname(2)`. Ignored when `allHosts` is true.
    ///   - allHosts: lint mode (see `HostContext.allHosts`).
    ///   - limits: size and alias bounds.
    ///   - readBundle: how bundles are read and verified.
    public init(config: SutureConfig = SutureConfig(), hostname: String? = nil, allHosts: Bool = false,
                limits: ManifestLimits = ManifestLimits(), readBundle: @escaping BundleReading) {
        self.hostContext = allHosts ? .allHosts
            : .host(name: hostname ?? ManifestLoader.currentHostname(), labels: config.labels)
        self.requirePins = config.requirePins
        self.defaultOnStall = config.onStall
        self.defaultAllowPartial = config.allowPartial
        self.limits = limits
        self.readBundle = readBundle
    }

    /// This machine's hostname (`gethostname(2)`).
    public static func currentHostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Loads `paths` (files, or directories searched recursively for `*.yaml`/`*.yml`, sorted by path;
    /// hidden entries and bundle directories — those holding a `patch.yaml` — are skipped) in the order
    /// given.
    ///
    /// PatchSets that do not select the host are fully checked for errors but their bundles are only
    /// read in lint mode (a host need not hold other hosts' bundles).
    ///
    /// - Returns: everything found; check `hasErrors` before using `desiredState`.
    /// - Complexity: linear in the total size of the files, plus one bundle read per distinct bundle.
    public func load(paths: [String]) -> ManifestLoadResult {
        var run = LoadRun(loader: self)
        run.load(paths)
        return run.finish()
    }

    /// Loads `paths` and returns the desired state for this host.
    ///
    /// - Returns: the desired state and the warnings.
    /// - Throws: `DiagnosticError` with every diagnostic (errors and warnings, sorted) when any error
    ///   was found.
    public func desiredState(paths: [String]) throws(DiagnosticError) -> (DesiredState, warnings: [Diagnostic]) {
        let result = load(paths: paths)
        if result.hasErrors { throw DiagnosticError(result.diagnostics) }
        return (result.desiredState, result.diagnostics)
    }
}

/// What one `ManifestLoader.load(paths:)` run found.
public struct ManifestLoadResult: Sendable {
    /// The manifest files read, in load order.
    public var files: [String]
    /// Every PatchSet that decoded without errors, selected or not, in load order.
    public var patchSets: [PatchSetManifest]
    /// Patch declarations of `patchSets`, a declaration that repeats an earlier one identically (same
    /// name, bundle, state, target, pin and policies, in PatchSets that may select one host) counted once.
    public var patchCount: Int
    /// How many declarations were identical repeats of an earlier one (each also has a warning naming
    /// both places).
    public var identicalRepeats: Int
    /// The merged desired state of the selected PatchSets (incomplete when `hasErrors`).
    public var desiredState: DesiredState
    /// Errors and warnings, sorted by location (diagnostics without a location first).
    public var diagnostics: [Diagnostic]
    /// Whether any diagnostic is an error.
    public var hasErrors: Bool { diagnostics.contains { $0.severity == .error } }
    /// The warnings only.
    public var warnings: [Diagnostic] { diagnostics.filter { $0.severity == .warning } }
}

/// The mutable state of one load.
private struct LoadRun {
    let loader: ManifestLoader
    var files: [String] = []
    var sources: [String: SourceText] = [:]
    var sets: [PatchSetManifest] = []
    var diagnostics: [Diagnostic] = []
    var digest = SHA256()
    var bundles: [String: Result<ResolvedBundle, DiagnosticError>] = [:]
    var identicalRepeats = 0
    let currentDirectory = FileManager.default.currentDirectoryPath

    init(loader: ManifestLoader) { self.loader = loader }

    // MARK: Files

    mutating func load(_ paths: [String]) {
        var seen = Set<String>()
        for path in paths {
            for file in expand(path)
            where seen.insert(PathNormalizer.normalize(file.hasPrefix("/") ? file : currentDirectory + "/" + file))
                .inserted {
                loadFile(file)
            }
        }
    }

    /// The files named by `path`: itself, or the sorted `*.yaml`/`*.yml` files below it.
    private mutating func expand(_ path: String) -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            if !reportBrokenLink(path, isManifest: true) {
                diagnostics.append(Diagnostic(.error, "\(path): no such file or directory"))
            }
            return []
        }
        guard isDirectory.boolValue else { return [path] }
        var found: [String] = []
        var visited = Set<String>()
        walk(path, into: &found, visited: &visited)
        if found.isEmpty { diagnostics.append(Diagnostic(.warning, "\(path): no *.yaml or *.yml files found")) }
        return found.sorted()
    }

    private mutating func walk(_ directory: String, into found: inout [String], visited: inout Set<String>) {
        let real = URL(fileURLWithPath: directory).resolvingSymlinksInPath().path
        guard visited.insert(real).inserted,
              let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names where !name.hasPrefix(".") {
            let child = directory.hasSuffix("/") ? directory + name : directory + "/" + name
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: child, isDirectory: &isDirectory) else {
                reportBrokenLink(child, isManifest: name.hasSuffix(".yaml") || name.hasSuffix(".yml"))
                continue
            }
            if isDirectory.boolValue {
                // A patch bundle kept next to the manifests is not a manifest directory.
                if FileManager.default.fileExists(atPath: child + "/patch.yaml") { continue }
                walk(child, into: &found, visited: &visited)
            } else if name.hasSuffix(".yaml") || name.hasSuffix(".yml") {
                found.append(child)
            }
        }
    }

    /// Reports a directory entry that `stat(2)` cannot follow: a symbolic link whose target is missing
    /// or that loops. A `*.yaml`/`*.yml` link is an error (its declarations would vanish without a word,
    /// and with `prune: true` their patches could be removed); any other broken link is a warning.
    /// - Returns: whether `path` is such a link (and was reported).
    @discardableResult
    private mutating func reportBrokenLink(_ path: String, isManifest: Bool) -> Bool {
        var status = stat()
        guard lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFLNK else { return false }
        let destination = (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? "?"
        var followed = stat()
        let reason = stat(path, &followed) != 0 && errno == ELOOP
            ? "is a symbolic link loop (through '\(destination)')"
            : "is a symbolic link to '\(destination)', which does not exist"
        if isManifest {
            diagnostics.append(Diagnostic(.error, "\(path): \(reason); fix or remove the link "
                                          + "(its declarations cannot be read)"))
        } else {
            diagnostics.append(Diagnostic(.warning, "\(path): \(reason); skipped"))
        }
        return true
    }

    private mutating func loadFile(_ file: String) {
        files.append(file)
        let url = URL(fileURLWithPath: file)
        let source: SourceText
        switch YAMLSource.read(url, display: file, limits: loader.limits) {
        case let .failure(error):
            diagnostics += error.diagnostics
            return
        case let .success(text): source = text
        }
        sources[file] = source
        var length = UInt64(source.text.utf8.count).littleEndian
        withUnsafeBytes(of: &length) { digest.update(bufferPointer: $0) }
        digest.update(data: Data(source.text.utf8))

        let (roots, failure) = YAMLSource.documents(of: source, limits: loader.limits)
        if roots.isEmpty, failure == nil {
            diagnostics.append(source.diagnostic(.error, "empty manifest: no PatchSet document in this file",
                                                 at: source.location(line: 1, column: 1)))
        }
        let reader = NodeReader(source: source)
        let absolute = file.hasPrefix("/") ? file : currentDirectory + "/" + file
        let directory = PathNormalizer.normalize(absolute + "/..")
        let decoder = PatchSetDecoder(reader: reader, manifestDirectory: directory)
        for root in roots {
            if let set = decoder.decode(root) { sets.append(set) }
        }
        diagnostics += reader.diagnostics
        if let failure { diagnostics.append(failure) }
    }

    // MARK: Checks and merge

    /// A diagnostic carrying the source line of its location when the file is known.
    private func make(_ severity: Diagnostic.Severity, _ message: String, at location: SourceLocation,
                      notes: [Diagnostic] = []) -> Diagnostic {
        Diagnostic(severity, message, at: location, sourceLine: sources[location.file]?.line(location.line),
                   notes: notes)
    }

    private func isSelected(_ set: PatchSetManifest) -> Bool {
        switch loader.hostContext {
        case .allHosts: return true
        case let .host(name, labels): return set.hosts.matches(hostname: name, labels: labels)
        }
    }

    mutating func finish() -> ManifestLoadResult {
        // PatchSet names are unique.
        var setNames: [String: PatchSetManifest] = [:]
        for set in sets {
            if let first = setNames[set.name] {
                diagnostics.append(make(.error, "PatchSet '\(set.name)' is declared twice (also at "
                                    + "\(Self.place(first.nameLocation, from: set.nameLocation)))", at: set.nameLocation,
                                        notes: [Diagnostic(.note, "first declared here", at: first.nameLocation)]))
            } else {
                setNames[set.name] = set
            }
        }

        // Per entry: pins (every PatchSet) and bundles (the PatchSets that select this host; all of
        // them in lint mode). A host need not hold the bundles of patches meant for other hosts.
        var resolved: [PatchEntryKey: ResolvedBundle?] = [:]
        for set in sets {
            let selected = isSelected(set)
            for entry in set.patches {
                checkPin(entry)
                if selected { resolved[PatchEntryKey(entry)] = checkBundle(entry) }
            }
        }

        // Merge by patch name. Within one PatchSet every pair is compared; across PatchSets, only
        // pairs that may select the same host.
        var byName: [String: [(set: PatchSetManifest, entry: PatchEntry)]] = [:]
        var order: [String] = []
        let selected = sets.filter(isSelected)
        for set in selected {
            for entry in set.patches {
                let earlier = byName[entry.name] ?? []
                if earlier.isEmpty { order.append(entry.name) }
                if let clash = earlier.first(where: { conflicts($0.set, set) }) {
                    compare(first: clash.entry, second: entry)
                }
                byName[entry.name, default: []].append((set, entry))
            }
        }

        var patches: [DesiredPatch] = []
        for name in order {
            guard let (set, entry) = byName[name]?.first else { continue }
            let bundle = resolved[PatchEntryKey(entry)] ?? nil
            patches.append(DesiredPatch(
                name: entry.name, state: entry.state, target: entry.target, bundle: bundle, pin: entry.pin,
                allowPartial: entry.allowPartial ?? loader.defaultAllowPartial,
                onStall: entry.onStall ?? loader.defaultOnStall, patchSet: set.name, location: entry.location,
                stateLocation: entry.stateLocation))
        }
        patches.sort { ($0.name, $0.location) < ($1.name, $1.location) }
        let desired = DesiredState(
            patches: patches, prune: selected.contains { $0.prune }, patchSets: selected.map(\.name).sorted(),
            manifestDigest: digest.finalize().map { String(format: "%02x", $0) }.joined())

        diagnostics.sort(by: Diagnostic.sourceOrder)
        let declared = sets.reduce(0) { $0 + $1.patches.count }
        return ManifestLoadResult(files: files, patchSets: sets, patchCount: declared - identicalRepeats,
                                  identicalRepeats: identicalRepeats, desiredState: desired, diagnostics: diagnostics)
    }

    /// Whether declarations in `a` and `b` can clash: the same PatchSet, or two PatchSets that may
    /// select one host (always, for one host; in lint mode, when their selectors may overlap).
    private func conflicts(_ a: PatchSetManifest, _ b: PatchSetManifest) -> Bool {
        if a.location == b.location { return true }
        switch loader.hostContext {
        case .host: return true
        case .allHosts: return a.hosts.mayOverlap(b.hosts)
        }
    }

    /// How to name `other` in a message about something at `here`: `line 9, column 14` in the same
    /// file, else `file:line:column`.
    private static func place(_ other: SourceLocation, from here: SourceLocation) -> String {
        other.file == here.file ? "line \(other.line), column \(other.column)" : other.description
    }

    /// Reports a second declaration of one patch name: an error when it differs, else a warning.
    private mutating func compare(first: PatchEntry, second: PatchEntry) {
        if first.bundlePath != second.bundlePath {
            let other = Self.place(first.bundleLocation, from: second.bundleLocation)
            diagnostics.append(make(.error, "patch '\(second.name)' is declared with two different bundles: "
                                    + "'\(second.bundle)' here, '\(first.bundle)' at \(other)",
                                    at: second.bundleLocation,
                                    notes: [Diagnostic(.note, "the other bundle is declared here",
                                                       at: first.bundleLocation)]))
        } else if first.state != second.state {
            let other = Self.place(first.stateLocation, from: second.stateLocation)
            diagnostics.append(make(.error, "patch '\(second.name)' is declared twice with different states: "
                                    + "'\(second.state.rawValue)' here, '\(first.state.rawValue)' at \(other)",
                                    at: second.stateLocation,
                                    notes: [Diagnostic(.note, "declared '\(first.state.rawValue)' here",
                                                       at: first.stateLocation)]))
        } else {
            var differing: [String] = []
            if first.target != second.target { differing.append("target") }
            if first.pin != second.pin { differing.append("sha256") }
            if first.allowPartial != second.allowPartial { differing.append("allowPartial") }
            if first.onStall != second.onStall { differing.append("onStall") }
            let other = Self.place(first.location, from: second.location)
            if differing.isEmpty {
                identicalRepeats += 1
                diagnostics.append(make(.warning, "patch '\(second.name)' is declared twice, identically "
                                        + "(also at \(other)); the declarations are merged", at: second.location,
                                        notes: [Diagnostic(.note, "first declared here", at: first.location)]))
            } else {
                diagnostics.append(make(.error, "patch '\(second.name)' is declared twice with a different "
                                        + differing.joined(separator: ", ") + " (also at \(other))",
                                        at: second.location,
                                        notes: [Diagnostic(.note, "first declared here", at: first.location)]))
            }
        }
    }

    /// A patch to install needs a pin: a warning, or an error when the config sets `requirePins`.
    private mutating func checkPin(_ entry: PatchEntry) {
        guard entry.pin == nil, entry.state != .absent else { return }
        let message = "patch '\(entry.name)' has no sha256 pin; the applied bundle is not tied to a reviewed one"
        if loader.requirePins {
            diagnostics.append(make(.error, message + " (requirePins is set)", at: entry.location))
        } else {
            diagnostics.append(make(.warning, message, at: entry.location))
        }
    }

    /// Reads and checks the bundle of one entry (existence, reader diagnostics, pin, metadata);
    /// returns the bundle when it could be read.
    private mutating func checkBundle(_ entry: PatchEntry) -> ResolvedBundle? {
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: entry.bundlePath, isDirectory: &isDirectory)
        if !exists {
            if entry.state == .absent { return nil }
            let notes = entry.bundle == entry.bundlePath ? []
                : [Diagnostic(.note, "relative to the manifest's directory, that is \(entry.bundlePath)")]
            diagnostics.append(make(.error, "bundle '\(entry.bundle)' does not exist", at: entry.bundleLocation,
                                    notes: notes))
            return nil
        }
        guard isDirectory.boolValue else {
            diagnostics.append(make(.error, "bundle '\(entry.bundle)' is not a directory", at: entry.bundleLocation))
            return nil
        }
        let result: Result<ResolvedBundle, DiagnosticError>
        if let cached = bundles[entry.bundlePath] {
            result = cached
        } else {
            do throws(DiagnosticError) {
                result = .success(try loader.readBundle(URL(fileURLWithPath: entry.bundlePath)))
            } catch {
                result = .failure(error)
            }
            bundles[entry.bundlePath] = result
        }
        let bundle: ResolvedBundle
        switch result {
        case let .failure(error):
            let notes = error.diagnostics.map { inner -> Diagnostic in
                var note = inner
                note.severity = .note
                return note
            }
            diagnostics.append(make(.error, "bundle '\(entry.bundle)' cannot be used", at: entry.bundleLocation,
                                    notes: notes))
            return nil
        case let .success(value): bundle = value
        }
        if let pin = entry.pin, pin != bundle.digest.lowercased() {
            diagnostics.append(make(.error, "bundle '\(entry.bundle)' does not match its sha256 pin",
                                    at: entry.pinLocation ?? entry.bundleLocation,
                                    notes: [Diagnostic(.note, "the bundle's digest is \(bundle.digest)",
                                                       at: entry.bundleLocation)]))
        }
        checkMetadata(entry, bundle)
        return bundle
    }

    /// The bundle must be the patch the manifest names, for the target it names.
    private mutating func checkMetadata(_ entry: PatchEntry, _ bundle: ResolvedBundle) {
        let metadata = bundle.metadata
        if metadata.name != entry.name {
            diagnostics.append(make(.error, "bundle '\(entry.bundle)' holds patch '\(metadata.name)', "
                                    + "not '\(entry.name)'", at: entry.bundleLocation))
        }
        let bundleTarget = "\(metadata.kind.rawValue) patch for \(metadata.target.package) \(metadata.target.version)"
        switch (entry.target, metadata.kind) {
        case let (.package(name, version), .user):
            if name != metadata.target.package || version != metadata.target.version {
                diagnostics.append(make(.error, "target \(entry.target) does not match the bundle (\(bundleTarget))",
                                        at: entry.targetLocation))
            }
        case let (.path(path), .user):
            if !metadata.entities.contains(where: { $0.targetPath == path }) {
                let paths = metadata.entities.map(\.targetPath).joined(separator: ", ")
                diagnostics.append(make(.error, "target path \(path) is not patched by the bundle "
                                        + "(it patches \(paths.isEmpty ? "nothing" : paths))", at: entry.targetLocation))
            }
        case let (.kernel(release), .kernel):
            if release != metadata.target.version {
                diagnostics.append(make(.error, "target kernel \(release) does not match the bundle, built for "
                                        + "kernel \(metadata.target.version)", at: entry.targetLocation))
            }
        case (.kernel, .user):
            diagnostics.append(make(.error, "target is a kernel but the bundle is a \(bundleTarget)",
                                    at: entry.targetLocation))
        case (_, .kernel):
            diagnostics.append(make(.error, "the bundle is a \(bundleTarget); its target must be "
                                    + "'kernel: \(metadata.target.version)'", at: entry.targetLocation))
        }
    }
}

/// Identity of one manifest entry (its position is unique).
private struct PatchEntryKey: Hashable {
    let location: SourceLocation
    init(_ entry: PatchEntry) { location = entry.location }
}

extension HostSelector {
    /// Whether some host could be selected by both selectors (used by lint mode, which has no host).
    ///
    /// Conservative: labels must not require different values for one key; hostname lists overlap
    /// when either is empty, or a glob of one matches a glob of the other taken literally, or two
    /// wildcard globs share their literal prefix (`web-*` and `web-1?` may overlap; `web-*` and `db-*`
    /// cannot).
    func mayOverlap(_ other: HostSelector) -> Bool {
        for (key, value) in labels where other.labels[key].map({ $0 != value }) ?? false { return false }
        if hostnames.isEmpty || other.hostnames.isEmpty { return true }
        func isGlob(_ s: String) -> Bool { s.contains { "*?[".contains($0) } }
        for a in hostnames {
            for b in other.hostnames {
                if a.lowercased() == b.lowercased() { return true }
                if HostSelector(hostnames: [a]).matches(hostname: b, labels: [:]) { return true }
                if HostSelector(hostnames: [b]).matches(hostname: a, labels: [:]) { return true }
                if isGlob(a), isGlob(b) {
                    // Two globs: they overlap unless their literal prefixes (before any wildcard) diverge.
                    let pa = a.lowercased().prefix { !"*?[".contains($0) }
                    let pb = b.lowercased().prefix { !"*?[".contains($0) }
                    if pa.hasPrefix(pb) || pb.hasPrefix(pa) { return true }
                }
            }
        }
        return false
    }
}

/// Lexical path normalization (`.` and `..` components, repeated `/`), without touching the file system:
/// what `URL.standardizedFileURL` does, at a fraction of the cost.
enum PathNormalizer {
    /// `path` (absolute) with `.`/`..` components resolved lexically; `..` above `/` stays at `/`.
    static func normalize(_ path: String) -> String {
        var parts: [Substring] = []
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            if component == "." { continue }
            if component == ".." {
                if !parts.isEmpty { parts.removeLast() }
                continue
            }
            parts.append(component)
        }
        return "/" + parts.joined(separator: "/")
    }
}
