import Foundation

/// Output formats of `suture plan` / `suture status`.
public enum RenderFormat: String, Sendable, Hashable, CaseIterable {
    /// Terminal text in the spirit of `terraform plan` (colour only when asked).
    case text
    /// JSON, `format_version` 1, sorted keys.
    case json
    /// GitHub-flavoured Markdown, for pull-request comments.
    case markdown
}

/// Renders plans (and status reports) as text, JSON or Markdown.
///
/// Text layout: a header, one entry per action in execution order — a symbol, the verb, what and where,
/// then the reason on an indented line — then the drift, notes and errors sections, then the summary line
/// (`Plan: 2 to install, 3 to activate, 1 to deactivate, 0 to remove.` or
/// `No changes. Live state matches the manifests.`).
///
/// Symbols (chosen to read well in a terminal and in a ```diff block of a pull request):
/// - `+` install: copy the bundle into the store;
/// - `>` activate: make the patch live (one line per process for user patches);
/// - `<` deactivate: make it not live;
/// - `-` remove: delete the bundle from the store;
/// - `!` drift, `*` note, `x` error.
///
/// Text and Markdown are produced from one intermediate document (`RenderedDocument`), so a new format is
/// one small writer.
public struct PlanRenderer: Sendable {
    /// Emit ANSI colours (the CLI sets this only for a TTY without `NO_COLOR`).
    public var color: Bool

    /// Creates a renderer.
    public init(color: Bool = false) { self.color = color }

    /// The symbol of an action kind (see the type's documentation).
    public static func symbol(_ kind: ActionKind) -> String {
        switch kind {
        case .install: return "+"
        case .activate: return ">"
        case .deactivate: return "<"
        case .remove: return "-"
        }
    }

    /// Counts per action kind.
    public static func counts(_ plan: Plan) -> [ActionKind: Int] {
        var counts: [ActionKind: Int] = [:]
        for kind in ActionKind.allCases { counts[kind] = 0 }
        for action in plan.actions { counts[action.kind, default: 0] += 1 }
        return counts
    }

    /// `Plan: 2 to install, 3 to activate, 1 to deactivate, 0 to remove.`, or
    /// `No changes. Live state matches the manifests.` when there are no actions and no errors.
    public static func summary(_ plan: Plan) -> String {
        if plan.actions.isEmpty && plan.errors.isEmpty { return "No changes. Live state matches the manifests." }
        let c = counts(plan)
        return "Plan: \(c[.install]!) to install, \(c[.activate]!) to activate, \(c[.deactivate]!) to deactivate, \(c[.remove]!) to remove."
    }

    /// Renders `plan` in `format`. `live`, when given, adds a header line naming the host.
    /// - Throws: `EncodingError` from JSON encoding (not expected for valid plans).
    public func render(_ plan: Plan, format: RenderFormat, live: LiveState? = nil) throws -> String {
        switch format {
        case .text: return text(plan, live: live)
        case .markdown: return markdown(plan, live: live)
        case .json: return try PlanRenderer.json(plan)
        }
    }

    // MARK: Text

    /// Terminal text (ends with a newline).
    public func text(_ plan: Plan, live: LiveState? = nil) -> String {
        let doc = RenderedDocument(plan: plan, live: live)
        var out = ""
        out.reserveCapacity(plan.actions.count * 200 + 1024)
        if let header = doc.header { out += header + "\n\n" }
        for section in doc.sections {
            out += paint(section.title + ":", .bold) + "\n"
            for item in section.items {
                let verb = item.verb.map { padded($0, 11) + " " } ?? ""
                out += "  " + paint(item.symbol, item.style) + " " + paint(verb, item.style) + item.headline + "\n"
                for detail in item.details { out += "      " + detail + "\n" }
            }
            out += "\n"
        }
        out += paint(doc.summary, doc.summaryStyle) + "\n"
        return out
    }

    // MARK: Markdown

    /// GitHub-flavoured Markdown: a heading, a list per section, the summary in bold.
    public func markdown(_ plan: Plan, live: LiveState? = nil) -> String {
        let doc = RenderedDocument(plan: plan, live: live)
        var out = "### Suture plan\n\n"
        if let header = doc.header { out += header + "\n\n" }
        for section in doc.sections {
            out += "#### \(section.title)\n\n"
            for item in section.items {
                let verb = item.verb.map { "**\($0)** " } ?? ""
                out += "- `\(item.symbol)` \(verb)\(markdownEscape(item.headline))"
                for detail in item.details { out += "  \n  " + markdownEscape(detail) }
                out += "\n"
            }
            out += "\n"
        }
        out += "**\(doc.summary)**\n"
        return out
    }

    private func markdownEscape(_ s: String) -> String {
        var out = ""
        for ch in s {
            if "\\`*_[]<>|#".contains(ch) { out.append("\\") }
            out.append(ch)
        }
        return out
    }

    // MARK: JSON

