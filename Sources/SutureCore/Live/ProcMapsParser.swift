/// One line of `/proc/PID/maps`.
///
/// Format (proc(5), `fs/proc/task_mmu.c` `show_map_vma`): `start-end perms offset major:minor inode` then,
/// after padding spaces, an optional pathname that runs to the end of the line, e.g.
/// `7f3c1a000000-7f3c1a028000 r--p 00000000 fd:01 1311  /usr/lib/x86_64-linux-gnu/libc.so.6`.
/// Numbers are hex except the inode (decimal).
public struct ProcMapsEntry: Sendable, Hashable {
    /// First address of the mapping.
    public var start: UInt64
    /// One past the last address.
    public var end: UInt64
    /// The four permission characters as printed (`r-xp`, `rw-s`).
    public var permissions: String
    /// File offset of `start`, in bytes.
    public var offset: UInt64
    /// Device major number.
    public var deviceMajor: UInt32
    /// Device minor number.
    public var deviceMinor: UInt32
    /// Inode (0 for anonymous mappings).
    public var inode: UInt64
    /// The pathname column with a trailing ` (deleted)` removed (see ``deleted``); empty for anonymous
    /// mappings. Special names keep their brackets (`[heap]`).
    public var pathname: String
    /// The kernel appended ` (deleted)`: the file was unlinked (or replaced) after it was mapped.
    public var deleted: Bool

    /// Memberwise initializer.
    public init(start: UInt64, end: UInt64, permissions: String, offset: UInt64, deviceMajor: UInt32,
                deviceMinor: UInt32, inode: UInt64, pathname: String, deleted: Bool) {
        self.start = start
        self.end = end
        self.permissions = permissions
        self.offset = offset
        self.deviceMajor = deviceMajor
        self.deviceMinor = deviceMinor
        self.inode = inode
        self.pathname = pathname
        self.deleted = deleted
    }

    /// What a mapping is backed by, derived from ``pathname`` and ``inode``.
    public enum Kind: Sendable, Hashable {
        /// A file on a filesystem (pathname starts with `/`, not a memfd).
        case file
        /// No pathname.
        case anonymous
        /// `[heap]`.
        case heap
        /// `[stack]` (or the pre-4.5 `[stack:TID]`).
        case stack
        /// `[vdso]`.
        case vdso
        /// `[vvar]` (and `[vvar_vclock]`).
        case vvar
        /// `[vsyscall]`.
        case vsyscall
        /// A memfd: `/memfd:NAME`, with `NAME` as given to `memfd_create(2)` (the kernel always reports
        /// these deleted).
        case memfd(name: String)
        /// An anonymous mapping named with `prctl(PR_SET_VMA_ANON_NAME)`: `[anon:NAME]` (Linux ≥ 5.17);
        /// `[anon_shmem:NAME]` for shared ones is reported the same way.
        case namedAnonymous(name: String)
        /// Another bracketed name (`[uprobes]`, …), without the brackets.
        case special(name: String)
        /// A pathname that is none of the above (not absolute, e.g. a socket or `anon_inode:…`).
        case other
    }

    /// The kind of mapping.
    public var kind: Kind {
        if pathname.isEmpty { return .anonymous }
        if pathname.hasPrefix("/memfd:") { return .memfd(name: String(pathname.dropFirst(7))) }
        if pathname.hasPrefix("/") { return .file }
        guard pathname.hasPrefix("["), pathname.hasSuffix("]") else { return .other }
        let inner = pathname.dropFirst().dropLast()
        switch inner {
        case "heap": return .heap
        case "stack": return .stack
        case "vdso": return .vdso
        case "vvar", "vvar_vclock": return .vvar
        case "vsyscall": return .vsyscall
        default:
            if inner.hasPrefix("stack:") { return .stack }
            if inner.hasPrefix("anon:") { return .namedAnonymous(name: String(inner.dropFirst(5))) }
            if inner.hasPrefix("anon_shmem:") { return .namedAnonymous(name: String(inner.dropFirst(11))) }
            return .special(name: String(inner))
        }
    }

