import Foundation
import Yams

/// Decodes one composed YAML document into a `PatchSetManifest`, reporting every problem with its
/// position through the `NodeReader`.
struct PatchSetDecoder {
    let reader: NodeReader
    /// Directory of the manifest file, absolute, for relative `bundle` paths.
    let manifestDirectory: String

    /// The PatchSet, or `nil` when any error was reported for this document.
    func decode(_ root: Node) -> PatchSetManifest? {
        let errorsBefore = reader.errorCount
        guard let fields = reader.mapping(root, "the PatchSet document", allowed: ManifestKeys.document) else {
            return nil
        }
        // apiVersion and kind first: with an unknown one, the rest cannot be interpreted.
        if let node = fields.required("apiVersion", reader), let value = reader.string(node, "'apiVersion'"),
           value != ManifestKeys.apiVersion {
            reader.error("unsupported apiVersion '\(value)'; this Suture reads apiVersion: \(ManifestKeys.apiVersion)",
                         at: node)
            return nil
        }
        if let node = fields.required("kind", reader), let value = reader.string(node, "'kind'"),
           value != ManifestKeys.kind {
            let hint = value.lowercased() == ManifestKeys.kind.lowercased() ? " (kinds are case-sensitive)" : ""
            reader.error("unsupported kind '\(value)'; the supported kind is \(ManifestKeys.kind)\(hint)", at: node)
            return nil
        }

        var name: String?
        var nameLocation = reader.location(of: root)
        if let node = fields.required("metadata", reader),
           let metadata = reader.mapping(node, "'metadata'", allowed: ManifestKeys.metadata),
           let nameNode = metadata.required("name", reader) {
            nameLocation = reader.location(of: nameNode)
            name = identifier(nameNode, "PatchSet name")
        }

        var hosts = HostSelector()
        var prune = false
        var patches: [PatchEntry] = []
        if let node = fields.required("spec", reader),
           let spec = reader.mapping(node, "'spec'", allowed: ManifestKeys.spec) {
            if let node = spec["hosts"] { hosts = decodeHosts(node) ?? hosts }
            if let node = spec["prune"] { prune = reader.bool(node, "'prune'") ?? false }
            if let node = spec.required("patches", reader), let items = reader.sequence(node, "'spec.patches'") {
                for (index, item) in items.enumerated() {
                    if let entry = decodePatch(item, index: index) { patches.append(entry) }
                }
            }
        }
        guard reader.errorCount == errorsBefore, let name else { return nil }
        return PatchSetManifest(name: name, hosts: hosts, prune: prune, patches: patches,
                                location: reader.location(of: root), nameLocation: nameLocation)
    }

