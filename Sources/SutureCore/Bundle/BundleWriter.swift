import Crypto
import Foundation
import SystemPackage
import Yams
#if canImport(Glibc)
import Glibc
#endif

/// Writes patch bundles: `patch.yaml` in a stable key order plus the payload and source-patch files, with
/// their checksums computed while copying. Used by `suture bundle create` (user bundles) and the kernel
/// bundle builder.
///
/// The output always round-trips: the written directory is read back with `BundleReader.read` before it
/// is moved into place, so a bundle this writes is a bundle suture accepts.
public enum BundleWriter {
    /// Writes a bundle into `directory`, which must not exist yet.
    ///
    /// - Parameters:
    ///   - metadata: the metadata; each entity's `payload` and each patch's `file` name the destination
    ///     path inside the bundle (relative, e.g. `demo.o` or `payloads/demo.o`). Their sha256 fields are
    ///     ignored and filled from the copied bytes.
    ///   - payloads: source file for each entity payload, keyed by the entity's `payload` path.
    ///   - patches: source file for each source patch, keyed by the patch's `file` path.
    ///   - directory: the bundle directory to create. It is built in a temporary sibling directory, fsynced,
    ///     verified and then renamed into place, so a failure leaves nothing behind.
    /// - Returns: the bundle as read back (absolute path, digest).
    /// - Throws: `DiagnosticError` when a source is missing, a path is invalid, the destination exists, or
    ///   the result does not validate.
    @discardableResult
    public static func write(_ metadata: BundleMetadata, payloads: [String: URL], patches: [String: URL] = [:],
                             to directory: URL) throws(DiagnosticError) -> ResolvedBundle {
        let destination = directory.standardizedFileURL
        let fm = FileManager.default
        if fm.fileExists(atPath: destination.path) {
            throw DiagnosticError(Diagnostic(.error, "\(destination.path) already exists; refusing to overwrite a bundle"))
        }
        let parent = destination.deletingLastPathComponent()
        do {
            try fm.createDirectory(at: parent, withIntermediateDirectories: true)
        } catch {
            throw DiagnosticError(Diagnostic(.error, "cannot create \(parent.path): \(error.localizedDescription)"))
        }
        var files: [(relative: String, source: URL)] = []
        for entity in metadata.entities {
            guard let source = payloads[entity.payload] else {
                throw DiagnosticError(Diagnostic(.error, "no source file given for payload '\(entity.payload)'"))
            }
            files.append((entity.payload, source))
        }
        for patch in metadata.patches {
            guard let source = patches[patch.file] else {
                throw DiagnosticError(Diagnostic(.error, "no source file given for source patch '\(patch.file)'"))
            }
            files.append((patch.file, source))
        }
        var seen = Set<String>()
        for file in files {
            if let problem = BundleReader.pathProblem(file.relative) {
                throw DiagnosticError(Diagnostic(.error, "bundle path '\(file.relative)' \(problem)"))
            }
            if file.relative == BundleReader.metadataFile || !seen.insert(file.relative).inserted {
                throw DiagnosticError(Diagnostic(.error, "bundle path '\(file.relative)' is used twice or collides with \(BundleReader.metadataFile)"))
            }
        }

        let temporary = parent.appendingPathComponent(".\(destination.lastPathComponent).tmp-\(UUID().uuidString.lowercased())")
        var finished = false
        defer { if !finished { try? fm.removeItem(at: temporary) } }
        var filled = metadata
        do {
            try fm.createDirectory(at: temporary, withIntermediateDirectories: false)
            var sums: [String: String] = [:]
            for file in files {
                let target = temporary.appendingPathComponent(file.relative)
                try fm.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
                sums[file.relative] = try FileCopy.copy(from: file.source.path, to: target.path)
            }
            for index in filled.entities.indices {
                filled.entities[index].payloadSHA256 = sums[filled.entities[index].payload]!
            }
            for index in filled.patches.indices {
                filled.patches[index].sha256 = sums[filled.patches[index].file]!
            }
            let text = try yaml(for: filled)
            try FileCopy.writeFile(Array(text.utf8), to: temporary.appendingPathComponent(BundleReader.metadataFile).path)
            try FileCopy.fsyncTree(temporary)
        } catch let error as DiagnosticError {
            throw error
        } catch {
            throw DiagnosticError(Diagnostic(.error, "cannot write bundle \(destination.path): \(error)"))
        }
        var resolved = try BundleReader.read(directory: temporary)
        guard rename(temporary.path, destination.path) == 0 else {
            throw DiagnosticError(Diagnostic(.error, "cannot move bundle into \(destination.path): \(Errno.last.description)"))
        }
        finished = true
        FileCopy.fsyncDirectory(parent.path)
        resolved.path = destination.resolvingSymlinksInPath().path
        return resolved
    }

