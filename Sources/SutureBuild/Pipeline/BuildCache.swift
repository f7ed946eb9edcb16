import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The cache of original builds, keyed by what determines their objects: a digest of the source tree,
/// the build command, the compiler wrapper (its flags and the real compilers it runs) and the compiler
/// environment variables (`CC`, `CXX`, `CFLAGS`, `CXXFLAGS`, `CPPFLAGS`, `LDFLAGS`).
///
/// One entry is a directory `<root>/<key>/`:
/// - `bin/`: the compiler wrapper scripts (a fixed path: build systems such as CMake record the compiler's
///   absolute path at configure time);
/// - `tree/`: where every build of this key runs (a fixed path too: CMake and libtool record absolute
///   paths, and `__FILE__` and DWARF name the build directory, so original and patched builds must run at
///   the same place to compare);
/// - `original/`: a copy of `tree/` right after the original build (`cp -a`, timestamps kept); a patched
///   build starts from a fresh copy of it, so only the units the patches touch recompile;
/// - `original.json`: the original build's compiles, written last (an entry without it is rebuilt);
/// - `plain/`, `plain.json`: the plain rebuild used for symbols (`SymbolLocator`), when one was needed;
/// - `lock`: held (`flock`) for the whole of a `suture build` using the entry.
/// Entries are never evicted automatically: remove the directory to reclaim the space.
public struct BuildCacheEntry: Sendable {
    /// The entry directory.
    public var directory: URL
    /// The cache key (hex sha256).
    public var key: String

    /// The wrapper directory.
    public var bin: URL { directory.appendingPathComponent("bin") }
    /// The build location.
    public var tree: URL { directory.appendingPathComponent("tree") }
    /// The pristine copy of the original build.
    public var original: URL { directory.appendingPathComponent("original") }
    /// The original build's marker and compile list.
    public var originalRecord: URL { directory.appendingPathComponent("original.json") }
    /// The plain rebuild location.
    public var plainTree: URL { directory.appendingPathComponent("plain/tree") }
    /// The plain rebuild's marker.
    public var plainRecord: URL { directory.appendingPathComponent("plain.json") }

    /// What `original.json` holds.
    public struct OriginalBuild: Sendable, Codable {
        /// Every compile of the original build (objects under `tree/`).
        public var units: [CompiledUnit]
        /// Seconds the original build took.
        public var seconds: Double
        /// When it finished (ISO 8601).
        public var finished: String
    }

    /// The original build recorded in this entry, or nil when there is none (never built, or interrupted).
    public func originalBuild() -> OriginalBuild? {
        guard let data = FileManager.default.contents(atPath: originalRecord.path),
              FileManager.default.fileExists(atPath: original.path) else { return nil }
        return try? JSONDecoder().decode(OriginalBuild.self, from: data)
    }

    /// Records the original build (the marker that makes the entry reusable).
    /// - Throws: `BuildError` when it cannot be written.
    public func recordOriginal(_ build: OriginalBuild) throws(BuildError) {
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            try encoder.encode(build).write(to: originalRecord, options: .atomic)
        } catch {
            throw BuildError("cannot write \(originalRecord.path): \(error.localizedDescription)")
        }
    }
}

/// Opening and locking cache entries, and computing their keys.
public enum BuildCache {
    /// Bumped when the layout or the wrapper's behaviour changes (old entries are then simply not found).
    public static let formatVersion = "suture-build-cache-1"

    /// The default cache root: `$SUTURE_BUILD_CACHE`, else `/var/cache/suture/build` for root, else
    /// `$XDG_CACHE_HOME/suture/build` (`~/.cache/suture/build`).
    public static func defaultRoot(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let dir = environment["SUTURE_BUILD_CACHE"], !dir.isEmpty { return URL(fileURLWithPath: dir) }
        if geteuid() == 0 { return URL(fileURLWithPath: "/var/cache/suture/build") }
        let base = environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? ((environment["HOME"] ?? NSHomeDirectory()) as NSString).appendingPathComponent(".cache")
        return URL(fileURLWithPath: base).appendingPathComponent("suture/build")
    }

    /// Environment variables that change what a build compiles.
    public static let keyedEnvironment = ["CC", "CXX", "CFLAGS", "CXXFLAGS", "CPPFLAGS", "LDFLAGS"]

