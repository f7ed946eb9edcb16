import Foundation
import Yams

/// Reads and verifies a patch bundle directory (`patch.yaml` plus payloads and source patches).
///
/// Format reference: `docs/bundle.md`; schema: `schema/bundle.schema.json`. SysCare's equivalent is the
/// `patch_info` file of `/usr/lib/syscare/patches/<uuid>/` (CBOR), checked by sha256 per entity.
public enum BundleReader {
    /// The metadata file name inside a bundle.
    public static let metadataFile = "patch.yaml"
    /// The newest `format_version` this code reads.
    public static let supportedFormatVersion = 1
    /// `patch.yaml` larger than this (1 MiB) is refused before parsing.
    public static let maxMetadataSize = 1 << 20
    /// More entities or source patches than this (4096 each) are refused.
    public static let maxListLength = 4096

    /// Reads, validates and verifies the bundle at `directory`.
    ///
    /// Steps: walk the directory (symlinks and special files are errors); parse `patch.yaml` with Yams,
    /// keeping positions, refusing unknown keys, wrong types and duplicate keys; validate every field (uuid
    /// format, kind, non-empty entities, relative payload paths that stay inside the bundle and exist as
    /// regular files); verify the sha256 of every payload and source patch (a mismatch names the file); and
    /// compute the digest (`BundleDigest`).
    ///
    /// - Parameter directory: the bundle directory; it is made absolute (symlinks in the path leading to
    ///   the directory are resolved; inside it they are errors).
    /// - Returns: the metadata, the absolute path and the digest.
    /// - Throws: `DiagnosticError` with one diagnostic per problem; diagnostics about `patch.yaml` carry
    ///   `patch.yaml:line:column` (the file is named by its path) and the source line.
    public static func read(directory: URL) throws(DiagnosticError) -> ResolvedBundle {
        let root = directory.standardizedFileURL.resolvingSymlinksInPath()
        let display = directory.path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root.path, isDirectory: &isDirectory) else {
            throw DiagnosticError(Diagnostic(.error, "bundle \(display) does not exist"))
        }
        guard isDirectory.boolValue else {
            throw DiagnosticError(Diagnostic(.error, "bundle \(display) is not a directory (a bundle is a directory holding \(metadataFile))"))
        }
        let files: [BundleDigest.FileHash]
        do throws(BundleDigest.WalkError) {
            files = try BundleDigest.hashFiles(in: root)
        } catch {
            throw DiagnosticError(Diagnostic(.error, "bundle \(display): \(error.description)"))
        }
        let metadataPath = root.appendingPathComponent(metadataFile)
        let metadataDisplay = (display as NSString).appendingPathComponent(metadataFile)
        guard files.contains(where: { $0.path == metadataFile }) else {
            throw DiagnosticError(Diagnostic(.error, "bundle \(display) has no \(metadataFile)"))
        }
        let metadata = try parse(contentsOf: metadataPath, displayName: metadataDisplay)
        let decoder = metadata.decoder
        var diagnostics: [Diagnostic] = []
        let byPath = Dictionary(files.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })

        func checkFile(_ relative: String, expected: String, what: String, pathNode: Node?, sumNode: Node?) {
            if let problem = pathProblem(relative) {
                diagnostics.append(decoder.error("\(what) path '\(relative)' \(problem)", at: pathNode?.mark))
                return
            }
            if relative == metadataFile {
                diagnostics.append(decoder.error("\(what) path may not be \(metadataFile)", at: pathNode?.mark))
                return
            }
            guard let file = byPath[relative] else {
                let onDisk = root.appendingPathComponent(relative).path
                let why = FileManager.default.fileExists(atPath: onDisk) ? "is not a regular file" : "does not exist"
                diagnostics.append(decoder.error("\(what) '\(relative)' \(why) in bundle \(display)", at: pathNode?.mark))
                return
            }
            if file.sha256 != expected {
                diagnostics.append(decoder.error(
                    "checksum mismatch: \(what) '\(relative)' has sha256 \(file.sha256), patch.yaml says \(expected) (the file was modified or corrupted)",
                    at: sumNode?.mark))
            }
        }

        for (index, entity) in metadata.value.entities.enumerated() {
            let nodes = metadata.entityNodes[index]
            checkFile(entity.payload, expected: entity.payloadSHA256, what: "payload", pathNode: nodes["payload"],
                      sumNode: nodes["payload_sha256"])
        }
        for (index, patch) in metadata.value.patches.enumerated() {
            let nodes = metadata.patchNodes[index]
            checkFile(patch.file, expected: patch.sha256, what: "source patch", pathNode: nodes["file"],
                      sumNode: nodes["sha256"])
        }
        if !diagnostics.isEmpty { throw DiagnosticError(diagnostics) }
        return ResolvedBundle(metadata: metadata.value, path: root.path, digest: BundleDigest.digest(of: files))
    }

    /// Why a payload or patch path is unacceptable, or `nil` when it is a clean relative path inside the
    /// bundle (`a/b.o`: no leading `/`, no empty, `.` or `..` components, no backslash or NUL).
    public static func pathProblem(_ path: String) -> String? {
        if path.isEmpty { return "is empty" }
        if path.hasPrefix("/") { return "is absolute; payload paths are relative to the bundle directory" }
        if path.contains("\\") || path.contains("\0") || path.contains("\n") {
            return "contains a backslash, NUL or newline"
        }
        for component in path.split(separator: "/", omittingEmptySubsequences: false) {
            if component == ".." { return "escapes the bundle directory ('..')" }
            if component == "." || component.isEmpty { return "is not normalized (empty or '.' component)" }
        }
        return nil
    }

    // MARK: patch.yaml

    /// A parsed `patch.yaml` with the nodes of each entity and patch kept for positions.
    struct Parsed {
        var value: BundleMetadata
        var decoder: BundleYAMLDecoder
        var entityNodes: [BundleYAMLDecoder.Fields]
        var patchNodes: [BundleYAMLDecoder.Fields]
    }

    /// Parses and validates `patch.yaml` alone (no file checks).
    ///
    /// - Throws: `DiagnosticError` with `displayName:line:column` positions.
    public static func parseMetadata(contentsOf url: URL, displayName: String? = nil) throws(DiagnosticError) -> BundleMetadata {
        try parse(contentsOf: url, displayName: displayName ?? url.path).value
    }

    /// Parses and validates `patch.yaml` text (no file checks).
    ///
    /// - Parameter file: the name printed in diagnostics.
    /// - Throws: `DiagnosticError`.
    public static func parseMetadata(yaml text: String, file: String) throws(DiagnosticError) -> BundleMetadata {
        try parse(text: text, file: file).value
    }

    static func parse(contentsOf url: URL, displayName: String) throws(DiagnosticError) -> Parsed {
        let data: Data
        do {
            let attributes = try FileManager.default.attributesOfItem(atPath: url.path)
            if let size = attributes[.size] as? NSNumber, size.intValue > maxMetadataSize {
                throw DiagnosticError(Diagnostic(.error, "\(displayName) is \(size.intValue) bytes; the limit is \(maxMetadataSize)"))
            }
            data = try Data(contentsOf: url)
        } catch let error as DiagnosticError {
            throw error
        } catch {
            throw DiagnosticError(Diagnostic(.error, "cannot read \(displayName): \(error.localizedDescription)"))
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw DiagnosticError(Diagnostic(.error, "\(displayName) is not valid UTF-8"))
        }
        return try parse(text: text, file: displayName)
    }

    static func parse(text: String, file: String) throws(DiagnosticError) -> Parsed {
        let decoder = BundleYAMLDecoder(file: file, text: text)
        if text.utf8.count > maxMetadataSize {
            throw DiagnosticError(Diagnostic(.error, "\(file) is larger than \(maxMetadataSize) bytes"))
        }
        // Alias bombs: Yams composes aliases by sharing, but its duplicate-key check hashes complex keys,
        // which would expand a bomb exponentially. Bounded with the manifest loader's event-level check.
        if text.contains("*"), text.contains("&"),
           let bomb = YAMLSource.checkAliases(SourceText(file: file, text: text),
                                              limits: ManifestLimits(maxFileBytes: maxMetadataSize, maxAliasedNodes: 10_000)) {
            throw DiagnosticError(bomb)
        }
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw DiagnosticError(decoder.error("\(metadataFile) is empty", at: BundleYAMLDecoder.Position(line: 1, column: 1)))
            }
            root = node
        } catch let error as DiagnosticError {
            throw error
        } catch {
            throw DiagnosticError(decoder.diagnostic(for: error, text: text))
        }
        return try decode(root, decoder: decoder)
    }

    static let topKeys = ["format_version", "name", "version", "release", "uuid", "kind", "description",
                          "target", "entities", "patches"]
    static let targetKeys = ["package", "version", "arch"]
    static let entityKeys = ["target_path", "target_build_id", "payload", "payload_sha256", "module_name",
                             "replace", "functions", "imports", "target_symbols", "target_link_base"]
    static let functionKeys = ["symbol", "offset", "size", "expected_bytes", "replacement"]
    static let targetSymbolKeys = ["symbol", "offset"]
    static let patchKeys = ["file", "sha256"]

    static func decode(_ root: Node, decoder d: BundleYAMLDecoder) throws(DiagnosticError) -> Parsed {
        // format_version first: a newer file may legitimately use keys this version does not know.
        if case .mapping(let mapping) = root, let formatNode = mapping["format_version"] {
            let formatVersion = try d.int(formatNode, field: "format_version")
            if formatVersion > supportedFormatVersion {
                throw d.fail("format_version \(formatVersion) is newer than this suture supports (\(supportedFormatVersion)); upgrade suture", at: formatNode)
            }
            if formatVersion < 1 { throw d.fail("format_version must be 1, found \(formatVersion)", at: formatNode) }
        }
        let top = try d.mapping(root, what: "patch.yaml", allowed: topKeys, required: topKeys)
        let formatVersion = try d.int(top["format_version"]!, field: "format_version")

        let name = try nonEmpty(top["name"]!, field: "name", d)
        if name.contains("/") || name.contains(where: { $0.isWhitespace || $0.isNewline }) {
            throw d.fail("'name' must not contain '/' or whitespace, found '\(name)'", at: top["name"]!)
        }
        let version = try nonEmpty(top["version"]!, field: "version", d)
        let release = try nonEmpty(top["release"]!, field: "release", d)
        let uuidNode = top["uuid"]!
        let uuid = try d.string(uuidNode, field: "uuid")
        if !isUUID(uuid) {
            throw d.fail("'uuid' must be an RFC 4122 UUID in lower case (8-4-4-4-12 hex digits), found '\(uuid)'", at: uuidNode)
        }
        let kindNode = top["kind"]!
        let kindText = try d.string(kindNode, field: "kind")
        guard let kind = PatchKind(rawValue: kindText) else {
            throw d.fail("'kind' must be 'user' or 'kernel', found '\(kindText)'", at: kindNode)
        }
        let description = try d.string(top["description"]!, field: "description")

        let targetFields = try d.mapping(top["target"]!, what: "'target'", allowed: targetKeys, required: targetKeys)
        let target = BundleTarget(package: try nonEmpty(targetFields["package"]!, field: "target.package", d),
                                  version: try nonEmpty(targetFields["version"]!, field: "target.version", d),
                                  arch: try nonEmpty(targetFields["arch"]!, field: "target.arch", d))

        let entityList = try d.sequence(top["entities"]!, field: "entities")
        if entityList.isEmpty { throw d.fail("'entities' must list at least one patched target", at: top["entities"]!) }
        if entityList.count > maxListLength { throw d.fail("'entities' has more than \(maxListLength) items", at: top["entities"]!) }
        var entities: [BundleEntity] = []
        var entityNodes: [BundleYAMLDecoder.Fields] = []
        for (index, node) in entityList.enumerated() {
            let what = "entities[\(index)]"
            let f = try d.mapping(node, what: what, allowed: entityKeys,
                                  required: ["target_path", "target_build_id", "payload", "payload_sha256"])
            entityNodes.append(f)
            entities.append(try decodeEntity(f, what: what, kind: kind, decoder: d))
        }
        var seenTargets: [String: Int] = [:]
        for (index, entity) in entities.enumerated() {
            if let previous = seenTargets[entity.targetPath] {
                throw d.fail("entities[\(index)] patches '\(entity.targetPath)' again (already entities[\(previous)]); one entity per target", at: entityNodes[index]["target_path"]!)
            }
            seenTargets[entity.targetPath] = index
        }

        let patchList = try d.sequence(top["patches"]!, field: "patches")
        if patchList.count > maxListLength { throw d.fail("'patches' has more than \(maxListLength) items", at: top["patches"]!) }
        var patches: [BundleSourcePatch] = []
        var patchNodes: [BundleYAMLDecoder.Fields] = []
        for (index, node) in patchList.enumerated() {
            let what = "patches[\(index)]"
            let f = try d.mapping(node, what: what, allowed: patchKeys, required: patchKeys)
            patchNodes.append(f)
            patches.append(BundleSourcePatch(file: try nonEmpty(f["file"]!, field: "\(what).file", d),
                                             sha256: try sha256(f["sha256"]!, field: "\(what).sha256", d)))
        }
        let metadata = BundleMetadata(formatVersion: formatVersion, name: name, version: version, release: release,
                                      uuid: uuid, kind: kind, description: description, target: target,
                                      entities: entities, patches: patches)
        return Parsed(value: metadata, decoder: d, entityNodes: entityNodes, patchNodes: patchNodes)
    }

    static func decodeEntity(_ f: BundleYAMLDecoder.Fields, what: String, kind: PatchKind,
                             decoder d: BundleYAMLDecoder) throws(DiagnosticError) -> BundleEntity {
        let targetPath = try nonEmpty(f["target_path"]!, field: "\(what).target_path", d)
        let buildIDNode = f["target_build_id"]!
        let buildID = try d.string(buildIDNode, field: "\(what).target_build_id")
        if !buildID.isEmpty && !isHex(buildID, evenLength: true) {
            throw d.fail("'\(what).target_build_id' must be lower-case hex (an NT_GNU_BUILD_ID), found '\(buildID)'", at: buildIDNode)
        }
        let payload = try nonEmpty(f["payload"]!, field: "\(what).payload", d)
        let payloadSum = try sha256(f["payload_sha256"]!, field: "\(what).payload_sha256", d)
        var entity = BundleEntity(targetPath: targetPath, targetBuildID: buildID, payload: payload,
                                  payloadSHA256: payloadSum)
        switch kind {
        case .user:
            if !targetPath.hasPrefix("/") {
                throw d.fail("'\(what).target_path' of a user patch must be an absolute ELF path, found '\(targetPath)'", at: f["target_path"]!)
            }
            if buildID.isEmpty {
                throw d.fail("'\(what).target_build_id' is required for a user patch (the target's GNU build-id)", at: buildIDNode)
            }
            for key in ["module_name", "replace"] {
                if let values = f.values[key] {
                    throw d.fail("'\(key)' is only valid in a kernel patch entity", at: values.key)
                }
            }
            if let node = f["functions"] {
                var functions: [FunctionPatch] = []
                for (index, item) in try d.sequence(node, field: "\(what).functions").enumerated() {
                    let fw = "\(what).functions[\(index)]"
                    let ff = try d.mapping(item, what: fw, allowed: functionKeys, required: functionKeys)
                    let expectedNode = ff["expected_bytes"]!
                    let expected = try d.string(expectedNode, field: "\(fw).expected_bytes")
                    if !isHex(expected, evenLength: true) || expected.count > 32 {
                        throw d.fail("'\(fw).expected_bytes' must be up to 16 bytes of lower-case hex, found '\(expected)'", at: expectedNode)
                    }
                    functions.append(FunctionPatch(symbol: try nonEmpty(ff["symbol"]!, field: "\(fw).symbol", d),
                                                   offset: try d.uint64(ff["offset"]!, field: "\(fw).offset"),
                                                   size: try d.uint64(ff["size"]!, field: "\(fw).size"),
                                                   expectedBytes: expected,
                                                   replacement: try nonEmpty(ff["replacement"]!, field: "\(fw).replacement", d)))
                }
                entity.functions = functions
            }
            if let node = f["imports"] {
                var imports: [String] = []
                for item in try d.sequence(node, field: "\(what).imports") {
                    imports.append(try nonEmpty(item, field: "\(what).imports[]", d))
                }
                entity.imports = imports
            }
            if let node = f["target_symbols"] {
                var symbols: [TargetSymbol] = []
                for (index, item) in try d.sequence(node, field: "\(what).target_symbols").enumerated() {
                    let sw = "\(what).target_symbols[\(index)]"
                    let sf = try d.mapping(item, what: sw, allowed: targetSymbolKeys, required: targetSymbolKeys)
                    symbols.append(TargetSymbol(symbol: try nonEmpty(sf["symbol"]!, field: "\(sw).symbol", d),
                                                offset: try d.uint64(sf["offset"]!, field: "\(sw).offset")))
                }
                entity.targetSymbols = symbols
            }
            if let node = f["target_link_base"] {
                entity.targetLinkBase = try d.uint64(node, field: "\(what).target_link_base")
            }
        case .kernel:
            if targetPath.contains("/") || targetPath.hasSuffix(".ko") {
                throw d.fail("'\(what).target_path' of a kernel patch must be 'vmlinux' or a module name (no path, no .ko), found '\(targetPath)'", at: f["target_path"]!)
            }
            guard let moduleNode = f["module_name"] else {
                throw d.fail("'\(what)' of a kernel patch needs 'module_name' (the /sys/kernel/livepatch/<name> directory)", at: f.node)
            }
            let moduleName = try nonEmpty(moduleNode, field: "\(what).module_name", d)
            if !moduleName.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) || moduleName.utf8.count > 55 {
                throw d.fail("'\(what).module_name' must be a kernel module name ([A-Za-z0-9_-], at most 55 bytes), found '\(moduleName)'", at: moduleNode)
            }
            entity.moduleName = moduleName
            if let node = f["replace"] { entity.replace = try d.bool(node, field: "\(what).replace") }
            for key in ["functions", "imports", "target_symbols", "target_link_base"] {
                if let values = f.values[key] {
                    throw d.fail("'\(key)' is only valid in a user patch entity", at: values.key)
                }
            }
        }
        return entity
    }

    static func nonEmpty(_ node: Node, field: String, _ d: BundleYAMLDecoder) throws(DiagnosticError) -> String {
        let value = try d.string(node, field: field)
        if value.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            throw d.fail("'\(field)' must not be empty", at: node)
        }
        return value
    }

    static func sha256(_ node: Node, field: String, _ d: BundleYAMLDecoder) throws(DiagnosticError) -> String {
        let value = try d.string(node, field: field)
        if value.count != 64 || !isHex(value, evenLength: true) {
            throw d.fail("'\(field)' must be a sha256 digest (64 lower-case hex digits), found '\(value)'", at: node)
        }
        return value
    }

    /// True for an RFC 4122 textual UUID in lower case (`8-4-4-4-12` hex digits).
    public static func isUUID(_ text: String) -> Bool {
        let groups = text.split(separator: "-", omittingEmptySubsequences: false)
        guard groups.map(\.count) == [8, 4, 4, 4, 12] else { return false }
        return groups.allSatisfy { isHex(String($0), evenLength: true) }
    }

    static func isHex(_ text: String, evenLength: Bool) -> Bool {
        if evenLength && text.utf8.count % 2 != 0 { return false }
        return text.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }
}