    /// The `patch.yaml` text for `metadata`: keys in the order of the model's `CodingKeys` (which is the
    /// order of `docs/bundle.md`), strings double-quoted (so `1.10` stays a string), integers and booleans
    /// plain, optional fields omitted when `nil`. Deterministic: equal metadata gives identical bytes.
    ///
    /// - Throws: `DiagnosticError` if libyaml's emitter fails (it does not for valid UTF-8 input).
    public static func yaml(for metadata: BundleMetadata) throws(DiagnosticError) -> String {
        func str(_ s: String) -> Node { .scalar(.init(s, Tag(.str), .doubleQuoted)) }
        func int<T: BinaryInteger>(_ i: T) -> Node { .scalar(.init(String(i), Tag(.int), .plain)) }
        func bool(_ b: Bool) -> Node { .scalar(.init(b ? "true" : "false", Tag(.bool), .plain)) }
        func map(_ pairs: [(String, Node?)]) -> Node {
            .mapping(.init(pairs.compactMap { key, value in value.map { (Node(key), $0) } }, Tag(.map), .block))
        }
        func seq(_ nodes: [Node], flow: Bool = false) -> Node {
            .sequence(.init(nodes, Tag(.seq), flow ? .flow : .block))
        }
        let entities = metadata.entities.map { e in
            map([
                ("target_path", str(e.targetPath)),
                ("target_build_id", str(e.targetBuildID)),
                ("payload", str(e.payload)),
                ("payload_sha256", str(e.payloadSHA256)),
                ("module_name", e.moduleName.map(str)),
                ("replace", e.replace.map(bool)),
                ("functions", e.functions.map { fs in
                    seq(fs.map { f in
                        map([("symbol", str(f.symbol)), ("offset", int(f.offset)), ("size", int(f.size)),
                             ("expected_bytes", str(f.expectedBytes)), ("replacement", str(f.replacement))])
                    })
                }),
                ("imports", e.imports.map { seq($0.map(str)) }),
                ("target_symbols", e.targetSymbols.map { ts in
                    seq(ts.map { t in map([("symbol", str(t.symbol)), ("offset", int(t.offset))]) })
                }),
                ("target_link_base", e.targetLinkBase.map(int)),
            ])
        }
        let root = map([
            ("format_version", int(metadata.formatVersion)),
            ("name", str(metadata.name)),
            ("version", str(metadata.version)),
            ("release", str(metadata.release)),
            ("uuid", str(metadata.uuid)),
            ("kind", str(metadata.kind.rawValue)),
            ("description", str(metadata.description)),
            ("target", map([("package", str(metadata.target.package)), ("version", str(metadata.target.version)),
                            ("arch", str(metadata.target.arch))])),
            ("entities", seq(entities)),
            ("patches", seq(metadata.patches.map { map([("file", str($0.file)), ("sha256", str($0.sha256))]) })),
        ])
        do {
            return try Yams.serialize(node: root, indent: 2, width: -1, allowUnicode: true)
        } catch {
            throw DiagnosticError(Diagnostic(.error, "cannot emit patch.yaml: \(error)"))
        }
    }
}

/// Low-level file helpers shared by the bundle writer and the patch store: streaming copy with sha256,
/// fsync of files and directories.
enum FileCopy {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func posixFailure(_ what: String, _ path: String) -> Failure {
        Failure(description: "\(what) \(path): \(Errno.last.description)")
    }

    /// Copies `source` (following a symlink given as the source) to the new file `destination` (mode 0644,
    /// must not exist), fsyncs it and returns the sha256 of the copied bytes.
    static func copy(from source: String, to destination: String) throws -> String {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw posixFailure("cannot open", source) }
        defer { close(input) }
        var st = stat()
        guard fstat(input, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
            throw Failure(description: "\(source) is not a regular file")
        }
        let output = open(destination, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard output >= 0 else { throw posixFailure("cannot create", destination) }
        defer { close(output) }
        var hasher = BundleHasher()
        let size = BundleDigest.chunkSize
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let n = read(input, buffer.baseAddress, size)
            if n < 0 {
                if errno == EINTR { continue }
                throw posixFailure("cannot read", source)
            }
            if n == 0 { break }
            let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
            hasher.update(chunk)
            try writeAll(output, chunk, path: destination)
        }
        guard fsync(output) == 0 else { throw posixFailure("cannot fsync", destination) }
        return hasher.finalizeHex()
    }

    /// Creates `path` (must not exist) with `bytes`, mode 0644, fsynced.
    static func writeFile(_ bytes: [UInt8], to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else { throw posixFailure("cannot create", path) }
        defer { close(fd) }
        try bytes.withUnsafeBytes { try writeAll(fd, $0, path: path) }
        guard fsync(fd) == 0 else { throw posixFailure("cannot fsync", path) }
    }

    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        var offset = 0
        while offset < bytes.count {
            let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw posixFailure("cannot write", path)
            }
            offset += n
        }
    }

    /// fsyncs a directory (so renames and new entries in it are durable). Errors are ignored: some file
    /// systems refuse fsync on directories, and the data files themselves were already synced.
    static func fsyncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }

    /// fsyncs every directory under and including `root` (files are synced when written).
    static func fsyncTree(_ root: URL) throws {
        var directories = [root.path]
        if let enumerator = FileManager.default.enumerator(atPath: root.path) {
            for case let relative as String in enumerator {
                let path = root.path + "/" + relative
                var st = stat()
                if lstat(path, &st) == 0, st.st_mode & S_IFMT == S_IFDIR { directories.append(path) }
            }
        }
        for directory in directories.reversed() { fsyncDirectory(directory) }
    }
}

/// A streaming sha256 (swift-crypto) with a hex result.
struct BundleHasher {
    private var inner = Crypto.SHA256()
    mutating func update(_ bytes: UnsafeRawBufferPointer) { inner.update(bufferPointer: bytes) }
    func finalizeHex() -> String { BundleDigest.hex(inner.finalize()) }
}