    /// JSON with `format_version` 1, sorted keys, pretty-printed, ending with a newline. The object is the
    /// `Plan` (decodable as one) plus a `summary` object `{install, activate, deactivate, remove}`.
    /// - Throws: `EncodingError`.
    public static func json(_ plan: Plan) throws -> String {
        try encodeJSON(PlanJSON(plan: plan))
    }

    /// Encodes any value as pretty, key-sorted JSON without escaped slashes, with a trailing newline.
    /// - Throws: `EncodingError`.
    public static func encodeJSON<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self) + "\n"
    }

    // MARK: Colour

    enum Style { case plain, install, activate, deactivate, remove, drift, note, error, bold, ok }

    func paint(_ s: String, _ style: Style) -> String {
        guard color, !s.isEmpty else { return s }
        let code: String
        switch style {
        case .plain: return s
        case .install, .activate, .ok: code = "32"
        case .deactivate, .drift: code = "33"
        case .remove, .error: code = "31"
        case .note: code = "36"
        case .bold: code = "1"
        }
        return "\u{1B}[\(code)m\(s)\u{1B}[0m"
    }
}

/// `s` followed by spaces up to `width` characters (no Foundation: this runs once per plan line).
func padded(_ s: String, _ width: Int) -> String {
    let count = s.count
    return count >= width ? s : s + String(repeating: " ", count: width - count)
}

/// The `suture plan --json` object.
struct PlanJSON: Encodable {
    let plan: Plan

    struct Summary: Encodable {
        let install, activate, deactivate, remove: Int
        let changes: Bool
    }

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", actions, drift, errors, liveFingerprint = "live_fingerprint", notes, summary
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(plan.formatVersion, forKey: .formatVersion)
        try c.encode(plan.actions, forKey: .actions)
        try c.encode(plan.drift, forKey: .drift)
        try c.encode(plan.errors, forKey: .errors)
        try c.encode(plan.liveFingerprint, forKey: .liveFingerprint)
        try c.encode(plan.notes, forKey: .notes)
        let counts = PlanRenderer.counts(plan)
        try c.encode(Summary(install: counts[.install]!, activate: counts[.activate]!,
                             deactivate: counts[.deactivate]!, remove: counts[.remove]!,
                             changes: !plan.actions.isEmpty), forKey: .summary)
    }
}

/// The format-independent content of a rendered plan.
struct RenderedDocument {
    struct Item {
        var symbol: String
        var verb: String?
        var headline: String
        var details: [String]
        var style: PlanRenderer.Style
    }

    struct Section {
        var title: String
        var items: [Item]
    }

    var header: String?
    var sections: [Section] = []
    var summary: String
    var summaryStyle: PlanRenderer.Style

    init(plan: Plan, live: LiveState?) {
        if let live {
            var parts: [String] = []
            if !live.hostname.isEmpty { parts.append("host \(live.hostname)") }
            if !live.kernelRelease.isEmpty { parts.append("kernel \(live.kernelRelease)") }
            parts.append("\(plural(live.processes.count, "relevant process", "relevant processes"))")
            parts.append("\(plural(live.store.count, "bundle")) in the store")
            header = "Live state: " + parts.joined(separator: ", ") + "."
        }
        if !plan.actions.isEmpty {
            sections.append(Section(title: "Actions, in execution order", items: plan.actions.map(RenderedDocument.item)))
        }
        let driftItems = plan.drift.filter { $0.kind != .targetNotRunning }
        let noteDrift = plan.drift.filter { $0.kind == .targetNotRunning }
        if !driftItems.isEmpty {
            sections.append(Section(title: "Drift", items: driftItems.map { d in
                Item(symbol: "!", verb: nil, headline: "\(d.patch): \(d.kind.rawValue)",
                     details: [d.message + (d.location.map { " (\($0))" } ?? "")], style: .drift)
            }))
        }
        if !noteDrift.isEmpty || !plan.notes.isEmpty {
            let items = noteDrift.map { d in
                Item(symbol: "*", verb: nil, headline: "\(d.patch): \(d.kind.rawValue)",
                     details: [d.message + (d.location.map { " (\($0))" } ?? "")], style: .note)
            } + plan.notes.map { Item(symbol: "*", verb: nil, headline: $0, details: [], style: .note) }
            sections.append(Section(title: "Notes", items: items))
        }
        if !plan.errors.isEmpty {
            sections.append(Section(title: "Errors", items: plan.errors.map { e in
                let lines = e.description.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                return Item(symbol: "x", verb: nil, headline: lines.first ?? "", details: Array(lines.dropFirst()), style: .error)
            }))
        }
        if plan.errors.isEmpty {
            summary = PlanRenderer.summary(plan)
            summaryStyle = plan.actions.isEmpty ? .ok : .bold
        } else {
            summary = "Error: the plan has \(plural(plan.errors.count, "error")); `suture apply` refuses it. " + PlanRenderer.summary(plan)
            summaryStyle = .error
        }
    }

