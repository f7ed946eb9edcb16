import Foundation

/// The plan for one host made from a live-state snapshot (`suture plan --live`), with what the renderer
/// needs to head its section.
public struct HostPlan: Sendable {
    /// The host's name from the snapshot.
    public var hostname: String
    /// Path of the snapshot file as given.
    public var snapshotPath: String
    /// `taken_at` of the snapshot.
    public var takenAt: String
    /// Age of the snapshot in seconds at the reference time, `nil` if `taken_at` does not parse.
    public var ageSeconds: Double?
    /// Names of the PatchSets that select this host (empty: none does).
    public var patchSets: [String]
    /// The plan.
    public var plan: Plan
    /// The snapshot's live state.
    public var live: LiveState

    /// Memberwise initializer.
    public init(hostname: String, snapshotPath: String, takenAt: String, ageSeconds: Double?, patchSets: [String],
                plan: Plan, live: LiveState) {
        self.hostname = hostname
        self.snapshotPath = snapshotPath
        self.takenAt = takenAt
        self.ageSeconds = ageSeconds
        self.patchSets = patchSets
        self.plan = plan
        self.live = live
    }

    /// `host web-1 (snapshot hosts/web-1.json taken 2026-11-29T19:58:00Z, 3 min old)`.
    public var heading: String {
        var age = ""
        if let ageSeconds { age = ", \(LiveSnapshot.describeAge(seconds: ageSeconds)) old" }
        return "host \(hostname) (snapshot \(snapshotPath) taken \(takenAt)\(age))"
    }
}

/// Renders the plans of several hosts (`suture plan --live DIR`): text sections, JSON, or a Markdown
/// pull-request comment with one summary table and a section per host. Output depends only on its inputs
/// (the reference time for ages is an input), so the same manifests and snapshots give the same bytes.
public struct HostPlanRenderer: Sendable {
    /// ANSI colour in text output.
    public var color: Bool

    /// Creates a renderer.
    public init(color: Bool = false) { self.color = color }

    /// Renders `hosts` (already sorted by the caller) in `format`.
    /// - Throws: `EncodingError` from JSON encoding (not expected).
    public func render(_ hosts: [HostPlan], format: RenderFormat) throws -> String {
        switch format {
        case .text: return text(hosts)
        case .markdown: return markdown(hosts)
        case .json: return try json(hosts)
        }
    }

    /// One section per host, each the planner's text output under a heading line.
    public func text(_ hosts: [HostPlan]) -> String {
        let renderer = PlanRenderer(color: color)
        var out = ""
        for (index, host) in hosts.enumerated() {
            if index > 0 { out += "\n" }
            out += "=== \(host.heading) ===\n"
            if host.patchSets.isEmpty { out += "No PatchSet selects this host.\n" }
            out += renderer.text(host.plan, live: nil)
        }
        return out
    }

    /// A pull-request comment: a summary table (one row per host), then per host a section with the
    /// planner's Markdown (actions with reasons, drift, errors).
    public func markdown(_ hosts: [HostPlan]) -> String {
        var out = "## Suture plan\n\n"
        out += "| Host | Snapshot age | Install | Activate | Deactivate | Remove | Errors | Drift |\n"
        out += "|---|---|---:|---:|---:|---:|---:|---:|\n"
        for host in hosts {
            let counts = PlanRenderer.counts(host.plan)
            let age = host.ageSeconds.map { LiveSnapshot.describeAge(seconds: $0) } ?? "unknown"
            out += "| `\(host.hostname)` | \(age) | \(counts[.install] ?? 0) | \(counts[.activate] ?? 0) | "
            out += "\(counts[.deactivate] ?? 0) | \(counts[.remove] ?? 0) | \(host.plan.errors.count) | \(host.plan.drift.count) |\n"
        }
        out += "\n"
        let renderer = PlanRenderer(color: false)
        for host in hosts {
            out += "<details\(host.plan.isEmpty && host.plan.errors.isEmpty ? "" : " open")>\n"
            out += "<summary><code>\(htmlEscape(host.hostname))</code>: \(htmlEscape(PlanRenderer.summary(host.plan)))</summary>\n\n"
            out += "Snapshot `\(host.snapshotPath)` taken \(host.takenAt)"
            if let age = host.ageSeconds { out += " (\(LiveSnapshot.describeAge(seconds: age)) old)" }
            out += ".\n\n"
            if host.patchSets.isEmpty { out += "_No PatchSet selects this host._\n\n" }
            // The planner's Markdown, one heading level down so it nests under the table.
            let body = renderer.markdown(host.plan, live: nil)
                .replacingOccurrences(of: "#### ", with: "##### ")
                .replacingOccurrences(of: "### Suture plan\n\n", with: "")
            out += body
            out += "\n</details>\n\n"
        }
        return out
    }

    /// `{"format_version": 1, "hosts": [{"hostname", "snapshot", "taken_at", "age_seconds", "patch_sets", "plan"}]}`.
    /// - Throws: `EncodingError`.
    public func json(_ hosts: [HostPlan]) throws -> String {
        struct Entry: Encodable {
            var hostname: String
            var snapshot: String
            var takenAt: String
            var ageSeconds: Double?
            var patchSets: [String]
            var plan: Plan
            enum CodingKeys: String, CodingKey {
                case hostname, snapshot, takenAt = "taken_at", ageSeconds = "age_seconds", patchSets = "patch_sets", plan
            }
        }
        struct Document: Encodable {
            var formatVersion = 1
            var hosts: [Entry]
            enum CodingKeys: String, CodingKey { case formatVersion = "format_version", hosts }
        }
        let doc = Document(hosts: hosts.map {
            Entry(hostname: $0.hostname, snapshot: $0.snapshotPath, takenAt: $0.takenAt,
                  ageSeconds: $0.ageSeconds.map { $0.rounded() }, patchSets: $0.patchSets, plan: $0.plan)
        })
        return try PlanRenderer.encodeJSON(doc)
    }

    private func htmlEscape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }
}
