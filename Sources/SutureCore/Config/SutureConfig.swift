import Foundation
import Yams

/// The host configuration: `/etc/suture/suture.yaml` plus the host labels in `/etc/suture/labels`,
/// both read under an injectable root (tests, `--root`).
///
/// ```yaml
/// manifests: [/etc/suture/manifests.d] # files or directories; relative paths are relative to /etc/suture
/// requirePins: false                    # true: a patch without sha256 is an error, not a warning
/// labels: {role: web}                   # host labels (the labels file overrides these, key by key)
/// onStall: revert                       # default for patches that do not set onStall
/// allowPartial: false                   # default for patches that do not set allowPartial
/// busyDeadlineSeconds: 2                # user patches: how long to retry while a thread is busy in a function
/// lockTimeoutSeconds: 30                # how long to wait for /run/suture/lock
/// ```
/// A missing file means all defaults. Labels: `/etc/suture/labels` holds `key=value` lines (`#` comments,
/// blank lines ignored); a key set in both places takes the labels file's value, because that file is
/// written per host by provisioning while `suture.yaml` is often the same on a whole fleet.
public struct SutureConfig: Sendable, Hashable {
    /// Keys accepted in `suture.yaml` (checked by the loader and by the schema test).
    public static let keys = ["manifests", "requirePins", "labels", "onStall", "allowPartial",
                              "busyDeadlineSeconds", "lockTimeoutSeconds"]
    /// Path of the config file on the host.
    public static let path = "/etc/suture/suture.yaml"
    /// Path of the labels file on the host.
    public static let labelsPath = "/etc/suture/labels"
    /// Default manifest location.
    public static let defaultManifests = ["/etc/suture/manifests.d"]

    /// Manifest files or directories, absolute paths on the host (not yet joined with the root).
    public var manifests: [String]
    /// A patch without a `sha256` pin is an error (not a warning).
    public var requirePins: Bool
    /// The host's labels: config `labels` overridden key by key by `/etc/suture/labels`.
    public var labels: [String: String]
    /// Default `onStall` for kernel patches.
    public var onStall: StallPolicy
    /// Default `allowPartial` for user patches.
    public var allowPartial: Bool
    /// User patches: seconds to keep retrying while a thread executes in a function being replaced.
    public var busyDeadlineSeconds: Double
    /// Seconds to wait for the global lock before giving up.
    public var lockTimeoutSeconds: Double

    /// Creates a configuration; the defaults are those of a host with no config file.
    public init(manifests: [String] = SutureConfig.defaultManifests, requirePins: Bool = false,
                labels: [String: String] = [:], onStall: StallPolicy = .revert, allowPartial: Bool = false,
                busyDeadlineSeconds: Double = 2, lockTimeoutSeconds: Double = 30) {
        self.manifests = manifests
        self.requirePins = requirePins
        self.labels = labels
        self.onStall = onStall
        self.allowPartial = allowPartial
        self.busyDeadlineSeconds = busyDeadlineSeconds
        self.lockTimeoutSeconds = lockTimeoutSeconds
    }

    /// The configured manifest paths joined with `root` (`/` leaves them unchanged).
    public func manifestPaths(root: String) -> [String] {
        manifests.map { Self.join(root, $0) }
    }

    /// When a command was given no manifest paths and this configuration leaves it none to read (it
    /// does not set `manifests`, and the default `/etc/suture/manifests.d` does not exist under `root`):
    /// the error saying what to do instead. `nil` when there is something to read, or when `manifests`
    /// is set (a configured path that is missing is reported by the loader, naming it).
    /// - Parameter command: the command line to show, e.g. `suture plan`.
    public func noManifestsError(root: String, command: String) -> Diagnostic? {
        guard manifests == Self.defaultManifests else { return nil }
        let paths = manifestPaths(root: root)
        guard !paths.contains(where: { FileManager.default.fileExists(atPath: $0) }) else { return nil }
        return Diagnostic(.error, "no manifests to read: none given, and \(Self.join(root, "/etc/suture/suture.yaml")) "
                          + "sets no `manifests:` while the default \(paths.joined(separator: ", ")) does not exist. "
                          + "Pass manifest files or directories (`\(command) FILE|DIR…`), or list them under "
                          + "`manifests:` in the config file (docs/manifest.md, \"Host config\").")
    }

    /// `root` + absolute `path` (`/` + `/etc/x` = `/etc/x`; `/tmp/r` + `/etc/x` = `/tmp/r/etc/x`).
    public static func join(_ root: String, _ path: String) -> String {
        let trimmed = root.hasSuffix("/") ? String(root.dropLast()) : root
        return trimmed + (path.hasPrefix("/") ? path : "/" + path)
    }