    static func item(_ a: PlanAction) -> Item {
        var headline = a.patch
        switch (a.kind, a.patchKind) {
        case (.install, _): headline += " [\(a.patchKind.rawValue), \(a.uuid)] into the store"
        case (.remove, _): headline += " [\(a.patchKind.rawValue), \(a.uuid)] from the store"
        case (_, .user):
            if let pid = a.pid {
                headline += " in pid \(pid)"
                var parts: [String] = []
                if let comm = a.comm { parts.append(comm) }
                if let start = a.startTime { parts.append("start \(start)") }
                if !parts.isEmpty { headline += " (\(parts.joined(separator: ", ")))" }
            }
            if let path = a.targetPath { headline += ": \(path)" }
        case (_, .kernel):
            headline += " [kernel] livepatch \(a.module ?? "?")"
            if let path = a.targetPath { headline += " on \(path)" }
        }
        let style: PlanRenderer.Style
        switch a.kind {
        case .install: style = .install
        case .activate: style = .activate
        case .deactivate: style = .deactivate
        case .remove: style = .remove
        }
        return Item(symbol: PlanRenderer.symbol(a.kind), verb: a.kind.rawValue, headline: headline,
                    details: [a.reason + (a.location.map { " (\($0))" } ?? "")], style: style)
    }
}

/// Renders `StatusReport`s.
public struct StatusRenderer: Sendable {
    /// Emit ANSI colours.
    public var color: Bool

    /// Creates a renderer.
    public init(color: Bool = false) { self.color = color }

    /// Renders `report` in `format`.
    /// - Throws: `EncodingError` for JSON.
    public func render(_ report: StatusReport, format: RenderFormat) throws -> String {
        switch format {
        case .json: return try PlanRenderer.encodeJSON(report)
        case .text: return text(report)
        case .markdown: return markdown(report)
        }
    }

    /// A table: `NAME  KIND  STATUS  DECLARED  TARGET`, then per-process and per-module detail lines.
    public func text(_ report: StatusReport) -> String {
        var out = "Host \(report.hostname.isEmpty ? "?" : report.hostname), kernel \(report.kernelRelease.isEmpty ? "?" : report.kernelRelease)\n"
        if report.patches.isEmpty { return out + "No patches known from the store, the live state or the manifests.\n" }
        let rows = report.patches.map { p in
            [p.name, p.kind.rawValue, p.statusText, p.declared?.rawValue ?? "-", p.target ?? "-"]
        }
        let headers = ["NAME", "KIND", "STATUS", "DECLARED", "TARGET"]
        var widths = headers.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in i == cells.count - 1 ? c : padded(c, widths[i]) }
                .joined(separator: "  ")
        }
        out += "\n" + line(headers) + "\n"
        for (p, row) in zip(report.patches, rows) {
            var text = line(row)
            if color {
                let code: String
                switch p.status {
                case .activated, .accepted: code = p.conditions.isEmpty ? "32" : "33"
                case .deactivated: code = "33"
                case .notApplied: code = "2"
                }
                text = "\u{1B}[\(code)m\(text)\u{1B}[0m"
            }
            out += text + "\n"
            for d in detailLines(p) { out += "    " + d + "\n" }
        }
        return out
    }

    /// Markdown table with the same columns, details as a nested list under the table.
    public func markdown(_ report: StatusReport) -> String {
        var out = "### Suture status: \(report.hostname)\n\n| Name | Kind | Status | Declared | Target |\n|---|---|---|---|---|\n"
        for p in report.patches {
            out += "| \(p.name) | \(p.kind.rawValue) | \(p.statusText) | \(p.declared?.rawValue ?? "-") | \(p.target ?? "-") |\n"
        }
        for p in report.patches {
            let details = detailLines(p)
            guard !details.isEmpty else { continue }
            out += "\n**\(p.name)**\n\n" + details.map { "- \($0)\n" }.joined()
        }
        return out
    }

    func detailLines(_ p: PatchStatusEntry) -> [String] {
        var lines: [String] = []
        if let uuid = p.uuid, uuid != p.name { lines.append("uuid \(uuid)") }
        if let location = p.location { lines.append("declared at \(location)") }
        for problem in p.storeProblems { lines.append("store: \(problem)") }
        for m in p.modules {
            lines.append(m.loaded
                ? "livepatch \(m.module): enabled=\(m.enabled == true ? 1 : 0) transition=\(m.transition == true ? 1 : 0)"
                : "livepatch \(m.module): not loaded")
        }
        for proc in p.processes {
            var s = "pid \(proc.pid) (\(proc.comm), start \(proc.startTime)): \(proc.live ? "live" : "not live")"
            if let path = proc.targetPath { s += " in \(path)" }
            if let state = proc.markerState, state != "present", state != "active" { s += " [marker \(state)]" }
            lines.append(s)
        }
        lines += p.notes
        return lines
    }
}
