#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

/// Small, allocation-light file system helpers shared by the live-state readers. Every reader joins its
/// root with absolute paths through ``LiveFS/join(_:_:)``.
enum LiveFS {
    /// The outcome of reading a file.
    enum ReadResult: Equatable {
        /// The file's bytes decoded as UTF-8 (repaired if invalid).
        case content(String)
        /// The file (or a parent) does not exist, or the process it described vanished (`ENOENT`, `ESRCH`).
        case absent
        /// Any other failure, with `errno`.
        case failed(Int32)
    }

    /// `root` + `path` (`path` absolute); a root of `/` or `` leaves the path unchanged.
    static func join(_ root: String, _ path: String) -> String {
        if root.isEmpty || root == "/" { return path }
        if root.hasSuffix("/") { return String(root.dropLast()) + path }
        return root + path
    }

    /// Reads a whole (small) file.
    static func read(_ path: String) -> ReadResult {
        switch readBytes(path) {
        case let .success(bytes): return .content(String(decoding: bytes, as: UTF8.self))
        case let .failure(error): return error.code == 0 ? .absent : .failed(error.code)
        }
    }

    struct ReadError: Error { var code: Int32 }   // code 0: absent

    /// Reads a whole file as bytes; a failure's code is 0 when the file is absent (`ENOENT`, `ESRCH`,
    /// `ENOTDIR`), else the `errno`.
    static func readBytes(_ path: String) -> Result<[UInt8], ReadError> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            return .failure(ReadError(code: errno == ENOENT || errno == ESRCH || errno == ENOTDIR ? 0 : errno))
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var st = stat()
        let expected = fstat(fd, &st) == 0 && st.st_size > 0 ? Int(st.st_size) : 0
        var chunkSize = max(4096, expected + 1)
        while true {
            let used = bytes.count
            bytes.append(contentsOf: repeatElement(0, count: chunkSize))
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + used, chunkSize) }
            if n < 0 {
                bytes.removeLast(chunkSize)
                if errno == EINTR { continue }
                return .failure(ReadError(code: errno == ESRCH ? 0 : errno))
            }
            bytes.removeLast(chunkSize - n)
            if n == 0 { break }
            chunkSize = 4096
        }
        return .success(bytes)
    }

    /// Reads a file and trims trailing whitespace; nil when absent or unreadable.
    static func readTrimmed(_ path: String) -> String? {
        if case let .content(text) = read(path) { return trimmed(text) }
        return nil
    }

    /// Strips leading and trailing spaces, tabs and newlines.
    static func trimmed(_ text: String) -> String {
        var scalars = Substring(text)
        while let c = scalars.first, c == " " || c == "\n" || c == "\t" || c == "\r" { scalars.removeFirst() }
        while let c = scalars.last, c == " " || c == "\n" || c == "\t" || c == "\r" { scalars.removeLast() }
        return String(scalars)
    }

    /// The entry names of a directory (without `.` and `..`), unsorted; nil when it cannot be opened.
    static func list(_ path: String) -> [String]? {
        guard let dir = opendir(path) else { return nil }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: &entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// The path is a directory (following symlinks).
    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// The path exists (following symlinks).
    static func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0
    }

    /// `strerror` text, lower-cased first letter as in `permission denied`.
    static func describe(errno code: Int32) -> String { Errno(rawValue: code).sentence }

    /// Splits a `dev_t` into (major, minor) as glibc's `gnu_dev_major`/`gnu_dev_minor` do.
    static func split(device: UInt64) -> (major: UInt32, minor: UInt32) {
        let major = ((device >> 8) & 0xfff) | ((device >> 32) & ~UInt64(0xfff))
        let minor = (device & 0xff) | ((device >> 12) & ~UInt64(0xff))
        return (UInt32(truncatingIfNeeded: major), UInt32(truncatingIfNeeded: minor))
    }
}
