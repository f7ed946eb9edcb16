#if canImport(Glibc)
import Glibc
#endif

/// Who this host is: the facts manifests select hosts by (`spec.hosts`) and that identify a boot.
public struct HostInfo: Sendable, Hashable, Codable {
    /// `/proc/sys/kernel/hostname`.
    public var hostname: String
    /// `/proc/sys/kernel/random/boot_id` (a uuid, new at every boot).
    public var bootID: String
    /// `/proc/sys/kernel/osrelease` (what `uname -r` prints).
    public var kernelRelease: String
    /// `/etc/suture/labels`.
    public var labels: [String: String]

    /// Memberwise initializer.
    public init(hostname: String = "", bootID: String = "", kernelRelease: String = "", labels: [String: String] = [:]) {
        self.hostname = hostname
        self.bootID = bootID
        self.kernelRelease = kernelRelease
        self.labels = labels
    }
}

/// A bad line in the labels file.
public struct LabelsFileError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The labels file.
    public var path: String
    /// 1-based line number.
    public var line: Int
    /// What is wrong.
    public var message: String

    /// `path:line: error: message`.
    public var description: String { "\(path):\(line): error: \(message)" }
}

/// Reads ``HostInfo`` under a root path.
///
/// The labels file `/etc/suture/labels` holds `key=value` lines; blank lines and lines starting with `#`
/// (after leading spaces) are ignored; spaces around key and value are trimmed. Keys are 1–63 characters
/// from `[A-Za-z0-9._/-]`. A missing file means no labels.
public struct HostInfoReader: Sendable {
    /// The root (`/` in production).
    public let root: String
    /// Path of the labels file, relative to the root.
    public static let labelsPath = "/etc/suture/labels"

    /// Creates a reader of `root`.
    public init(root: String = "/") {
        self.root = root
    }

    /// Reads hostname, boot id, kernel release and labels.
    ///
    /// A `/proc/sys/kernel` file that is absent gives an empty string (except the hostname, which falls
    /// back to `gethostname(2)` when the root is `/`).
    /// - Throws: ``LabelsFileError`` when the labels file has a bad line, duplicate key, or cannot be read.
    public func read() throws(LabelsFileError) -> HostInfo {
        var info = HostInfo()
        info.hostname = LiveFS.readTrimmed(LiveFS.join(root, "/proc/sys/kernel/hostname")) ?? ""
        if info.hostname.isEmpty && (root == "/" || root.isEmpty) {
            var buffer = [CChar](repeating: 0, count: 256)
            if gethostname(&buffer, buffer.count - 1) == 0 {
                info.hostname = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
        }
        info.bootID = LiveFS.readTrimmed(LiveFS.join(root, "/proc/sys/kernel/random/boot_id")) ?? ""
        info.kernelRelease = LiveFS.readTrimmed(LiveFS.join(root, "/proc/sys/kernel/osrelease")) ?? ""
        info.labels = try readLabels()
        return info
    }

    /// Reads and parses the labels file; empty when it does not exist.
    /// - Throws: ``LabelsFileError``.
    public func readLabels() throws(LabelsFileError) -> [String: String] {
        let file = LiveFS.join(root, Self.labelsPath)
        switch LiveFS.read(file) {
        case .absent: return [:]
        case let .failed(code): throw LabelsFileError(path: file, line: 0, message: "cannot read: \(LiveFS.describe(errno: code))")
        case let .content(text): return try Self.parseLabels(text, path: file)
        }
    }

    /// Parses labels text (format above); `path` names the file in errors.
    /// - Throws: ``LabelsFileError`` naming the line.
    public static func parseLabels(_ text: String, path: String) throws(LabelsFileError) -> [String: String] {
        var labels: [String: String] = [:]
        var number = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            let line = LiveFS.trimmed(String(raw))
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw LabelsFileError(path: path, line: number, message: "expected key=value, found '\(line)'")
            }
            let key = LiveFS.trimmed(String(line[..<equals]))
            let value = LiveFS.trimmed(String(line[line.index(after: equals)...]))
            guard isValidKey(key) else {
                throw LabelsFileError(path: path, line: number,
                                      message: "invalid label key '\(key)' (1-63 characters of A-Z a-z 0-9 . _ / -)")
            }
            if labels[key] != nil {
                throw LabelsFileError(path: path, line: number, message: "duplicate label key '\(key)'")
            }
            labels[key] = value
        }
        return labels
    }

    private static func isValidKey(_ key: String) -> Bool {
        guard !key.isEmpty, key.utf8.count <= 63 else { return false }
        return key.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
                || c == 0x2E || c == 0x5F || c == 0x2F || c == 0x2D
        }
    }
}
