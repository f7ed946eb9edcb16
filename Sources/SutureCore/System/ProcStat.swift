import Foundation

/// The one reader of `/proc/PID/stat` (and `/proc/PID/task/TID/stat`), proc(5): the scanner, the
/// executor's probe and the engine all read process state and start time through it.
public enum ProcStat {
    /// The fields Suture uses.
    public struct Fields: Sendable, Hashable {
        /// Field 2, without the parentheses (up to 15 bytes; may contain spaces and parentheses).
        public var comm: String
        /// Field 3 (`R`, `S`, `D`, `Z`, `X`, …).
        public var state: Character
        /// Field 9, `PF_*` flags (`PF_KTHREAD` = 0x00200000).
        public var flags: UInt64
        /// Field 22, start time in clock ticks after boot.
        public var startTime: UInt64

        /// A kernel thread (`PF_KTHREAD`).
        public var isKernelThread: Bool { flags & 0x0020_0000 != 0 }
        /// A zombie or dead task.
        public var isZombie: Bool { state == "Z" || state == "X" || state == "x" }
    }

    /// Parses the text of a stat file (proc(5)): `pid (comm) state ppid …`. The comm is taken up to the
    /// *last* `)`, since it may itself contain `)` and spaces. Returns nil when malformed.
    public static func parse(_ text: String) -> Fields? {
        let bytes = Array(text.utf8)
        guard let open = bytes.firstIndex(of: UInt8(ascii: "(")),
            let close = bytes.lastIndex(of: UInt8(ascii: ")")), close > open
        else { return nil }
        let comm = String(decoding: bytes[(open + 1)..<close], as: UTF8.self)
        let rest = bytes[(close + 1)...].split(separator: UInt8(ascii: " "), omittingEmptySubsequences: true)
        // rest[0] is field 3 (state); field N is rest[N - 3].
        guard rest.count >= 20, rest[0].count == 1,
            let flags = UInt64(String(decoding: rest[9 - 3], as: UTF8.self)),
            let start = UInt64(String(decoding: rest[22 - 3], as: UTF8.self).filter { $0 != "\n" })
        else { return nil }
        return Fields(comm: comm, state: Character(UnicodeScalar(rest[0].first!)), flags: flags, startTime: start)
    }

    /// Reads and parses the stat file at `path`; nil when it cannot be read (the process is gone) or is
    /// malformed.
    public static func read(path: String) -> Fields? {
        guard case .content(let text) = LiveFS.read(path) else { return nil }
        return parse(text)
    }

    /// Reads `<root>/proc/<pid>/stat`, or `<root>/proc/<pid>/task/<tid>/stat` when `tid` is given.
    public static func read(pid: Int32, tid: Int32? = nil, root: String = "/") -> Fields? {
        read(path: LiveFS.join(root, tid.map { "/proc/\(pid)/task/\($0)/stat" } ?? "/proc/\(pid)/stat"))
    }
}