    /// The cache key: sha256 over the format version, the tree digest, the build command, the wrapper
    /// scripts (which name the real compilers), each real compiler's size and modification time, and the
    /// keyed environment variables.
    public static func key(treeDigest: String, buildCommand: String, wrappers: [String: String],
                           environment: [String: String]) -> String {
        var h = SHA256()
        func add(_ s: String) { h.update(data: Data(s.utf8)); h.update(data: Data([0])) }
        add(formatVersion)
        add(treeDigest)
        add(buildCommand)
        for name in wrappers.keys.sorted() {
            let real = wrappers[name]!
            add(name)
            add(CompilerWrapper.script(realCompiler: real))
            let resolved = URL(fileURLWithPath: real).resolvingSymlinksInPath().path
            let attributes = try? FileManager.default.attributesOfItem(atPath: resolved)
            add(resolved)
            add("\((attributes?[.size] as? NSNumber)?.int64Value ?? -1)")
            add("\(((attributes?[.modificationDate] as? Date)?.timeIntervalSince1970) ?? -1)")
        }
        for name in keyedEnvironment { add("\(name)=\(environment[name] ?? "\u{1}")") }
        return h.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// Digest of a source tree: sha256 over every entry below `root` in path order (relative path, kind,
    /// executable bit, and the content's sha256 or the symlink's destination). `.git` is skipped.
    /// - Throws: `BuildError` when the tree cannot be read.
    public static func treeDigest(_ root: URL) throws(BuildError) -> String {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: root.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw BuildError("--source \(root.path) is not a directory")
        }
        var paths: [String] = []
        guard let walker = fm.enumerator(atPath: root.path) else {
            throw BuildError("cannot read the source tree \(root.path)")
        }
        while let entry = walker.nextObject() as? String {
            if entry == ".git" || entry.hasPrefix(".git/") {
                walker.skipDescendants()
                continue
            }
            paths.append(entry)
        }
        paths.sort { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        var h = SHA256()
        for relative in paths {
            let full = root.appendingPathComponent(relative).path
            var st = stat()
            guard lstat(full, &st) == 0 else { throw BuildError("cannot read \(full): \(String(cString: strerror(errno)))") }
            h.update(data: Data(relative.utf8))
            h.update(data: Data([0]))
            switch st.st_mode & S_IFMT {
            case S_IFREG:
                h.update(data: Data((st.st_mode & 0o111 != 0 ? "x" : "f").utf8))
                h.update(data: Data(try fileDigest(full)))
            case S_IFLNK:
                let destination = (try? fm.destinationOfSymbolicLink(atPath: full)) ?? ""
                h.update(data: Data("l\(destination)".utf8))
            case S_IFDIR:
                h.update(data: Data("d".utf8))
            default:
                h.update(data: Data("o".utf8))
            }
            h.update(data: Data([0]))
        }
        return h.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// sha256 of a file's content, read in 1 MiB chunks.
    static func fileDigest(_ path: String) throws(BuildError) -> [UInt8] {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw BuildError("cannot read \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var h = SHA256()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw BuildError("cannot read \(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            buffer.withUnsafeBytes { h.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
        return Array(h.finalize())
    }

    /// A held entry lock; `release()` (or process exit) frees it.
    public final class Lock: @unchecked Sendable {
        private var fd: Int32
        init(fd: Int32) { self.fd = fd }
        /// Releases the lock.
        public func release() {
            if fd >= 0 {
                flock(fd, LOCK_UN)
                close(fd)
                fd = -1
            }
        }
        deinit { release() }
    }

    /// Opens (creating) the entry `key` under `root` and locks it exclusively; `waiting` is called once if
    /// another process holds it.
    /// - Throws: `BuildError` when the directory cannot be created or locked.
    public static func open(root: URL, key: String, waiting: () -> Void = {}) throws(BuildError) -> (BuildCacheEntry, Lock) {
        let entry = BuildCacheEntry(directory: root.appendingPathComponent(key), key: key)
        do {
            try FileManager.default.createDirectory(at: entry.directory, withIntermediateDirectories: true)
        } catch {
            throw BuildError("cannot create the build cache entry \(entry.directory.path): \(error.localizedDescription)")
        }
        let lockPath = entry.directory.appendingPathComponent("lock").path
        let fd = Glibc.open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw BuildError("cannot open \(lockPath): \(String(cString: strerror(errno)))") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            waiting()
            while flock(fd, LOCK_EX) != 0 {
                if errno != EINTR {
                    close(fd)
                    throw BuildError("cannot lock \(lockPath): \(String(cString: strerror(errno)))")
                }
            }
        }
        return (entry, Lock(fd: fd))
    }
}