    /// Reads the configuration under `root`.
    ///
    /// - Parameters:
    ///   - root: the filesystem root (default `/`).
    ///   - limits: size bounds, shared with manifests.
    /// - Returns: the configuration and any warnings.
    /// - Throws: `DiagnosticError` with every error found (YAML syntax, wrong types, unknown keys with a
    ///   did-you-mean, malformed label lines), each positioned `file:line:column`.
    public static func load(root: String = "/", limits: ManifestLimits = ManifestLimits())
        throws(DiagnosticError) -> (config: SutureConfig, warnings: [Diagnostic]) {
        var config = SutureConfig()
        var diagnostics: [Diagnostic] = []
        let configFile = join(root, path)
        if FileManager.default.fileExists(atPath: configFile) {
            diagnostics += decode(file: configFile, into: &config, limits: limits)
        }
        let labelsFile = join(root, labelsPath)
        if FileManager.default.fileExists(atPath: labelsFile) {
            switch YAMLSource.read(URL(fileURLWithPath: labelsFile), display: labelsFile, limits: limits) {
            case let .failure(error): diagnostics += error.diagnostics
            case let .success(source):
                let (labels, problems) = Labels.parse(source)
                diagnostics += problems
                config.labels.merge(labels) { _, file in file }
            }
        }
        diagnostics.sort(by: Diagnostic.sourceOrder)
        if diagnostics.contains(where: { $0.severity == .error }) { throw DiagnosticError(diagnostics) }
        return (config, diagnostics)
    }

    private static func decode(file: String, into config: inout SutureConfig, limits: ManifestLimits) -> [Diagnostic] {
        let source: SourceText
        switch YAMLSource.read(URL(fileURLWithPath: file), display: file, limits: limits) {
        case let .failure(error): return error.diagnostics
        case let .success(text): source = text
        }
        let (roots, failure) = YAMLSource.documents(of: source, limits: limits)
        if let failure { return [failure] }
        guard let root = roots.first else { return [] }
        let reader = NodeReader(source: source)
        if roots.count > 1 {
            reader.error("the config file must hold one YAML document, found \(roots.count)", at: roots[1])
        }
        guard let fields = reader.mapping(root, "the config file", allowed: keys) else { return reader.diagnostics }
        if let node = fields["manifests"], let items = reader.sequence(node, "'manifests'") {
            var paths: [String] = []
            for item in items {
                guard let path = reader.string(item, "a manifest path") else { continue }
                paths.append(path.hasPrefix("/") ? path : "/etc/suture/" + path)
            }
            config.manifests = paths
        }
        if let node = fields["requirePins"], let value = reader.bool(node, "'requirePins'") {
            config.requirePins = value
        }
        if let node = fields["labels"], let value = reader.stringMap(node, "'labels'") { config.labels = value }
        if let node = fields["onStall"], let value = reader.enumeration(node, "onStall", as: StallPolicy.self) {
            config.onStall = value
        }
        if let node = fields["allowPartial"], let value = reader.bool(node, "'allowPartial'") {
            config.allowPartial = value
        }
        if let node = fields["busyDeadlineSeconds"], let value = reader.seconds(node, "'busyDeadlineSeconds'") {
            config.busyDeadlineSeconds = value
        }
        if let node = fields["lockTimeoutSeconds"], let value = reader.seconds(node, "'lockTimeoutSeconds'") {
            config.lockTimeoutSeconds = value
        }
        return reader.diagnostics
    }
}

/// Host labels: `key=value` pairs that `spec.hosts.labels` selects on.
public enum Labels {
    /// Whether `key` is a valid label key: non-empty, letters, digits, `.`, `_`, `-`, `/`.
    public static func isValidKey(_ key: String) -> Bool {
        !key.isEmpty && key.unicodeScalars.allSatisfy {
            $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || ".-_/".unicodeScalars.contains($0))
        }
    }

    /// Parses a labels file: one `key=value` per line; whitespace around key and value is trimmed;
    /// blank lines and lines starting with `#` are ignored. A repeated key is an error naming both lines.
    static func parse(_ source: SourceText) -> ([String: String], [Diagnostic]) {
        var labels: [String: String] = [:]
        var seen: [String: SourceLocation] = [:]
        var diagnostics: [Diagnostic] = []
        var number = 0
        for raw in source.text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            let line = raw.hasSuffix("\r") ? raw.dropLast() : raw
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            let indent = line.unicodeScalars.prefix { $0 == " " || $0 == "\t" }.count
            guard let equals = line.firstIndex(of: "=") else {
                diagnostics.append(source.diagnostic(.error, "expected key=value", at:
                    source.location(line: number, column: indent + 1)))
                continue
            }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            let location = source.location(line: number, column: indent + 1)
            guard isValidKey(key) else {
                diagnostics.append(source.diagnostic(.error, "invalid label key '\(key)'; use letters, digits, "
                                                     + "'.', '_', '-' and '/'", at: location))
                continue
            }
            if let first = seen[key] {
                diagnostics.append(source.diagnostic(.error, "label '\(key)' is set twice", at: location,
                                                     notes: [Diagnostic(.note, "first set here", at: first)]))
                continue
            }
            seen[key] = location
            labels[key] = value
        }
        return (labels, diagnostics)
    }
}
