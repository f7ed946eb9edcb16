import Foundation

/// The file `suture plan --out FILE` writes and `suture apply FILE` reads: the plan, the desired state it
/// was made for (bundle paths and digests, stall policies) and the live state it was made from, so that
/// apply can refuse a stale plan and say what changed (`LiveStateFingerprint.diff`).
///
/// JSON, `format_version` 1, sorted keys. A reader must reject another major version.
public struct SavedPlan: Codable, Sendable, Hashable {
    /// Format version (1).
    public var formatVersion: Int
    /// The plan; `plan.liveFingerprint` is the fingerprint of `live`.
    public var plan: Plan
    /// The desired state the plan was made for.
    public var desired: DesiredState
    /// The live state the plan was made from.
    public var live: LiveState

    /// Memberwise initializer.
    public init(formatVersion: Int = 1, plan: Plan, desired: DesiredState, live: LiveState) {
        self.formatVersion = formatVersion
        self.plan = plan
        self.desired = desired
        self.live = live
    }

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", plan, desired, live
    }

    /// The JSON text (pretty, sorted keys, trailing newline).
    /// - Throws: `EncodingError`.
    public func encoded() throws -> String { try PlanRenderer.encodeJSON(self) }

    /// Decodes a saved plan and checks it.
    ///
    /// - Throws: `DiagnosticError` when the text is not a saved plan, has another `format_version`, or its
    ///   fingerprint does not match its own live state (the file was edited).
    public static func decode(_ data: Data, file: String) throws -> SavedPlan {
        let saved: SavedPlan
        do {
            saved = try JSONDecoder().decode(SavedPlan.self, from: data)
        } catch {
            throw DiagnosticError(Diagnostic(.error, "\(file) is not a saved plan (`suture plan --out`): \(error)"))
        }
        guard saved.formatVersion == 1 else {
            throw DiagnosticError(Diagnostic(.error, "\(file) has format_version \(saved.formatVersion); this suture reads 1"))
        }
        guard LiveStateFingerprint.compute(saved.live) == saved.plan.liveFingerprint else {
            throw DiagnosticError(Diagnostic(.error, "\(file): the plan's live_fingerprint does not match its recorded live state (the file was edited)"))
        }
        return saved
    }

    /// Whether `current` still has the fingerprint the plan was made from; when not, the differences.
    ///
    /// - Returns: an empty array when the plan is fresh; otherwise `LiveStateFingerprint.diff` lines (at
    ///   least one).
    public func staleness(against current: LiveState) -> [String] {
        guard LiveStateFingerprint.compute(current) != plan.liveFingerprint else { return [] }
        let lines = LiveStateFingerprint.diff(live, current)
        return lines.isEmpty ? ["the live state fingerprint changed"] : lines
    }
}
