import Foundation
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// The on-disk patch store: one verified bundle per uuid in `<root>/var/lib/suture/store/<uuid>/`.
///
/// Layout (see `docs/bundle.md`): each entry is a byte-for-byte copy of a bundle directory, so its digest
/// equals the digest of the bundle it was installed from. `.lock` serialises writers (`flock`); directories
/// named `.tmp-…` are in-progress (or killed) installs and removals. SysCare's equivalent is
/// `/usr/lib/syscare/patches/<uuid>/`, filled by RPM and trusted thereafter; Suture re-verifies every
/// checksum on every read instead.
///
/// Writers (`install`, `remove`, `cleanLeftovers`) take an exclusive `flock` on `.lock`, so while one
/// holds it every `.tmp-…` directory is a leftover of a killed process and can be removed.
public struct PatchStore: Sendable {
    /// Path of the store below the root.
    public static let relativePath = "var/lib/suture/store"
    /// Prefix of temporary directories inside the store.
    public static let temporaryPrefix = ".tmp-"
    /// Name of the writer lock file inside the store.
    public static let lockName = ".lock"

    /// The store directory (`<root>/var/lib/suture/store`).
    public let directory: URL

    /// A store under `root` (default `/`; tests pass a temporary directory).
    public init(root: URL = URL(fileURLWithPath: "/")) {
        self.directory = root.appendingPathComponent(Self.relativePath, isDirectory: true)
    }

    /// A store at an explicit directory.
    public init(directory: URL) {
        self.directory = directory
    }

    /// The directory an installed bundle with `uuid` lives in (whether or not it exists).
    public func path(for uuid: String) -> URL {
        directory.appendingPathComponent(uuid, isDirectory: true)
    }

    /// What `install` did.
    public enum InstallOutcome: Sendable, Hashable {
        /// The bundle was copied into the store.
        case installed
        /// The store already held this uuid with the same digest; nothing was written.
        case alreadyInstalled
    }

    /// The result of `install`.
    public struct InstallResult: Sendable, Hashable {
        /// Whether anything was written.
        public var outcome: InstallOutcome
        /// The bundle as it is now in the store (path is the store entry).
        public var bundle: ResolvedBundle
        /// Leftover temporary directories of killed installs/removals that were cleaned first (names).
        public var cleaned: [String]
    }

