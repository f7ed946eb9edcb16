import Foundation
import Yams

/// What a YAML scalar is, after YAML 1.1 tag resolution (the rules of Yams' `Resolver.default`, which
/// mirror the YAML 1.1 type repository: `yes`/`on` are booleans, `1.10` is a float, `010` is octal).
enum ScalarKind: Equatable {
    case string, null, bool, int, float, timestamp
    /// An explicit tag Suture does not accept (e.g. `!custom`, `!!binary`).
    case unsupportedTag(String)
}

/// Walks a composed YAML `Node` tree, checking shapes and collecting diagnostics with positions.
///
/// Every accessor reports a precise error (with the node's `Mark`) and returns `nil` on bad input, so
/// a caller can keep going and collect every error of a file in one run.
final class NodeReader {
    let source: SourceText
    private(set) var diagnostics: [Diagnostic] = []

    init(source: SourceText) {
        self.source = source
    }

    // MARK: Diagnostics

    /// The location of `node` (its `Mark`; 1:1 when Yams gave none).
    func location(of node: Node) -> SourceLocation {
        let mark = node.mark
        return source.location(line: mark?.line ?? 1, column: mark?.column ?? 1)
    }

    func error(_ message: String, at node: Node, notes: [Diagnostic] = []) {
        diagnostics.append(source.diagnostic(.error, message, at: location(of: node), notes: notes))
    }

    func error(_ message: String, at location: SourceLocation, notes: [Diagnostic] = []) {
        diagnostics.append(source.diagnostic(.error, message, at: location, notes: notes))
    }

    func warning(_ message: String, at location: SourceLocation, notes: [Diagnostic] = []) {
        diagnostics.append(source.diagnostic(.warning, message, at: location, notes: notes))
    }

    var errorCount: Int { diagnostics.lazy.filter { $0.severity == .error }.count }

    // MARK: Scalar classification

    /// Classifies a scalar the way YAML 1.1 (and Yams' default resolver) would type it.
    ///
    /// Quoted and block scalars carry an explicit `str` tag from the parser; only plain scalars are
    /// resolved. Most plain scalars start with a letter or `/` and are not one of the YAML 1.1 boolean
    /// or null words: those skip the regular expressions entirely (the loader stays fast).
    static func kind(of scalar: Node.Scalar) -> ScalarKind {
        let tag = scalar.tag.rawValue
        if !tag.isEmpty {
            switch tag {
            case Tag.Name.str.rawValue, Tag.Name.nonSpecific.rawValue: return .string
            case Tag.Name.int.rawValue: return .int
            case Tag.Name.float.rawValue: return .float
            case Tag.Name.bool.rawValue: return .bool
            case Tag.Name.null.rawValue: return .null
            case Tag.Name.timestamp.rawValue: return .timestamp
            default: return .unsupportedTag(tag)
            }
        }
        let text = scalar.string
        guard let first = text.unicodeScalars.first else { return .null }
        if text == "~" { return .null }
        if first == "/" || (first.properties.isAlphabetic && first != "_") {
            if boolWords.contains(text) { return .bool }
            if nullWords.contains(text) { return .null }
            return .string
        }
        // `../bundles/x`, `./x`: a leading dot is only typed when `.5`, `.inf` or `.nan` follows.
        if first == ".", let second = text.unicodeScalars.dropFirst().first, !("0"..."9").contains(second),
           !dotWords.contains(text.dropFirst().drop { $0 == "-" || $0 == "+" }.description) {
            return .string
        }
        // Ints, floats and timestamps use only these characters (versions like `3.0.15-1~deb12u1` do not).
        if !text.unicodeScalars.allSatisfy({ numericScalars.contains($0) }) { return .string }
        switch Resolver.default.resolveTag(of: .scalar(Node.Scalar(text))) {
        case .bool: return .bool
        case .int: return .int
        case .float: return .float
        case .null: return .null
        case .timestamp: return .timestamp
        default: return .string
        }
    }

