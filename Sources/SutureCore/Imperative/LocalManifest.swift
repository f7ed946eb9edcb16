import Foundation
import Yams

/// The manifest that the imperative verbs write: `<root>/etc/suture/manifests.d/local.yaml`, one PatchSet
/// named `local` (Manifest v1, ../shared/DESIGN.md §5).
///
/// `suture patch accept X` declares X `accepted` here (bundle = its store copy, pinned by digest), so
/// the boot and timer reconciles keep it and `suture plan` shows no change for it; `suture patch remove`
/// and `deactivate` of an accepted patch drop it again (SysCare's DECLINE).
public struct LocalManifest: Sendable, Hashable {
    /// One declared patch.
    public struct Entry: Sendable, Hashable {
        /// Patch name.
        public var name: String
        /// Absolute bundle path.
        public var bundle: String
        /// Bundle digest (the manifest's `sha256` pin).
        public var sha256: String
        /// Declared state.
        public var state: DesiredPatchState
        /// Target selector.
        public var target: PatchTargetSelector

        /// Memberwise initializer.
        public init(name: String, bundle: String, sha256: String, state: DesiredPatchState, target: PatchTargetSelector) {
            self.name = name
            self.bundle = bundle
            self.sha256 = sha256
            self.state = state
            self.target = target
        }
    }

    /// The file path.
    public var path: String
    /// Declared patches, sorted by name.
    public var entries: [Entry]

    /// Reads the local manifest at `paths.localManifest` (empty when the file does not exist).
    /// - Throws: `DiagnosticError` when the file exists but is not one that this code wrote.
    public static func load(paths: StatePaths) throws(DiagnosticError) -> LocalManifest {
        let path = paths.localManifest
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            return LocalManifest(path: path, entries: [])
        }
        let bad = { (why: String) in DiagnosticError(Diagnostic(.error, "\(path): \(why) (this file is written by `suture patch accept`)")) }
        let any: Any?
        do { any = try Yams.load(yaml: text) } catch { throw bad("cannot parse: \(error)") }
        guard let doc = any as? [String: Any], let spec = doc["spec"] as? [String: Any] else {
            if any == nil { return LocalManifest(path: path, entries: []) }
            throw bad("not a PatchSet")
        }
        var entries: [Entry] = []
        for item in spec["patches"] as? [[String: Any]] ?? [] {
            guard let name = item["name"] as? String, let bundle = item["bundle"] as? String,
                  let stateText = item["state"] as? String, let state = DesiredPatchState(rawValue: stateText),
                  let target = item["target"] as? [String: Any] else { throw bad("malformed patch entry") }
            let selector: PatchTargetSelector
            if let p = target["package"] as? String, let v = target["version"] as? String {
                selector = .package(name: p, version: v)
            } else if let p = target["path"] as? String {
                selector = .path(p)
            } else if let k = target["kernel"] as? String {
                selector = .kernel(release: k)
            } else { throw bad("malformed target of \(name)") }
            entries.append(Entry(name: name, bundle: bundle, sha256: item["sha256"] as? String ?? "", state: state,
                                 target: selector))
        }
        return LocalManifest(path: path, entries: entries.sorted { $0.name < $1.name })
    }

    /// Adds or replaces the entry with the same name.
    public mutating func upsert(_ entry: Entry) {
        entries.removeAll { $0.name == entry.name }
        entries.append(entry)
        entries.sort { $0.name < $1.name }
    }

    /// Removes the entry named `name`; returns whether one was there.
    @discardableResult
    public mutating func remove(name: String) -> Bool {
        let before = entries.count
        entries.removeAll { $0.name == name }
        return entries.count != before
    }

    /// Removes the entries whose bundle is the store copy of patch `uuid` (`…/store/<uuid>`); returns
    /// whether any was there. Used when a patch is deactivated imperatively (SysCare's DECLINE).
    @discardableResult
    public mutating func remove(uuid: String) -> Bool {
        let before = entries.count
        entries.removeAll { ($0.bundle as NSString).lastPathComponent == uuid.lowercased() }
        return entries.count != before
    }

    /// The YAML text (Manifest v1), emitted by Yams after a two-line header comment: keys in manifest
    /// order, every string from a bundle or a path double-quoted.
    public var yaml: String {
        func quoted(_ s: String) -> Node { Node(s, Tag(.str), .doubleQuoted) }
        func plain(_ s: String) -> Node { Node(s) }
        func mapping(_ pairs: [(String, Node)]) -> Node { Node.mapping(Node.Mapping(pairs.map { (plain($0.0), $0.1) })) }
        let patches = entries.map { e -> Node in
            var fields: [(String, Node)] = [("name", quoted(e.name)), ("bundle", quoted(e.bundle))]
            if !e.sha256.isEmpty { fields.append(("sha256", quoted(e.sha256))) }
            fields.append(("state", plain(e.state.rawValue)))
            switch e.target {
            case let .package(name, version):
                fields.append(("target", mapping([("package", quoted(name)), ("version", quoted(version))])))
            case let .path(path): fields.append(("target", mapping([("path", quoted(path))])))
            case let .kernel(release): fields.append(("target", mapping([("kernel", quoted(release))])))
            }
            return mapping(fields)
        }
        let document = mapping([
            ("apiVersion", plain("suture.dev/v1")),
            ("kind", plain("PatchSet")),
            ("metadata", mapping([("name", plain("local"))])),
            ("spec", mapping([("patches", Node.sequence(Node.Sequence(patches, Tag(.seq), .block)))])),
        ])
        let header = """
            # Written by `suture patch accept` / `remove`: patches accepted on this host by hand.
            # Reconciled like every other manifest (boot, timer, `suture apply`).

            """
        // Serializing a Node built here cannot fail (no unrepresentable scalars).
        return header + ((try? Yams.serialize(node: document, indent: 2, width: -1, allowUnicode: true,
                                               sequenceStyle: .block, mappingStyle: .block)) ?? "")
    }

    /// Writes the file atomically (temporary file, fsync, rename), creating `manifests.d`.
    /// - Throws: on I/O errors.
    public func save() throws {
        try makeDirectories((path as NSString).deletingLastPathComponent)
        try writeFileDurably(Data(yaml.utf8), to: path)
    }
}
