import Foundation
import Logging
internal import CSystemd

/// A swift-log `LogHandler` that writes structured entries to journald with `sd_journal_sendv(3)`.
///
/// Every entry carries `MESSAGE`, `PRIORITY` (syslog levels: critical 2, error 3, warning 4, notice 5,
/// info 6, debug/trace 7), `SYSLOG_IDENTIFIER`, `CODE_FILE`/`CODE_LINE`/`CODE_FUNC`, and one field per
/// metadata key, upper-cased with every character outside `[A-Z0-9_]` replaced by `_` (journal field
/// rules, systemd.journal-fields(7)): the executor's `suture_patch`, `suture_action`, `suture_pid`,
/// `suture_result` become `SUTURE_PATCH`, `SUTURE_ACTION`, `SUTURE_PID`, `SUTURE_RESULT`.
public struct JournaldLogHandler: LogHandler {
    /// Handler metadata (merged under the per-call metadata).
    public var metadata: Logger.Metadata = [:]
    /// Minimum level logged.
    public var logLevel: Logger.Level = .info
    /// `SYSLOG_IDENTIFIER`.
    public let identifier: String

    /// Creates a handler; `identifier` becomes `SYSLOG_IDENTIFIER` (default `suture`).
    public init(identifier: String = "suture") { self.identifier = identifier }

    /// Metadata access (value semantics).
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Sends one entry; errors from journald are ignored (logging never fails a run).
    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        let fields = JournaldLogHandler.fields(level: event.level, message: event.message.description,
                                               metadata: merged, identifier: identifier, file: event.file,
                                               function: event.function, line: event.line)
        _ = JournaldLogHandler.send(fields)
    }

    /// The journal fields of one entry, `KEY=value` strings in a stable order (fixed fields first, then
    /// metadata sorted by key).
    public static func fields(level: Logger.Level, message: String, metadata: Logger.Metadata,
                              identifier: String, file: String, function: String, line: UInt) -> [String] {
        var out = ["MESSAGE=\(message)", "PRIORITY=\(priority(level))", "SYSLOG_IDENTIFIER=\(identifier)",
                   "CODE_FILE=\(file)", "CODE_LINE=\(line)", "CODE_FUNC=\(function)"]
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            out.append("\(fieldName(key))=\(value)")
        }
        return out
    }

    /// syslog priority of a swift-log level.
    public static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }

    /// A journal field name for a metadata key: upper case, `[A-Z0-9_]` only, not starting with `_` or a
    /// digit (a `SUTURE_` prefix is added then), at most 64 characters.
    public static func fieldName(_ key: String) -> String {
        var name = String(key.uppercased().unicodeScalars.map { s -> Character in
            (s >= "A" && s <= "Z") || (s >= "0" && s <= "9") || s == "_" ? Character(s) : "_"
        })
        if name.isEmpty || name.first == "_" || name.first!.isNumber { name = "SUTURE_" + name }
        return String(name.prefix(64))
    }

    /// Sends `fields` with `sd_journal_sendv`. Returns 0 or a negative errno. Note that libsystemd returns 0
    /// when no journald listens (ENOENT is ignored), so this cannot detect journald.
    @discardableResult
    public static func send(_ fields: [String]) -> Int32 {
        let strings = fields.map { strdup($0)! }
        defer { strings.forEach { free($0) } }
        var iov = strings.map { iovec(iov_base: UnsafeMutableRawPointer($0), iov_len: strlen($0)) }
        return iov.withUnsafeMutableBufferPointer { buf in sd_journal_sendv(buf.baseAddress, Int32(buf.count)) }
    }

    /// True when logs should go to journald: `JOURNAL_STREAM` is set (a systemd service), or the journald
    /// socket exists and stderr is not a terminal (`SUTURE_LOG=stderr|journal` overrides).
    public static var shouldUseJournal: Bool {
        let env = ProcessInfo.processInfo.environment
        if let forced = env["SUTURE_LOG"] { return forced == "journal" }
        if env["JOURNAL_STREAM"] != nil { return true }
        return access("/run/systemd/journal/socket", F_OK) == 0 && isatty(2) == 0
    }
}

/// `sd_notify(3)` for `Type=notify` services: READY, STATUS, STOPPING.
public enum SystemdNotifier {
    /// Sends `state` (newline-separated `KEY=value` assignments, e.g. `READY=1\nSTATUS=applying`).
    /// - Returns: > 0 when sent, 0 when `NOTIFY_SOCKET` is unset, < 0 (negative errno) on error.
    @discardableResult
    public static func notify(_ state: String) -> Int32 { sd_notify(0, state) }

    /// `READY=1` with a status line.
    @discardableResult
    public static func ready(status: String) -> Int32 { notify("READY=1\nSTATUS=\(status)") }

    /// `STATUS=…`.
    @discardableResult
    public static func status(_ text: String) -> Int32 { notify("STATUS=\(text)") }

    /// `STOPPING=1` with a status line.
    @discardableResult
    public static func stopping(status: String) -> Int32 { notify("STOPPING=1\nSTATUS=\(status)") }
}