    static let boolWords: Set<String> = ["yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE",
                                         "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF"]
    static let nullWords: Set<String> = ["null", "Null", "NULL"]
    static let dotWords: Set<String> = ["inf", "Inf", "INF", "nan", "NaN", "NAN"]
    /// Every character a YAML 1.1 int, float or timestamp can contain (`0x1F`, `0o17`, `0b101`, `1_000`,
    /// `1:30`, `6.1e3`, `.inf`, `2024-01-01T10:00:00.5Z`, `2024-01-01 10:00:00 +01:00`).
    static let numericScalars: Set<Unicode.Scalar> = Set("0123456789abcdefABCDEFxXoOnNiItTzZ_.:+- \t".unicodeScalars)
    /// The booleans accepted for boolean fields: YAML 1.2 core spellings only.
    static let strictTrue: Set<String> = ["true", "True", "TRUE"]
    static let strictFalse: Set<String> = ["false", "False", "FALSE"]

    /// How a node is described in "found …" messages.
    static func describe(_ node: Node) -> String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case let .scalar(scalar):
            switch kind(of: scalar) {
            case .string: return "the string \"\(scalar.string)\""
            case .null: return "nothing (null)"
            case .bool: return "`\(scalar.string)`, which YAML reads as a boolean"
            case .int: return "`\(scalar.string)`, which YAML reads as an integer"
            case .float: return "`\(scalar.string)`, which YAML reads as a number\(floatHint(scalar.string))"
            case .timestamp: return "`\(scalar.string)`, which YAML reads as a timestamp"
            case let .unsupportedTag(tag): return "a value tagged \(tag)"
            }
        }
    }

    /// ` (1.1)` when the float reads differently from how it is written (`1.10`, `7.0`), else empty.
    private static func floatHint(_ text: String) -> String {
        guard let value = Double(text.replacingOccurrences(of: "_", with: "")) else { return "" }
        let shown = value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
        return shown == text ? "" : " (\(shown))"
    }

    // MARK: Typed accessors

    /// A mapping's entries keyed by name, after checking every key against `allowed`.
    ///
    /// Unknown keys are errors with a did-you-mean suggestion; non-string keys are errors.
    /// - Returns: `nil` (after reporting) when `node` is not a mapping.
    func mapping(_ node: Node, _ what: String, allowed: [String]) -> Fields? {
        guard case let .mapping(mapping) = node else {
            error("expected a mapping for \(what), found \(Self.describe(node))", at: node)
            return nil
        }
        var fields = Fields(node: node, what: what)
        for (key, value) in entries(of: mapping, what, mergeFailed: &fields.mergeFailed) {
            guard case let .scalar(keyScalar) = key, !keyScalar.string.isEmpty else {
                error("keys in \(what) must be strings, found \(Self.describe(key))", at: key)
                continue
            }
            let name = keyScalar.string
            guard allowed.contains(name) else {
                if let suggestion = unknownKey(name, at: key, in: what, allowed: allowed) {
                    fields.suggested.insert(suggestion)
                }
                continue
            }
            fields.entries[name] = (key, value)
        }
        return fields
    }

    // MARK: Merge keys

    /// Whether `key` is a YAML merge key: a plain (unquoted) `<<`. Its tag is not checked: Yams'
    /// duplicate-key check resolves the tags of mapping keys in place (to `str` with the basic resolver).
    static func isMergeKey(_ key: Node) -> Bool {
        guard case let .scalar(scalar) = key else { return false }
        return scalar.string == "<<" && scalar.style == .plain
    }

    /// The entries of `mapping` with YAML merge keys applied (<https://yaml.org/type/merge.html>):
    /// `<<: *defaults` adds the entries of the mapping `defaults` names, `<<: [*a, *b]` those of each
    /// mapping in turn. A key written in the mapping itself wins over a merged one; among merged
    /// mappings the earlier one wins; merged mappings may merge in turn.
    ///
    /// Every entry keeps its own nodes, so a diagnostic about a merged value points at the line where
    /// it is written (under the anchor), not at the `<<`. A `<<` whose value is not a mapping or a list
    /// of mappings is reported, contributes nothing and sets `mergeFailed` (the keys it would have
    /// supplied are then not reported missing).
    func entries(of mapping: Node.Mapping, _ what: String, mergeFailed: inout Bool) -> [(key: Node, value: Node)] {
        var own: [(key: Node, value: Node)] = []
        var merged: [(key: Node, value: Node)] = []
        for (key, value) in mapping {
            guard Self.isMergeKey(key) else {
                own.append((key, value))
                continue
            }
            switch value {
            case let .mapping(source):
                merged += entries(of: source, what, mergeFailed: &mergeFailed)
            case let .sequence(sources):
                for source in sources {
                    guard case let .mapping(item) = source else {
                        error("the merge key '<<' in \(what) takes mappings (like *defaults), found "
                              + "\(Self.describe(source)) in its list", at: source)
                        mergeFailed = true
                        continue
                    }
                    merged += entries(of: item, what, mergeFailed: &mergeFailed)
                }
            default:
                error("the merge key '<<' in \(what) takes a mapping or a list of mappings (like *defaults "
                      + "or [*a, *b]), found \(Self.describe(value))", at: value)
                mergeFailed = true
            }
        }
        guard !merged.isEmpty else { return own }
        var seen = Set(own.map(\.key))
        for entry in merged where seen.insert(entry.key).inserted { own.append(entry) }
        return own
    }

    /// Reports an unknown key; returns the suggested key, if any.
    @discardableResult
    private func unknownKey(_ name: String, at key: Node, in what: String, allowed: [String]) -> String? {
        var message = "unknown key '\(name)' in \(what)"
        let suggestion = Self.suggestion(for: name, among: allowed)
        if let suggestion {
            message += "; did you mean '\(suggestion)'?"
        } else {
            message += " (expected one of: \(allowed.joined(separator: ", ")))"
        }
        error(message, at: key)
        return suggestion
    }

    /// The closest candidate to `name`, when it is close enough to be a likely typo.
    ///
    /// Close enough: case-insensitive Levenshtein distance at most 2, and at most a third of the
    /// longer word (so `name` does not suggest `state`). Ties go to the earlier candidate.
    static func suggestion(for name: String, among candidates: [String]) -> String? {
        var best: (String, Int)?
        let lower = Array(name.lowercased().unicodeScalars)
        for candidate in candidates {
            let distance = editDistance(lower, Array(candidate.lowercased().unicodeScalars))
            let limit = min(2, max(1, max(lower.count, candidate.count) / 3))
            if distance <= limit, distance < (best?.1 ?? Int.max) { best = (candidate, distance) }
        }
        return best?.0
    }

    /// Levenshtein distance (insertions, deletions, substitutions, each costing 1).
    static func editDistance<T: Equatable>(_ a: [T], _ b: [T]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }

    /// A string scalar. Unquoted values that YAML 1.1 types as something else (`1.10`, `2`, `yes`,
    /// `2024-01-01`, empty) are refused with a hint to quote them.
    func string(_ node: Node, _ what: String, allowEmpty: Bool = false) -> String? {
        guard case let .scalar(scalar) = node else {
            error("expected a string for \(what), found \(Self.describe(node))", at: node)
            return nil
        }
        switch Self.kind(of: scalar) {
        case .string:
            if !allowEmpty, scalar.string.isEmpty {
                error("\(what) must not be empty", at: node)
                return nil
            }
            return scalar.string
        case .null:
            error("expected a string for \(what), found nothing (null)", at: node)
        case .unsupportedTag(let tag):
            error("unsupported tag \(tag) on \(what); write a plain or quoted string", at: node)
        default:
            error("expected a string for \(what), found \(Self.describe(node)); quote it: \"\(scalar.string)\"",
                  at: node)
        }
        return nil
    }

    /// A boolean: `true` or `false` only. YAML 1.1 spellings (`yes`, `on`, …) are refused.
    func bool(_ node: Node, _ what: String) -> Bool? {
        if case let .scalar(scalar) = node, Self.kind(of: scalar) == .bool {
            if Self.strictTrue.contains(scalar.string) { return true }
            if Self.strictFalse.contains(scalar.string) { return false }
            if scalar.tag.rawValue.isEmpty {
                error("`\(scalar.string)` for \(what) is a YAML 1.1 boolean that YAML 1.2 tools read as a string; "
                      + "write true or false", at: node)
                return nil
            }
        }
        if case let .scalar(scalar) = node, Self.kind(of: scalar) == .string,
           Self.strictTrue.contains(scalar.string) || Self.strictFalse.contains(scalar.string) {
            error("expected a boolean for \(what), found the string \"\(scalar.string)\"; remove the quotes",
                  at: node)
            return nil
        }
        error("expected a boolean (true or false) for \(what), found \(Self.describe(node))", at: node)
        return nil
    }

    /// A non-negative number of seconds: a plain decimal integer or decimal fraction (`30`, `2.5`).
    func seconds(_ node: Node, _ what: String) -> Double? {
        if case let .scalar(scalar) = node, Self.kind(of: scalar) == .int || Self.kind(of: scalar) == .float {
            let text = scalar.string
            let decimal = text.unicodeScalars.allSatisfy { ("0"..."9").contains($0) || $0 == "." }
            if decimal, let value = Double(text), value.isFinite, value >= 0 { return value }
            error("\(what) must be a non-negative number of seconds written in decimal, found `\(text)`", at: node)
            return nil
        }
        error("expected a number of seconds for \(what), found \(Self.describe(node))", at: node)
        return nil
    }

    /// One of the raw values of `E`. A YAML 1.1 boolean (`on`, `yes`, `true`, …) gets a hint.
    func enumeration<E: RawRepresentable & CaseIterable>(_ node: Node, _ what: String, as: E.Type) -> E?
    where E.RawValue == String {
        let allowed = E.allCases.map(\.rawValue)
        let list = allowed.joined(separator: ", ")
        guard case let .scalar(scalar) = node else {
            error("expected one of \(list) for \(what), found \(Self.describe(node))", at: node)
            return nil
        }
        switch Self.kind(of: scalar) {
        case .string:
            if let value = E(rawValue: scalar.string) { return value }
            var message = "invalid \(what) '\(scalar.string)'; expected one of \(list)"
            if let suggestion = Self.suggestion(for: scalar.string, among: allowed) {
                message += "; did you mean '\(suggestion)'?"
            }
            error(message, at: node)
        case .bool:
            error("\(what) `\(scalar.string)` is read by YAML 1.1 as a boolean, not a word; "
                  + "write one of \(list) (quote a word YAML could misread)", at: node)
        default:
            error("expected one of \(list) for \(what), found \(Self.describe(node))", at: node)
        }
        return nil
    }

    /// A list's items.
    func sequence(_ node: Node, _ what: String) -> [Node]? {
        guard case let .sequence(sequence) = node else {
            error("expected a list for \(what), found \(Self.describe(node))", at: node)
            return nil
        }
        return Array(sequence)
    }

    /// A mapping of strings to strings (labels). Keys must be label keys (`[A-Za-z0-9._/-]+`).
    func stringMap(_ node: Node, _ what: String) -> [String: String]? {
        guard case let .mapping(mapping) = node else {
            error("expected a mapping for \(what), found \(Self.describe(node))", at: node)
            return nil
        }
        var result: [String: String] = [:]
        var ok = true
        var mergeFailed = false
        for (key, value) in entries(of: mapping, what, mergeFailed: &mergeFailed) {
            guard let name = string(key, "a key of \(what)") else { ok = false; continue }
            guard Labels.isValidKey(name) else {
                error("invalid label key '\(name)' in \(what); use letters, digits, '.', '_', '-' and '/'", at: key)
                ok = false
                continue
            }
            guard let text = string(value, "label '\(name)'", allowEmpty: true) else { ok = false; continue }
            result[name] = text
        }
        return ok && !mergeFailed ? result : nil
    }
}

/// The known entries of one mapping, with the mapping node for "missing key" errors.
struct Fields {
    let node: Node
    let what: String
    var entries: [String: (key: Node, value: Node)] = [:]
    /// Keys suggested for misspelt keys: their absence is not reported again as "missing".
    var suggested: Set<String> = []
    /// A YAML merge key `<<` could not be applied: keys it would have supplied are not reported missing.
    var mergeFailed = false

    init(node: Node, what: String) {
        self.node = node
        self.what = what
    }

    subscript(_ key: String) -> Node? { entries[key]?.value }

    /// The key node for `key`, when present.
    func keyNode(_ key: String) -> Node? { entries[key]?.key }

    /// The value for `key`, reporting a missing-key error at the mapping when absent.
    /// - Parameter owner: how the mapping is named in the message (default: `what`).
    func required(_ key: String, _ reader: NodeReader, owner: String? = nil) -> Node? {
        if let value = entries[key]?.value { return value }
        if !suggested.contains(key), !mergeFailed {
            reader.error("missing required key '\(key)' in \(owner ?? what)", at: node)
        }
        return nil
    }
}