    /// Readable (`r`).
    public var isReadable: Bool { permissions.utf8.first == UInt8(ascii: "r") }
    /// Executable (`x` in the third column).
    public var isExecutable: Bool { permissions.utf8.dropFirst(2).first == UInt8(ascii: "x") }
    /// The device as printed in maps (`fd:01`): two or more lower-case hex digits each side.
    public var device: String { ProcMapsParser.formatDevice(major: deviceMajor, minor: deviceMinor) }
    /// The name of this mapping's entry in `/proc/PID/map_files/` (`7f3c1a000000-7f3c1a028000`).
    public var mapFilesName: String { String(start, radix: 16) + "-" + String(end, radix: 16) }
}

/// Parses `/proc/PID/maps`.
///
/// The pathname column is taken verbatim to the end of the line, so paths containing spaces survive; the
/// kernel escapes a newline in a name as `\012`, so one mapping is always one line. A name that really ends in
/// ` (deleted)` cannot be told apart from a deleted file; it is reported as deleted. Malformed lines are
/// skipped (the kernel never writes them; a truncated last line can appear in a recorded file).
public enum ProcMapsParser {
    /// Parses the whole text of a maps file.
    public static func parse(_ text: String) -> [ProcMapsEntry] {
        var copy = text
        return copy.withUTF8 { parse(UnsafeRawBufferPointer($0)) }
    }

    /// Parses maps bytes as read from the file.
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> [ProcMapsEntry] {
        var result: [ProcMapsEntry] = []
        forEachLine(bytes) { result.append($0.entry()) }
        return result
    }

    /// A maps line whose numeric fields are decoded and whose text fields are still byte ranges of the input
    /// buffer: the scanner's hot path decides from the numbers (and a few byte comparisons) whether a line
    /// matters before it builds any `String`. Valid only inside the ``forEachLine(_:_:)`` callback.
    public struct RawLine {
        /// Start address.
        public var start: UInt64
        /// End address.
        public var end: UInt64
        /// File offset.
        public var offset: UInt64
        /// Device major.
        public var deviceMajor: UInt32
        /// Device minor.
        public var deviceMinor: UInt32
        /// Inode.
        public var inode: UInt64
        /// The four permission bytes.
        public var permissions: UnsafeRawBufferPointer
        /// The pathname bytes with ` (deleted)` removed (empty for anonymous mappings).
        public var pathname: UnsafeRawBufferPointer
        /// ` (deleted)` was present.
        public var deleted: Bool

        /// The pathname starts with `prefix`.
        public func pathnameHasPrefix(_ prefix: StaticString) -> Bool {
            let count = prefix.utf8CodeUnitCount
            guard pathname.count >= count else { return false }
            return memcmpEqual(pathname.baseAddress!, UnsafeRawPointer(prefix.utf8Start), count)
        }

        /// The pathname equals `bytes`.
        public func pathnameEquals(_ bytes: UnsafeRawBufferPointer) -> Bool {
            guard pathname.count == bytes.count else { return false }
            if bytes.isEmpty { return true }
            return memcmpEqual(pathname.baseAddress!, bytes.baseAddress!, bytes.count)
        }

        /// The pathname ends with `bytes`.
        public func pathnameHasSuffix(_ bytes: UnsafeRawBufferPointer) -> Bool {
            guard pathname.count >= bytes.count else { return false }
            if bytes.isEmpty { return true }
            return memcmpEqual(pathname.baseAddress!.advanced(by: pathname.count - bytes.count),
                               bytes.baseAddress!, bytes.count)
        }

        /// The pathname as a `String` (invalid UTF-8 is repaired).
        public var pathnameString: String { String(decoding: pathname, as: UTF8.self) }

        /// Builds the full entry (allocates).
        public func entry() -> ProcMapsEntry {
            ProcMapsEntry(start: start, end: end, permissions: String(decoding: permissions, as: UTF8.self),
                          offset: offset, deviceMajor: deviceMajor, deviceMinor: deviceMinor, inode: inode,
                          pathname: pathnameString, deleted: deleted)
        }
    }

