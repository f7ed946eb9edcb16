#if canImport(Glibc)
import Glibc
#endif
import SutureCore

/// Small, allocation-light readers of `/proc/PID/*` files used by the ptrace engine.
///
/// Formats: proc(5) (`maps`, `status`, `stat`, `task/`), Linux `Documentation/filesystems/proc.rst`.
enum ProcFiles {
    /// Reads a whole file with `open`/`read` (procfs files report size 0, so no `stat`).
    /// Returns `nil` when it cannot be opened or read.
    static func read(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if n == 0 { break }
            out.append(contentsOf: buffer[0..<n])
        }
        return out
    }

    /// Reads a file as UTF-8 text (`nil` when unreadable).
    static func text(_ path: String) -> String? {
        read(path).map { String(decoding: $0, as: UTF8.self) }
    }

    /// `/proc/PID/status` as key → value (value trimmed).
    static func status(_ path: String) -> [String: String]? {
        guard let text = text(path) else { return nil }
        var result: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = String(line[..<colon])
            let value = line[line.index(after: colon)...].sutureTrim(" \t")
            result[key] = value
        }
        return result
    }

    /// `/proc/PID/comm` without the newline, or "" when unreadable.
    static func comm(_ pid: Int32) -> String {
        guard let t = text("/proc/\(pid)/comm") else { return "" }
        return t.sutureTrim("\n")
    }

    /// Field 22 (`starttime`, clock ticks since boot) and field 3 (`state`) of `/proc/PID/stat`, read by
    /// SutureCore's ``ProcStat``.
    static func stat(_ pid: Int32) -> (state: Character, startTime: UInt64)? {
        ProcStat.read(pid: pid).map { ($0.state, $0.startTime) }
    }

    /// The thread ids in `/proc/PID/task` (empty when the process is gone).
    static func tids(_ pid: Int32) -> [Int32] {
        guard let dir = opendir("/proc/\(pid)/task") else { return [] }
        defer { closedir(dir) }
        var result: [Int32] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw -> String in
                let bytes = raw.bindMemory(to: UInt8.self)
                let end = bytes.firstIndex(of: 0) ?? bytes.count
                return String(decoding: bytes[0..<end], as: UTF8.self)
            }
            if let tid = Int32(name) { result.append(tid) }
        }
        return result
    }

    /// `/proc/PID/task/TID/children` (needs CONFIG_PROC_CHILDREN): pids of the thread's children.
    static func children(pid: Int32, tid: Int32) -> [Int32] {
        guard let t = text("/proc/\(pid)/task/\(tid)/children") else { return [] }
        return t.split(separator: " ").compactMap { Int32($0.sutureTrim("\n ")) }
    }

    /// Whether the thread is currently inside a system call (`/proc/PID/task/TID/syscall` is not
    /// `running`; a negative number means "blocked, not in a syscall").
    static func inSyscall(pid: Int32, tid: Int32) -> Bool {
        guard let t = text("/proc/\(pid)/task/\(tid)/syscall") else { return false }
        if t.hasPrefix("running") { return false }
        guard let first = t.split(separator: " ").first, let nr = Int(first.sutureTrim("\n")) else {
            return false
        }
        return nr >= 0
    }
}

/// One line of `/proc/PID/maps` (proc(5)): `start-end perms offset dev inode path`.
struct ProcMapping: Sendable, Hashable {
    /// First byte of the mapping.
    var start: UInt64
    /// One past the last byte.
    var end: UInt64
    /// `r`, `w`, `x`, `p`/`s` (4 characters).
    var perms: String
    /// File offset of `start`.
    var offset: UInt64
    /// Device `major:minor` in hex as printed.
    var device: String
    /// Inode (0 for anonymous mappings).
    var inode: UInt64
    /// Path or pseudo-name (`[stack]`, `/memfd:suture:… (deleted)`), possibly empty.
    var path: String

    var readable: Bool { perms.hasPrefix("r") }
    var executable: Bool { perms.dropFirst(2).hasPrefix("x") }
    /// `path` without a trailing ` (deleted)`.
    var pathWithoutDeleted: String {
        path.hasSuffix(" (deleted)") ? String(path.dropLast(10)) : path
    }

    /// Parses a whole maps file; malformed lines are skipped.
    static func parse(_ text: String) -> [ProcMapping] {
        parse(bytes: Array(text.utf8))
    }

    /// Parses maps bytes with SutureCore's byte-level `ProcMapsParser` (this runs inside the stop window:
    /// a Character-based parse of a 2 KiB maps file took ~330 µs in release builds, the byte parser a few).
    static func parse(bytes: [UInt8]) -> [ProcMapping] {
        var result: [ProcMapping] = []
        result.reserveCapacity(64)
        bytes.withUnsafeBytes { raw in
            ProcMapsParser.forEachLine(raw) { l in
                let path = l.pathnameString
                result.append(ProcMapping(start: l.start, end: l.end, perms: String(decoding: l.permissions, as: UTF8.self),
                                          offset: l.offset,
                                          device: ProcMapsParser.formatDevice(major: l.deviceMajor, minor: l.deviceMinor),
                                          inode: l.inode, path: l.deleted ? path + " (deleted)" : path))
            }
        }
        return result
    }

    /// Reads and parses `/proc/PID/maps` (`nil` when the process is gone).
    static func read(pid: Int32) -> [ProcMapping]? {
        guard let bytes = ProcFiles.read("/proc/\(pid)/maps") else { return nil }
        return parse(bytes: bytes)
    }
}

extension StringProtocol {
    func sutureTrim(_ set: String) -> String {
        var s = self[...]
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
