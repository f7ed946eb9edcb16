import Crypto
import Foundation
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// The identity of a patch bundle and the file hashing it is built from.
///
/// Definition (also in `docs/bundle.md`): list every regular file under the bundle directory recursively,
/// as its path relative to the bundle directory with `/` separators; sort the paths by their UTF-8 bytes;
/// for each file form the line `<sha256 hex>  <relative path>\n` (the `sha256sum` output format, two spaces);
/// the digest is the sha256 of the concatenation of those lines, as 64 lower-case hex digits.
///
/// So `(cd BUNDLE && find . -type f | sed 's|^\./||' | LC_ALL=C sort | xargs sha256sum | sha256sum)` prints
/// the same digest for file names without spaces or special characters. Symlinks, devices, FIFOs and
/// sockets inside a bundle are errors; empty directories do not count. File names containing a newline or a
/// backslash are refused (sha256sum would escape them, which would make the line format ambiguous).
public enum BundleDigest {
    /// One regular file of a bundle and its sha256.
    public struct FileHash: Sendable, Hashable {
        /// Path relative to the bundle directory, `/`-separated (`payloads/demo.o`).
        public var path: String
        /// sha256 of the contents, 64 lower-case hex digits.
        public var sha256: String
        /// Size in bytes.
        public var size: UInt64

        /// Memberwise initializer.
        public init(path: String, sha256: String, size: UInt64) {
            self.path = path
            self.sha256 = sha256
            self.size = size
        }
    }

    /// A problem found while walking or hashing a bundle directory.
    public struct WalkError: Error, Sendable, CustomStringConvertible {
        /// Relative path inside the bundle (empty for the bundle directory itself).
        public var path: String
        /// What is wrong (`is a symlink; bundles may only contain regular files and directories`).
        public var reason: String
        /// `path: reason`.
        public var description: String { path.isEmpty ? reason : "\(path): \(reason)" }
    }

    /// Chunk size used to stream files through sha256 (1 MiB): large payloads are never loaded whole.
    public static let chunkSize = 1 << 20

    /// Lists the regular files under `directory`, sorted by the UTF-8 bytes of their relative paths.
    ///
    /// - Throws: `WalkError` for a symlink, a special file, an unreadable directory, or a file name
    ///   containing a newline or backslash.
    public static func listFiles(in directory: URL) throws(WalkError) -> [String] {
        var out: [String] = []
        try walk(directory.path, relative: "", into: &out)
        return out.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    private static func walk(_ absolute: String, relative: String, into out: inout [String]) throws(WalkError) {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: absolute)
        } catch {
            throw WalkError(path: relative, reason: "cannot list directory: \(error.localizedDescription)")
        }
        for name in names {
            let rel = relative.isEmpty ? name : relative + "/" + name
            let abs = absolute + "/" + name
            if name.contains("\n") || name.contains("\\") {
                throw WalkError(path: rel, reason: "file name contains a newline or backslash, which bundles do not allow")
            }
            var st = stat()
            guard lstat(abs, &st) == 0 else {
                throw WalkError(path: rel, reason: "cannot stat: \(Errno.last.description)")
            }
            switch st.st_mode & S_IFMT {
            case S_IFREG: out.append(rel)
            case S_IFDIR: try walk(abs, relative: rel, into: &out)
            case S_IFLNK:
                throw WalkError(path: rel, reason: "is a symlink; bundles may only contain regular files and directories")
            default:
                throw WalkError(path: rel, reason: "is a special file (device, FIFO or socket); bundles may only contain regular files and directories")
            }
        }
    }

    /// sha256 of one file, streamed in `chunkSize` chunks. The file is opened with `O_NOFOLLOW` and must be
    /// a regular file.
    ///
    /// - Returns: the hex digest (64 lower-case digits) and the number of bytes read.
    /// - Throws: `WalkError` (path = `path` as given) when the file cannot be opened or read or is not regular.
    public static func sha256(ofFile path: String) throws(WalkError) -> (hex: String, size: UInt64) {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            throw WalkError(path: path, reason: "cannot open: \(Errno.last.description)")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
            throw WalkError(path: path, reason: "is not a regular file")
        }
        var hasher = SHA256()
        var total: UInt64 = 0
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let n = read(fd, buffer.baseAddress, chunkSize)
            if n < 0 {
                if errno == EINTR { continue }
                throw WalkError(path: path, reason: "read failed: \(Errno.last.description)")
            }
            if n == 0 { break }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            total += UInt64(n)
        }
        return (hex(hasher.finalize()), total)
    }

    /// sha256 of in-memory bytes, lower-case hex.
    public static func sha256(of data: some DataProtocol) -> String {
        hex(SHA256.hash(data: data))
    }

    /// Hashes every regular file of the bundle at `directory` (see `listFiles`).
    ///
    /// - Returns: one `FileHash` per file, in digest order.
    /// - Throws: `WalkError` as `listFiles` and `sha256(ofFile:)` do (the path is made relative).
    public static func hashFiles(in directory: URL) throws(WalkError) -> [FileHash] {
        let base = directory.path
        var out: [FileHash] = []
        for rel in try listFiles(in: directory) {
            do throws(WalkError) {
                let (h, size) = try sha256(ofFile: base + "/" + rel)
                out.append(FileHash(path: rel, sha256: h, size: size))
            } catch {
                throw WalkError(path: rel, reason: error.reason)
            }
        }
        return out
    }

    /// The digest over already-computed file hashes (which must be in digest order, as `hashFiles` returns).
    public static func digest(of files: [FileHash]) -> String {
        var hasher = SHA256()
        for file in files {
            hasher.update(data: Array("\(file.sha256)  \(file.path)\n".utf8))
        }
        return hex(hasher.finalize())
    }

    /// The digest of the bundle directory at `directory`.
    ///
    /// - Throws: `WalkError` for symlinks, special files or unreadable files.
    public static func digest(ofDirectory directory: URL) throws(WalkError) -> String {
        digest(of: try hashFiles(in: directory))
    }

    static func hex(_ digest: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for b in digest {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xf)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