    /// A name: non-empty, no whitespace, no `/` (SysCare identifiers use `TARGET/NAME`).
    private func identifier(_ node: Node, _ what: String) -> String? {
        guard let value = reader.string(node, "the \(what)") else { return nil }
        if value.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0 == "/" }) {
            reader.error("\(what) '\(value)' must not contain whitespace or '/'", at: node)
            return nil
        }
        // Control characters (a quoted "\0" or "\e" escape) would end up in store paths, logs and terminals.
        if let bad = value.unicodeScalars.first(where: { $0.properties.generalCategory == .control }) {
            let shown = String(String.UnicodeScalarView(value.unicodeScalars.map { $0.properties.generalCategory == .control ? "\u{FFFD}" : $0 }))
            reader.error("\(what) '\(shown)' must not contain control characters (U+\(String(format: "%04X", bad.value)))", at: node)
            return nil
        }
        return value
    }

    private func decodeHosts(_ node: Node) -> HostSelector? {
        guard let fields = reader.mapping(node, "'spec.hosts'", allowed: ManifestKeys.hosts) else { return nil }
        var selector = HostSelector()
        if let node = fields["hostnames"], let items = reader.sequence(node, "'hosts.hostnames'") {
            for item in items {
                if let glob = reader.string(item, "a hostname glob") { selector.hostnames.append(glob) }
            }
        }
        if let node = fields["labels"], let labels = reader.stringMap(node, "'hosts.labels'") {
            selector.labels = labels
        }
        return selector
    }

    private func decodePatch(_ node: Node, index: Int) -> PatchEntry? {
        let errorsBefore = reader.errorCount
        guard let fields = reader.mapping(node, "spec.patches[\(index)]", allowed: ManifestKeys.patch) else {
            return nil
        }
        let name = fields.required("name", reader).flatMap { identifier($0, "patch name") }
        let what = name.map { "patch '\($0)'" } ?? "spec.patches[\(index)]"

        var bundle: String?
        var bundlePath = ""
        let bundleNode = fields.required("bundle", reader, owner: what)
        if let bundleNode, let value = reader.string(bundleNode, "'bundle'") {
            bundle = value
            bundlePath = PathNormalizer.normalize(value.hasPrefix("/") ? value : manifestDirectory + "/" + value)
        }

        var pin: String?
        if let pinNode = fields["sha256"], let value = reader.string(pinNode, "'sha256'") {
            let count = value.unicodeScalars.count
            let bad = value.unicodeScalars.first { !$0.properties.isASCIIHexDigit }
            if count == 64, bad == nil {
                pin = value.lowercased()
            } else if value.hasPrefix("sha256:") {
                reader.error("sha256 pin must be 64 hexadecimal digits; drop the 'sha256:' prefix", at: pinNode)
            } else if count != 64 {
                reader.error("sha256 pin must be 64 hexadecimal digits, found \(count) characters", at: pinNode)
            } else if let bad {
                reader.error("sha256 pin must be 64 hexadecimal digits; '\(bad)' is not one", at: pinNode)
            }
        }

        let stateNode = fields.required("state", reader, owner: what)
        let state = stateNode.flatMap { reader.enumeration($0, "state", as: DesiredPatchState.self) }

        let targetNode = fields.required("target", reader, owner: what)
        let target = targetNode.flatMap { decodeTarget($0, what) }

        let allowPartial = fields["allowPartial"].flatMap { reader.bool($0, "'allowPartial'") }
        let onStall = fields["onStall"].flatMap { reader.enumeration($0, "onStall", as: StallPolicy.self) }
        var isKernel = false
        if case .kernel = target { isKernel = true }
        if onStall != nil, target != nil, !isKernel, let key = fields.keyNode("onStall") {
            reader.warning("'onStall' only applies to kernel patches; it is ignored for \(what)",
                           at: reader.location(of: key))
        }

        guard reader.errorCount == errorsBefore, let name, let bundle, let state, let target,
              let bundleNode, let stateNode, let targetNode else { return nil }
        return PatchEntry(name: name, bundle: bundle, bundlePath: bundlePath, pin: pin, state: state, target: target,
                          allowPartial: allowPartial, onStall: onStall, location: reader.location(of: node),
                          bundleLocation: reader.location(of: bundleNode),
                          pinLocation: fields["sha256"].map { reader.location(of: $0) },
                          stateLocation: reader.location(of: stateNode),
                          targetLocation: reader.location(of: targetNode))
    }

    /// `target`: exactly one of `package`+`version`, `path`, `kernel`.
    private func decodeTarget(_ node: Node, _ what: String) -> PatchTargetSelector? {
        guard let fields = reader.mapping(node, "'target'", allowed: ManifestKeys.target) else { return nil }
        let kinds = ["package", "path", "kernel"].filter { fields[$0] != nil }
        guard let kind = kinds.first else {
            // A misspelt key (`pakage`) was already reported with its suggestion.
            if !fields.suggested.isEmpty { return nil }
            reader.error("target of \(what) needs exactly one of 'package' (with 'version'), 'path' or 'kernel'",
                         at: node)
            return nil
        }
        if kinds.count > 1 {
            let second = kinds[1]
            reader.error("target has both '\(kind)' and '\(second)'; give exactly one of 'package' (with 'version'), "
                         + "'path' or 'kernel'", at: fields.keyNode(second) ?? node)
            return nil
        }
        if kind != "package", let versionKey = fields.keyNode("version") {
            reader.error("'version' only goes with a 'package' target; a '\(kind)' target has no version",
                         at: versionKey)
            return nil
        }
        switch kind {
        case "package":
            let package = fields["package"].flatMap { reader.string($0, "'package'") }
            guard let versionNode = fields["version"] else {
                reader.error("missing required key 'version' for package target '\(package ?? "")'", at: node)
                return nil
            }
            guard let package, let version = reader.string(versionNode, "'version'") else { return nil }
            return .package(name: package, version: version)
        case "path":
            guard let pathNode = fields["path"], let path = reader.string(pathNode, "'path'") else { return nil }
            guard path.hasPrefix("/") else {
                reader.error("target path '\(path)' must be absolute", at: pathNode)
                return nil
            }
            return .path(path)
        default:
            guard let releaseNode = fields["kernel"], let release = reader.string(releaseNode, "'kernel'") else {
                return nil
            }
            return .kernel(release: release)
        }
    }
}