    /// Installs a verified bundle atomically.
    ///
    /// Steps, under the store lock: clean leftover temporary directories; re-verify the source bundle
    /// (every checksum, and its digest must still equal `bundle.digest`); if `<uuid>` exists with the same
    /// digest, do nothing; otherwise copy every file into `.tmp-<uuid>-<random>/`, fsync each file and
    /// directory, verify the copy's digest, `rename(2)` it to `<uuid>` and fsync the store directory.
    ///
    /// - Returns: whether anything was written, the installed bundle, and the leftovers cleaned.
    /// - Throws: `DiagnosticError` if the source no longer verifies or changed since it was read, if the
    ///   store holds a different digest (or a corrupt entry) for the same uuid, or on I/O errors. On error
    ///   the store is unchanged.
    @discardableResult
    public func install(_ bundle: ResolvedBundle) throws(DiagnosticError) -> InstallResult {
        let uuid = bundle.metadata.uuid
        guard BundleReader.isUUID(uuid) else {
            throw DiagnosticError(Diagnostic(.error, "bundle uuid '\(uuid)' is not a lower-case RFC 4122 UUID"))
        }
        return try withLock { () throws(DiagnosticError) -> InstallResult in
            let cleaned = try cleanLeftoversLocked()
            let source = try BundleReader.read(directory: URL(fileURLWithPath: bundle.path))
            guard source.digest == bundle.digest, source.metadata == bundle.metadata else {
                throw DiagnosticError(Diagnostic(.error, "bundle \(bundle.path) changed since it was read (digest \(bundle.digest), now \(source.digest)); refusing to install"))
            }
            let destination = path(for: uuid)
            if exists(destination) {
                let current = read(entry: uuid)
                if current.problems.isEmpty && current.bundle.digest == source.digest {
                    return InstallResult(outcome: .alreadyInstalled, bundle: current.bundle, cleaned: cleaned)
                }
                if !current.problems.isEmpty {
                    throw DiagnosticError(Diagnostic(.error, "store entry \(destination.path) is corrupt (\(current.problems.joined(separator: "; "))); remove it before installing"))
                }
                throw DiagnosticError(Diagnostic(.error, "store already holds bundle \(uuid) (\(current.bundle.metadata.qualifiedName)) with digest \(current.bundle.digest); refusing to install a different bundle with the same uuid (digest \(source.digest)); remove it first"))
            }
            let files: [String]
            do throws(BundleDigest.WalkError) {
                files = try BundleDigest.listFiles(in: URL(fileURLWithPath: source.path))
            } catch {
                throw DiagnosticError(Diagnostic(.error, "bundle \(source.path): \(error.description)"))
            }
            let temporary = directory.appendingPathComponent("\(Self.temporaryPrefix)\(uuid)-\(UUID().uuidString.lowercased())")
            var done = false
            defer { if !done { try? FileManager.default.removeItem(at: temporary) } }
            do {
                try FileManager.default.createDirectory(at: temporary, withIntermediateDirectories: false)
                for relative in files {
                    let target = temporary.appendingPathComponent(relative)
                    try FileManager.default.createDirectory(at: target.deletingLastPathComponent(),
                                                            withIntermediateDirectories: true)
                    _ = try FileCopy.copy(from: source.path + "/" + relative, to: target.path)
                }
                try FileCopy.fsyncTree(temporary)
            } catch {
                throw DiagnosticError(Diagnostic(.error, "cannot copy bundle into the store \(directory.path): \(error)"))
            }
            let copied: String
            do throws(BundleDigest.WalkError) {
                copied = try BundleDigest.digest(ofDirectory: temporary)
            } catch {
                throw DiagnosticError(Diagnostic(.error, "cannot verify the copy in \(temporary.path): \(error.description)"))
            }
            guard copied == source.digest else {
                throw DiagnosticError(Diagnostic(.error, "the copy of \(source.path) in the store has digest \(copied), expected \(source.digest) (source changed during install?)"))
            }
            guard rename(temporary.path, destination.path) == 0 else {
                throw DiagnosticError(Diagnostic(.error, "cannot rename \(temporary.path) to \(destination.path): \(Errno.last.description)"))
            }
            done = true
            FileCopy.fsyncDirectory(directory.path)
            var installed = source
            installed.path = destination.path
            return InstallResult(outcome: .installed, bundle: installed, cleaned: cleaned)
        }
    }

    /// Removes the bundle with `uuid` from the store: renames the entry to a temporary name (atomic), fsyncs
    /// the store directory, then deletes it. A killed removal leaves a `.tmp-…` directory that the next
    /// writer cleans.
    ///
    /// - Returns: `true` if an entry was removed, `false` if there was none.
    /// - Throws: `DiagnosticError` for a malformed uuid or an I/O error.
    @discardableResult
    public func remove(uuid: String) throws(DiagnosticError) -> Bool {
        guard BundleReader.isUUID(uuid) else {
            throw DiagnosticError(Diagnostic(.error, "'\(uuid)' is not a lower-case RFC 4122 UUID"))
        }
        let entry = path(for: uuid)
        guard exists(entry) else { return false }
        return try withLock { () throws(DiagnosticError) -> Bool in
            guard exists(entry) else { return false }
            let doomed = directory.appendingPathComponent("\(Self.temporaryPrefix)rm-\(uuid)-\(UUID().uuidString.lowercased())")
            guard rename(entry.path, doomed.path) == 0 else {
                throw DiagnosticError(Diagnostic(.error, "cannot remove \(entry.path): \(Errno.last.description)"))
            }
            FileCopy.fsyncDirectory(directory.path)
            do {
                try FileManager.default.removeItem(at: doomed)
            } catch {
                throw DiagnosticError(Diagnostic(.error, "removed \(uuid) from the store but could not delete \(doomed.path): \(error.localizedDescription)"))
            }
            return true
        }
    }

    /// Every installed bundle, sorted by uuid, each re-verified now (every checksum, the digest, and that
    /// `patch.yaml`'s uuid matches the directory name). Nothing is cached. Problems are reported in
    /// `InstalledBundle.problems`, never thrown; a missing store is an empty list. Temporary directories
    /// and the lock file are not entries (see `leftovers()`).
    public func list() -> [InstalledBundle] {
        entryNames().map { read(entry: $0) }
    }

