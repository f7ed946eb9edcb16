import Foundation
import Yams

/// Strict, position-keeping decoding of a composed YAML document (`patch.yaml`) into typed values.
///
/// Every error is a `Diagnostic` at the offending node's `file:line:column` with its source line. Scalars
/// are typed by Yams' default resolver (YAML 1.1 core rules): a string field given an unquoted `1.10`,
/// `yes` or `~` is refused with a hint to quote it rather than silently converted.
struct BundleYAMLDecoder {
    /// The file name printed in diagnostics.
    let file: String
    /// The source split into lines (without newlines), for the source line of a diagnostic.
    let lines: [Substring]

    init(file: String, text: String) {
        self.file = file
        self.lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.hasSuffix("\r") ? $0.dropLast() : $0 }
    }

    /// A 1-based position (Yams' `Mark` cannot be created outside Yams).
    struct Position: Hashable {
        var line: Int
        var column: Int
    }

    static func position(_ mark: Mark?) -> Position? {
        mark.map { Position(line: $0.line, column: $0.column) }
    }

    func location(_ position: Position) -> SourceLocation {
        SourceLocation(file: file, line: position.line, column: position.column)
    }

    func sourceLine(_ position: Position) -> String? {
        guard position.line >= 1, position.line <= lines.count else { return nil }
        return String(lines[position.line - 1])
    }

    /// An error diagnostic at `mark` (or at the start of the file when the node has no mark).
    func error(_ message: String, at mark: Mark?, notes: [Diagnostic] = []) -> Diagnostic {
        error(message, at: Self.position(mark), notes: notes)
    }

    /// An error diagnostic at `position` (or at the start of the file).
    func error(_ message: String, at position: Position?, notes: [Diagnostic] = []) -> Diagnostic {
        let position = position ?? Position(line: 1, column: 1)
        return Diagnostic(.error, message, at: location(position), sourceLine: sourceLine(position), notes: notes)
    }

    func fail(_ message: String, at node: Node) -> DiagnosticError {
        DiagnosticError(error(message, at: node.mark))
    }

    /// The resolved YAML tag of a node (`tag:yaml.org,2002:str`, …).
    static func tag(_ node: Node) -> String { node.tag.description }
    static let strTag = "tag:yaml.org,2002:str"
    static let intTag = "tag:yaml.org,2002:int"
    static let boolTag = "tag:yaml.org,2002:bool"
    static let floatTag = "tag:yaml.org,2002:float"
    static let nullTag = "tag:yaml.org,2002:null"
    static let timestampTag = "tag:yaml.org,2002:timestamp"

    /// A human name for a node's resolved type (`an integer`, `a mapping`).
    static func describe(_ node: Node) -> String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar:
            switch tag(node) {
            case intTag: return "an integer"
            case floatTag: return "a number"
            case boolTag: return "a boolean"
            case nullTag: return "null"
            case timestampTag: return "a timestamp"
            default: return "a string"
            }
        }
    }

    // MARK: Mappings

    /// The fields of a mapping node, keyed by name, each with its key node (for positions).
    struct Fields {
        let node: Node
        var values: [String: (key: Node, value: Node)]
        subscript(_ name: String) -> Node? { values[name]?.value }
    }

    /// Reads `node` as a mapping whose keys are all in `allowed` and include every key in `required`.
    ///
    /// - Throws: for a non-mapping, a non-string key, an unknown key (with a did-you-mean), or the first
    ///   missing required key (reported at the mapping).
    func mapping(_ node: Node, what: String, allowed: [String], required: [String]) throws(DiagnosticError) -> Fields {
        guard case .mapping(let mapping) = node else {
            throw fail("\(what) must be a mapping, found \(Self.describe(node))", at: node)
        }
        var values: [String: (key: Node, value: Node)] = [:]
        for (key, value) in mapping {
            guard case .scalar(let scalar) = key else {
                throw fail("keys in \(what) must be plain strings, found \(Self.describe(key))", at: key)
            }
            let name = scalar.string
            guard allowed.contains(name) else {
                var message = "unknown key '\(name)' in \(what)"
                if let suggestion = Self.suggestion(for: name, among: allowed) {
                    message += "; did you mean '\(suggestion)'?"
                } else {
                    message += " (allowed: \(allowed.joined(separator: ", ")))"
                }
                throw fail(message, at: key)
            }
            values[name] = (key, value)
        }
        for name in required where values[name] == nil {
            throw fail("missing required key '\(name)' in \(what)", at: node)
        }
        return Fields(node: node, values: values)
    }

    /// The closest allowed key within edit distance 2 (or a case-insensitive / `-`↔`_` match).
    static func suggestion(for name: String, among allowed: [String]) -> String? {
        let normalized = name.lowercased().replacingOccurrences(of: "-", with: "_")
        if let exact = allowed.first(where: { $0 == normalized }) { return exact }
        var best: (key: String, distance: Int)?
        for key in allowed {
            let distance = editDistance(Array(normalized), Array(key))
            if distance <= 2 && (best == nil || distance < best!.distance) { best = (key, distance) }
        }
        return best?.key
    }

    static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1,
                                 previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }

    // MARK: Scalars

    /// A string scalar. Plain scalars that YAML resolves to another type (`1`, `1.10`, `yes`, `null`) are
    /// refused with a hint to quote them.
    func string(_ node: Node, field: String) throws(DiagnosticError) -> String {
        guard case .scalar(let scalar) = node else {
            throw fail("'\(field)' must be a string, found \(Self.describe(node))", at: node)
        }
        if Self.tag(node) != Self.strTag {
            throw fail("'\(field)' must be a string, found \(Self.describe(node)) \(scalar.string); quote it: \"\(scalar.string)\"", at: node)
        }
        return scalar.string
    }

    /// A non-negative integer scalar (decimal or `0x` hex).
    func uint64(_ node: Node, field: String) throws(DiagnosticError) -> UInt64 {
        guard case .scalar(let scalar) = node, Self.tag(node) == Self.intTag else {
            throw fail("'\(field)' must be a non-negative integer, found \(Self.describe(node))", at: node)
        }
        let text = scalar.string.replacingOccurrences(of: "_", with: "")
        let value: UInt64?
        if text.hasPrefix("0x") || text.hasPrefix("0X") {
            value = UInt64(text.dropFirst(2), radix: 16)
        } else if text.hasPrefix("+") {
            value = UInt64(text.dropFirst(), radix: 10)
        } else {
            value = UInt64(text, radix: 10)
        }
        guard let value else {
            throw fail("'\(field)' must be a non-negative decimal or 0x-hex integer that fits 64 bits, found \(scalar.string)", at: node)
        }
        return value
    }

    /// A signed integer scalar that fits `Int`.
    func int(_ node: Node, field: String) throws(DiagnosticError) -> Int {
        guard case .scalar(let scalar) = node, Self.tag(node) == Self.intTag, let value = Int(scalar.string) else {
            throw fail("'\(field)' must be a decimal integer, found \(Self.describe(node))", at: node)
        }
        return value
    }

    /// A boolean scalar: only `true` / `false` (YAML 1.1's `yes`/`on` are refused as ambiguous).
    func bool(_ node: Node, field: String) throws(DiagnosticError) -> Bool {
        if case .scalar(let scalar) = node, Self.tag(node) == Self.boolTag {
            switch scalar.string {
            case "true": return true
            case "false": return false
            default:
                throw fail("'\(field)' must be true or false, found \(scalar.string) (YAML 1.1 spelling; write true or false)", at: node)
            }
        }
        throw fail("'\(field)' must be true or false, found \(Self.describe(node))", at: node)
    }

    /// The elements of a sequence node.
    func sequence(_ node: Node, field: String) throws(DiagnosticError) -> [Node] {
        guard case .sequence(let sequence) = node else {
            throw fail("'\(field)' must be a list, found \(Self.describe(node))", at: node)
        }
        return Array(sequence)
    }

    // MARK: Errors from Yams

    /// Converts an error thrown by Yams' composer into a diagnostic with a position when Yams gives one.
    func diagnostic(for error: any Error, text: String) -> Diagnostic {
        guard let yamlError = error as? YamlError else {
            return Diagnostic(.error, "\(file): cannot parse YAML: \(error)")
        }
        switch yamlError {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _),
             let .composer(context, problem, mark, _):
            var message = "invalid YAML: \(problem)"
            if let context { message += " (\(context.text) at line \(context.mark.line), column \(context.mark.column))" }
            return self.error(message, at: mark)
        case let .reader(problem, offset, _, _):
            var mark: Position?
            if let offset, let idx = text.index(text.startIndex, offsetBy: offset, limitedBy: text.endIndex) {
                let before = text[..<idx]
                let line = before.reduce(1) { $1 == "\n" ? $0 + 1 : $0 }
                let lineStart = before.lastIndex(of: "\n").map { before.index(after: $0) } ?? before.startIndex
                mark = Position(line: line, column: before[lineStart...].unicodeScalars.count + 1)
            }
            return self.error("invalid YAML input: \(problem)", at: mark)
        case let .duplicatedKeysInMapping(duplicates, context):
            let keys = duplicates.map { "'\($0)'" }.joined(separator: ", ")
            // Yams reports the first occurrence; point at the repeated one when it can be found below it.
            let first = Position(line: context.mark.line, column: context.mark.column)
            var at = first
            if let key = duplicates.first {
                for lineNumber in first.line..<(lines.count + 1) where lineNumber > first.line {
                    let line = lines[lineNumber - 1]
                    let indent = line.prefix { $0 == " " }.count
                    let rest = line.dropFirst(indent)
                    let body = rest.hasPrefix("- ") ? rest.dropFirst(2) : rest
                    let column = indent + (rest.count - body.count) + 1
                    if column == first.column, body.hasPrefix(key + ":") || body.hasPrefix("\"\(key)\":") {
                        at = Position(line: lineNumber, column: column)
                        break
                    }
                    if indent < first.column - 1 && !line.trimmingCharacters(in: .whitespaces).isEmpty
                        && !rest.hasPrefix("#") { break }
                }
            }
            let note = at.line != first.line ? [Diagnostic(.note, "first defined here", at: location(first),
                                                           sourceLine: sourceLine(first))] : []
            return self.error("duplicate key \(keys) in mapping", at: at, notes: note)
        default:
            return Diagnostic(.error, "\(file): cannot parse YAML: \(yamlError)")
        }
    }
}
