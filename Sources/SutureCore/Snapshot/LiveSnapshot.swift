import Foundation

/// A saved live state: everything the planner needs from one host, as one versioned JSON document
/// (`suture snapshot`), so `suture plan --live FILE` can plan for a host without reading its `/proc` and
/// `/sys` (the code-review case: the CI job is not root on the hosts). Schema:
/// `schema/live-state.schema.json`.
///
/// Shape: `{"format_version": 1, "taken_at": "2026-11-29T19:58:00Z", "suture_version": "0.1.0",
/// "live": <LiveState>}`. Like Terraform's JSON formats, minor changes are additive and a reader refuses an
/// unknown major `format_version`. The document holds no secrets: no environment, no command lines (only
/// `comm`), no file contents.
public struct LiveSnapshot: Codable, Sendable, Hashable {
    /// The format version this code writes and the highest major version it reads.
    public static let currentFormatVersion = 1

    /// Format version of the document.
    public var formatVersion: Int
    /// When it was taken, RFC 3339 UTC with seconds (`2026-11-29T19:58:00Z`).
    public var takenAt: String
    /// The `suture --version` that wrote it.
    public var sutureVersion: String
    /// The live state.
    public var live: LiveState

    /// Memberwise initializer.
    public init(formatVersion: Int = LiveSnapshot.currentFormatVersion, takenAt: String, sutureVersion: String,
                live: LiveState) {
        self.formatVersion = formatVersion
        self.takenAt = takenAt
        self.sutureVersion = sutureVersion
        self.live = live
    }

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", takenAt = "taken_at", sutureVersion = "suture_version", live
    }

    /// Makes a snapshot of `live` taken at `date`, with every list sorted so the same host state gives the
    /// same bytes.
    public static func make(live: LiveState, at date: Date, sutureVersion: String) -> LiveSnapshot {
        LiveSnapshot(takenAt: rfc3339(date), sutureVersion: sutureVersion, live: live.canonicalized())
    }

    /// The document as pretty-printed JSON with sorted keys, ending with a newline (deterministic).
    /// - Throws: `EncodingError` (not expected).
    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(self)
        data.append(0x0A)
        return data
    }

    /// Seconds between `takenAt` and `now` (negative if the snapshot is from the future), or `nil` when
    /// `takenAt` does not parse.
    public func age(now: Date) -> Double? {
        guard let taken = LiveSnapshot.parseRFC3339(takenAt) else { return nil }
        return now.timeIntervalSince(taken)
    }

    /// Reads and checks a snapshot file.
    ///
    /// - Throws: `DiagnosticError` with one error naming the file: unreadable file, not JSON (e.g. a
    ///   truncated file), missing or unknown major `format_version`, or a field of the wrong type or missing
    ///   (named by its path, e.g. `live.processes[3].pid`).
    public static func read(from path: String) throws(DiagnosticError) -> LiveSnapshot {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw DiagnosticError(Diagnostic(.error, "\(path): cannot read snapshot: \((error as NSError).localizedDescription)"))
        }
        return try decode(data, name: path)
    }

    /// Decodes a snapshot from `data`; `name` is used in messages. Errors as for `read(from:)`.
    public static func decode(_ data: Data, name: String) throws(DiagnosticError) -> LiveSnapshot {
        func fail(_ message: String) -> DiagnosticError {
            DiagnosticError(Diagnostic(.error, "\(name): \(message)"))
        }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw fail("not a valid JSON document (truncated or edited by hand?)")
        }
        guard let top = object as? [String: Any] else {
            throw fail("not a Suture live-state snapshot: the top level must be a JSON object")
        }
        guard let version = top["format_version"] as? Int else {
            throw fail("not a Suture live-state snapshot: no integer \"format_version\" at the top level")
        }
        if version > currentFormatVersion || version < 1 {
            throw fail("snapshot format_version \(version) is not supported by this suture (reads 1...\(currentFormatVersion)); take the snapshot with a matching suture, or upgrade")
        }
        do {
            return try JSONDecoder().decode(LiveSnapshot.self, from: data)
        } catch let error as DecodingError {
            throw fail(describe(error))
        } catch {
            throw fail("cannot decode snapshot: \(error)")
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            var out = ""
            for key in keys {
                if let index = key.intValue { out += "[\(index)]" } else { out += (out.isEmpty ? "" : ".") + key.stringValue }
            }
            return out.isEmpty ? "(top level)" : out
        }
        switch error {
        case let .typeMismatch(type, context):
            return "field \(path(context.codingPath)): expected \(type)"
        case let .valueNotFound(type, context):
            return "field \(path(context.codingPath)): expected \(type), found null"
        case let .keyNotFound(key, context):
            return "field \(path(context.codingPath + [key])) is missing"
        case let .dataCorrupted(context):
            return "field \(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "cannot decode snapshot: \(error)"
        }
    }

    static func rfc3339(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: date)
    }

    static func parseRFC3339(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }

    /// `3 min`, `2 h 5 min`, `4 d 1 h`: a short human age for plan headers.
    public static func describeAge(seconds: Double) -> String {
        if seconds < 0 { return "from the future (clock skew)" }
        let s = Int(seconds)
        if s < 60 { return "\(s) s" }
        if s < 3600 { return "\(s / 60) min" }
        if s < 86400 { return "\(s / 3600) h \(s % 3600 / 60) min" }
        return "\(s / 86400) d \(s % 86400 / 3600) h"
    }
}
