#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim
import SutureCore
import SystemPackage

/// A failed kernel operation: which call, on what, and the `errno` the kernel returned.
public struct KernelCallError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The operation (`finit_module`, `delete_module`, `read`, `write`, `list`, `open`).
    public var operation: String
    /// The path or module name it acted on (as given to the interface, before the root is prepended).
    public var target: String
    /// The `errno` value (`EBUSY`, `EINVAL`, …).
    public var errno: Int32

    /// Memberwise initializer.
    public init(_ operation: String, _ target: String, errno: Int32) {
        self.operation = operation
        self.target = target
        self.errno = errno
    }

    /// The symbolic errno name where known (`EBUSY`), else `errno N`.
    public var errnoName: String { Errno(rawValue: errno).name }

    /// `finit_module /var/lib/suture/store/…/x.ko: EBUSY (Device or resource busy)`.
    public var description: String {
        "\(operation) \(target): \(errnoName) (\(Errno(rawValue: errno)))"
    }
}

/// The kernel operations the livepatch driver needs, so the driver can run against the real kernel
/// (`LinuxKernelInterface`) or against an in-process fake kernel in unit tests.
///
/// Paths are the absolute paths the kernel exposes (`/sys/kernel/livepatch/<p>/enabled`,
/// `/proc/<pid>/task/<tid>/patch_state`); an implementation may serve them from another root.
/// Module file paths given to `loadModule` are ordinary filesystem paths (the store), never re-rooted.
public protocol KernelInterface: Sendable {
    /// Loads the kernel module in file `path` with `finit_module(2)`, passing `parameters`
    /// (`"name=value name2=value2"`, may be empty). Returns when the module's init function returned.
    /// - Throws: `KernelCallError` with the errno of `open(2)` or `finit_module(2)`.
    func loadModule(atPath path: String, parameters: String) throws(KernelCallError)

    /// Removes module `name` with `delete_module(2)` and `O_NONBLOCK` (never forced).
    /// - Throws: `KernelCallError` (`EWOULDBLOCK`/`EAGAIN` or `EBUSY` while referenced, `ENOENT` when absent).
    func unloadModule(named name: String) throws(KernelCallError)

    /// Reads a whole sysfs attribute or proc file.
    /// - Returns: the contents, trailing newline included, decoded as UTF-8 (invalid bytes replaced).
    /// - Throws: `KernelCallError` (`ENOENT` when absent, `EACCES`/`EPERM` when unreadable).
    func read(_ path: String) throws(KernelCallError) -> String

    /// Writes `value` to a sysfs attribute in one `write(2)` call, as `echo -n value > path` would.
    /// - Throws: `KernelCallError` with the errno of the store method (`EINVAL`, `EBUSY`, …).
    func write(_ path: String, _ value: String) throws(KernelCallError)

    /// The entries of directory `path` (no `.`/`..`), unsorted.
    /// - Throws: `KernelCallError` (`ENOENT`, `ENOTDIR`).
    func list(_ path: String) throws(KernelCallError) -> [String]

    /// Whether `path` exists (file or directory).
    func exists(_ path: String) -> Bool
}

extension KernelInterface {
    /// `read` with surrounding whitespace removed, or `nil` when the file cannot be read.
    public func readTrimmed(_ path: String) -> String? {
        guard let s = try? read(path) else { return nil }
        return s.trimmingWhitespace()
    }
}

extension String {
    /// The string without leading/trailing spaces, tabs and newlines.
    func trimmingWhitespace() -> String {
        let ws: Set<Character> = [" ", "\t", "\n", "\r"]
        var s = Substring(self)
        while let f = s.first, ws.contains(f) { s = s.dropFirst() }
        while let l = s.last, ws.contains(l) { s = s.dropLast() }
        return String(s)
    }
}

/// The real kernel: `finit_module(2)`/`delete_module(2)` through `CLinuxShim`, files through
/// `open(2)`/`read(2)`/`write(2)`/`opendir(3)` under `root` (default `/`; tests point it at a recorded
/// tree such as `Tests/Fixtures/kernel-6.1/transition-held`).
public struct LinuxKernelInterface: KernelInterface {
    /// Prefix for every sysfs/proc path (no trailing slash; empty for `/`).
    public let root: String

    /// Creates the interface; `root` `/` (the default) means the live system.
    public init(root: String = "/") {
        var r = root
        while r.hasSuffix("/") { r.removeLast() }
        self.root = r
    }

    private func full(_ path: String) -> String { root + path }

    /// `finit_module(2)` on the module file at `path` with module `parameters`. Throws `KernelCallError` with the errno.
    public func loadModule(atPath path: String, parameters: String) throws(KernelCallError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw KernelCallError("open", path, errno: errno) }
        defer { close(fd) }
        if cls_finit_module(fd, parameters, 0) != 0 {
            throw KernelCallError("finit_module", path, errno: errno)
        }
    }

    /// `delete_module(2)` of module `name` (O_NONBLOCK). Throws `KernelCallError` with the errno.
    public func unloadModule(named name: String) throws(KernelCallError) {
        if cls_delete_module(name, UInt32(O_NONBLOCK)) != 0 {
            throw KernelCallError("delete_module", name, errno: errno)
        }
    }

    /// Reads a sysfs/procfs attribute under the root, trailing newline kept. Throws `KernelCallError`.
    public func read(_ path: String) throws(KernelCallError) -> String {
        let fd = open(full(path), O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw KernelCallError("read", path, errno: errno) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw KernelCallError("read", path, errno: errno)
            }
            if n == 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Writes `value` to a sysfs attribute under the root in one write(2). Throws `KernelCallError` (EINVAL, EBUSY, …).
    public func write(_ path: String, _ value: String) throws(KernelCallError) {
        let fd = open(full(path), O_WRONLY | O_CLOEXEC)
        if fd < 0 { throw KernelCallError("write", path, errno: errno) }
        defer { close(fd) }
        let bytes = Array(value.utf8)
        while true {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw KernelCallError("write", path, errno: errno)
            }
            if n != bytes.count { throw KernelCallError("write", path, errno: EIO) }
            return
        }
    }

    /// Names in a directory under the root, sorted. Throws `KernelCallError`.
    public func list(_ path: String) throws(KernelCallError) -> [String] {
        guard let dir = opendir(full(path)) else { throw KernelCallError("list", path, errno: errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Whether `path` exists under the root.
    public func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(full(path), &st) == 0
    }
}
