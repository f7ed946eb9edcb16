import Foundation

/// The file `suture plan --out FILE` writes and `suture apply FILE` reads: the plan, the desired state it
/// was made for (bundle paths and digests, stall policies) and the live state it was made from, so that
/// apply can refuse a stale plan and say what changed (`LiveStateFingerprint.diff`).
///
/// JSON, sorted keys. `format_version` 2 adds `depends_fingerprint`, the fingerprint of the live state
/// restricted to what the plan depends on (`PlanDependencies`); staleness is judged on it. Files of
/// version 1 (no such field) are still read and judged on the whole live state's fingerprint.
public struct SavedPlan: Codable, Sendable, Hashable {
    /// Format version (2; 1 is still read).
    public var formatVersion: Int
    /// `LiveStateFingerprint.compute` of `live` restricted by `PlanDependencies(desired:plan:)`; nil in
    /// version 1 files.
    public var dependsFingerprint: String?
    /// The plan; `plan.liveFingerprint` is the fingerprint of `live`.
    public var plan: Plan
    /// The desired state the plan was made for.
    public var desired: DesiredState
    /// The live state the plan was made from.
    public var live: LiveState

    /// Memberwise initializer.
    /// A version 2 saved plan; `dependsFingerprint` is computed from `live`.
    public init(plan: Plan, desired: DesiredState, live: LiveState) {
        self.formatVersion = 2
        self.plan = plan
        self.desired = desired
        self.live = live
        self.dependsFingerprint = LiveStateFingerprint.compute(
            PlanDependencies(desired: desired, plan: plan).restrict(live))
    }

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", plan, desired, live, dependsFingerprint = "depends_fingerprint"
    }

    /// The dependencies staleness is judged on.
    public var dependencies: PlanDependencies { PlanDependencies(desired: desired, plan: plan) }

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
        guard saved.formatVersion == 1 || saved.formatVersion == 2 else {
            throw DiagnosticError(Diagnostic(.error, "\(file) has format_version \(saved.formatVersion); this suture reads 1 and 2"))
        }
        if saved.formatVersion == 2 {
            guard let depends = saved.dependsFingerprint,
                  LiveStateFingerprint.compute(saved.dependencies.restrict(saved.live)) == depends else {
                throw DiagnosticError(Diagnostic(.error, "\(file): the plan's depends_fingerprint does not match its recorded live state (the file was edited)"))
            }
        }
        guard LiveStateFingerprint.compute(saved.live) == saved.plan.liveFingerprint else {
            throw DiagnosticError(Diagnostic(.error, "\(file): the plan's live_fingerprint does not match its recorded live state (the file was edited)"))
        }
        return saved
    }

    /// Whether the part of `current` the plan depends on (`PlanDependencies`; the whole live state for a
    /// version 1 file) still has the fingerprint the plan was made from; when not, the differences.
    ///
    /// - Returns: an empty array when the plan is fresh; otherwise `LiveStateFingerprint.diff` lines over
    ///   the restricted states (at least one).
    public func staleness(against current: LiveState) -> [String] {
        guard let depends = dependsFingerprint else {
            guard LiveStateFingerprint.compute(current) != plan.liveFingerprint else { return [] }
            let lines = LiveStateFingerprint.diff(live, current)
            return lines.isEmpty ? ["the live state fingerprint changed"] : lines
        }
        let deps = dependencies
        let now = deps.restrict(current)
        guard LiveStateFingerprint.compute(now) != depends else { return [] }
        let lines = LiveStateFingerprint.diff(deps.restrict(live), now)
        return lines.isEmpty ? ["the live state fingerprint changed"] : lines
    }
}