    /// Calls `body` for every well-formed line of `bytes`, in order, without allocating.
    public static func forEachLine(_ bytes: UnsafeRawBufferPointer, _ body: (RawLine) throws -> Void) rethrows {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        let count = bytes.count
        var lineStart = 0
        while lineStart < count {
            var lineEnd = lineStart
            while lineEnd < count && base[lineEnd] != 0x0A { lineEnd += 1 }
            if let line = parseLine(base, lineStart, lineEnd) { try body(line) }
            lineStart = lineEnd + 1
        }
    }

    private static let deletedSuffix: StaticString = " (deleted)"

    @inline(__always)
    private static func hexValue(_ byte: UInt8) -> UInt64? {
        switch byte {
        case 0x30...0x39: return UInt64(byte &- 0x30)
        case 0x61...0x66: return UInt64(byte &- 0x61 &+ 10)
        case 0x41...0x46: return UInt64(byte &- 0x41 &+ 10)
        default: return nil
        }
    }

    /// Parses one line `[from, to)`; nil when malformed.
    private static func parseLine(_ p: UnsafePointer<UInt8>, _ from: Int, _ to: Int) -> RawLine? {
        var i = from
        @inline(__always) func hex(until terminator: UInt8) -> UInt64? {
            var value: UInt64 = 0
            let begin = i
            while i < to, let digit = hexValue(p[i]) {
                if value > (UInt64.max >> 4) { return nil }
                value = value << 4 | digit
                i += 1
            }
            guard i > begin, i < to, p[i] == terminator else { return nil }
            i += 1
            return value
        }
        guard let start = hex(until: 0x2D),          // '-'
              let end = hex(until: 0x20) else { return nil }
        guard i + 5 <= to, p[i + 4] == 0x20 else { return nil }
        let permissions = UnsafeRawBufferPointer(start: p + i, count: 4)
        i += 5
        guard let offset = hex(until: 0x20),
              let major = hex(until: 0x3A),          // ':'
              let minor = hex(until: 0x20) else { return nil }
        var inode: UInt64 = 0
        let inodeBegin = i
        while i < to, p[i] >= 0x30, p[i] <= 0x39 {
            let (times10, o1) = inode.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(UInt64(p[i] - 0x30))
            if o1 || o2 { return nil }
            inode = sum
            i += 1
        }
        guard i > inodeBegin, i == to || p[i] == 0x20 else { return nil }
        while i < to, p[i] == 0x20 { i += 1 }
        var nameEnd = to
        var deleted = false
        let suffixCount = deletedSuffix.utf8CodeUnitCount
        if nameEnd - i > suffixCount,
           memcmpEqual(UnsafeRawPointer(p + nameEnd - suffixCount), UnsafeRawPointer(deletedSuffix.utf8Start),
                       suffixCount) {
            nameEnd -= suffixCount
            deleted = true
        }
        guard major <= UInt64(UInt32.max), minor <= UInt64(UInt32.max) else { return nil }
        return RawLine(start: start, end: end, offset: offset, deviceMajor: UInt32(major),
                       deviceMinor: UInt32(minor), inode: inode, permissions: permissions,
                       pathname: UnsafeRawBufferPointer(start: p + i, count: nameEnd - i), deleted: deleted)
    }

    /// Formats a device as maps prints it (`%02x:%02x`).
    public static func formatDevice(major: UInt32, minor: UInt32) -> String {
        func two(_ v: UInt32) -> String {
            let s = String(v, radix: 16)
            return s.count < 2 ? "0" + s : s
        }
        return two(major) + ":" + two(minor)
    }
}

@inline(__always)
func memcmpEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ count: Int) -> Bool {
    var k = 0
    while k < count {
        if a.load(fromByteOffset: k, as: UInt8.self) != b.load(fromByteOffset: k, as: UInt8.self) { return false }
        k += 1
    }
    return true
}