    /// The installed bundle with `uuid`, re-verified, or `nil` when the store has no such entry.
    public func entry(uuid: String) -> InstalledBundle? {
        guard BundleReader.isUUID(uuid), exists(path(for: uuid)) else { return nil }
        return read(entry: uuid)
    }

    /// Names of leftover temporary directories (`.tmp-…`) in the store, sorted. Only meaningful while no
    /// writer runs; `cleanLeftovers()` takes the lock and removes them.
    public func leftovers() -> [String] {
        allNames().filter { $0.hasPrefix(Self.temporaryPrefix) }
    }

    /// Removes leftover temporary directories of killed installs and removals, under the store lock.
    ///
    /// - Returns: the names removed, sorted.
    /// - Throws: `DiagnosticError` when the lock cannot be taken or a leftover cannot be removed.
    @discardableResult
    public func cleanLeftovers() throws(DiagnosticError) -> [String] {
        guard exists(directory) else { return [] }
        return try withLock { () throws(DiagnosticError) -> [String] in try cleanLeftoversLocked() }
    }

    // MARK: Internals

    private func cleanLeftoversLocked() throws(DiagnosticError) -> [String] {
        let names = leftovers()
        for name in names {
            do {
                try FileManager.default.removeItem(at: directory.appendingPathComponent(name))
            } catch {
                throw DiagnosticError(Diagnostic(.error, "cannot remove leftover \(directory.appendingPathComponent(name).path): \(error.localizedDescription)"))
            }
        }
        if !names.isEmpty { FileCopy.fsyncDirectory(directory.path) }
        return names
    }

    private func allNames() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [])
            .sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    private func entryNames() -> [String] {
        allNames().filter { !$0.hasPrefix(".") }
    }

    private func exists(_ url: URL) -> Bool {
        var st = stat()
        return lstat(url.path, &st) == 0
    }

    /// Reads one entry, turning every failure into problems.
    private func read(entry name: String) -> InstalledBundle {
        let dir = directory.appendingPathComponent(name, isDirectory: true)
        var problems: [String] = []
        var st = stat()
        if lstat(dir.path, &st) != 0 || st.st_mode & S_IFMT != S_IFDIR {
            problems.append("\(dir.path) is not a directory")
        } else {
            do {
                var bundle = try BundleReader.read(directory: dir)
                bundle.path = dir.path
                if bundle.metadata.uuid != name {
                    problems.append("patch.yaml has uuid \(bundle.metadata.uuid) but the store entry is named \(name)")
                }
                return InstalledBundle(bundle: bundle, problems: problems)
            } catch {
                problems.append(contentsOf: error.diagnostics.map { $0.description.split(separator: "\n").first.map(String.init) ?? "" })
            }
        }
        // Could not verify: report what can still be read.
        let metadata = (try? BundleReader.parseMetadata(contentsOf: dir.appendingPathComponent(BundleReader.metadataFile)))
            ?? BundleMetadata(name: "", version: "", release: "", uuid: name, kind: .user, description: "",
                              target: BundleTarget(package: "", version: "", arch: ""), entities: [], patches: [])
        let digest = (try? BundleDigest.digest(ofDirectory: dir)) ?? ""
        return InstalledBundle(bundle: ResolvedBundle(metadata: metadata, path: dir.path, digest: digest),
                               problems: problems)
    }

    /// Runs `body` holding an exclusive `flock` on `<store>/.lock` (creating the store directory first).
    private func withLock<T>(_ body: () throws(DiagnosticError) -> T) throws(DiagnosticError) -> T {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw DiagnosticError(Diagnostic(.error, "cannot create the store \(directory.path): \(error.localizedDescription)"))
        }
        let lockPath = directory.appendingPathComponent(Self.lockName).path
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else {
            throw DiagnosticError(Diagnostic(.error, "cannot open \(lockPath): \(Errno.last.description)"))
        }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            if errno == EINTR { continue }
            throw DiagnosticError(Diagnostic(.error, "cannot lock \(lockPath): \(Errno.last.description)"))
        }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }
}
