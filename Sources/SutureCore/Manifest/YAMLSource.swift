import Foundation
internal import CYaml
import Yams

/// Bounds that keep hostile or broken input from exhausting memory or time.
public struct ManifestLimits: Sendable, Hashable {
    /// Largest accepted file, in bytes (default 4 MiB; real manifests are a few KiB).
    public var maxFileBytes: Int
    /// Largest number of nodes a file may reach through aliases (`*name`), counting each alias as the
    /// full size of the node it names (default 10,000). Stops "billion laughs" alias bombs before the
    /// tree is composed.
    public var maxAliasedNodes: Int

    /// Creates limits.
    public init(maxFileBytes: Int = 4 << 20, maxAliasedNodes: Int = 10_000) {
        self.maxFileBytes = maxFileBytes
        self.maxAliasedNodes = maxAliasedNodes
    }
}

/// Reading a YAML file into documents: size bound, UTF-8 check, alias-expansion bound, then Yams'
/// `compose` (libyaml; nesting limited to 1000 levels, duplicate keys refused), with every failure turned
/// into a positioned `Diagnostic`.
enum YAMLSource {
    /// Reads and decodes `url`; `display` is the path printed in diagnostics.
    static func read(_ url: URL, display: String, limits: ManifestLimits) -> Result<SourceText, DiagnosticError> {
        let at1 = SourceLocation(file: display, line: 1, column: 1)
        guard let handle = FileHandle(forReadingAtPath: url.path) else {
            let reason = FileManager.default.fileExists(atPath: url.path) ? "cannot be read" : "does not exist"
            return .failure(DiagnosticError(Diagnostic(.error, "file \(reason)", at: at1)))
        }
        defer { try? handle.close() }
        let data: Data
        do {
            data = try handle.read(upToCount: limits.maxFileBytes + 1) ?? Data()
        } catch {
            return .failure(DiagnosticError(Diagnostic(.error, "cannot read file: \(error.localizedDescription)", at: at1)))
        }
        if data.count > limits.maxFileBytes {
            return .failure(DiagnosticError(Diagnostic(.error, "file is larger than \(limits.maxFileBytes / 1024) KiB; "
                                       + "manifests this large are refused (split it into several files)", at: at1)))
        }
        guard var text = String(validating: data, as: UTF8.self) else {
            return .failure(DiagnosticError(invalidUTF8(data, display: display)))
        }
        if text.unicodeScalars.first == "\u{FEFF}" { text.unicodeScalars.removeFirst() }
        return .success(SourceText(file: display, text: text))
    }

    /// The error for the first byte that is not valid UTF-8.
    private static func invalidUTF8(_ data: Data, display: String) -> Diagnostic {
        var iterator = data.makeIterator()
        var decoder = UTF8()
        var offset = 0
        var line = 1
        var column = 1
        var lineText = ""
        loop: while true {
            switch decoder.decode(&iterator) {
            case let .scalarValue(scalar):
                offset += UTF8.width(scalar)
                if scalar == "\n" {
                    line += 1
                    column = 1
                    lineText = ""
                } else {
                    column += 1
                    lineText.unicodeScalars.append(scalar)
                }
            case .emptyInput, .error:
                break loop
            }
        }
        let byte = offset < data.count ? data[data.startIndex + offset] : 0
        // The rest of the line (as far as it decodes) for context.
        var rest = data[(data.startIndex + offset)...].prefix { $0 != UInt8(ascii: "\n") }
        rest = rest.dropFirst()
        lineText += "\u{FFFD}" + String(decoding: rest, as: UTF8.self)
        return Diagnostic(.error, String(format: "file is not valid UTF-8: byte 0x%02X at offset %d", byte, offset)
                          + "; manifests must be UTF-8 text",
                          at: SourceLocation(file: display, line: line, column: column), sourceLine: lineText)
    }

    /// The documents of `source` (empty documents left out), plus any diagnostic that stopped reading.
    static func documents(of source: SourceText, limits: ManifestLimits) -> ([Node], Diagnostic?) {
        if source.text.utf8.contains(UInt8(ascii: "*")), source.text.utf8.contains(UInt8(ascii: "&")), let bomb = checkAliases(source, limits: limits) { return ([], bomb) }
        var roots: [Node] = []
        do {
            let parser = try Parser(yaml: source.text, resolver: .basic, constructor: .default, encoding: .utf8)
            while let root = try parser.nextRoot() {
                if case let .scalar(scalar) = root, scalar.string.isEmpty, scalar.style == .plain { continue }
                roots.append(root)
            }
        } catch let error as YamlError {
            return (roots, diagnostic(for: error, in: source))
        } catch {
            return (roots, Diagnostic(.error, "cannot parse YAML: \(error)",
                                      at: source.location(line: 1, column: 1)))
        }
        return (roots, nil)
    }

    // MARK: Alias bombs

    /// Walks libyaml's event stream once, sizing every anchored node and counting the nodes each alias
    /// stands for; reports the alias at which the total passes `limits.maxAliasedNodes`.
    ///
    /// Yams composes aliases by sharing, so a bomb costs nothing to compose, but anything that walks or
    /// hashes the tree (duplicate-key checks on complex keys, decoding) would expand it exponentially.
    /// Syntax errors are left to the composer, which reports them with better context.
    static func checkAliases(_ source: SourceText, limits: ManifestLimits) -> Diagnostic? {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { return nil }
        defer { yaml_parser_delete(&parser) }
        let bytes = Array(source.text.utf8)
        return bytes.withUnsafeBufferPointer { buffer -> Diagnostic? in
            yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            let cap = limits.maxAliasedNodes + 1
            var sizes: [String: Int] = [:]
            var stack: [(anchor: String?, size: Int)] = [(nil, 0)]
            var aliased = 0
            func add(_ size: Int) {
                stack[stack.count - 1].size = min(cap, stack[stack.count - 1].size + size)
            }
            func name(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
                pointer.map { String(cString: $0) }
            }
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else { return nil }
                defer { yaml_event_delete(&event) }
                switch event.type {
                case YAML_STREAM_END_EVENT:
                    return nil
                case YAML_DOCUMENT_START_EVENT:
                    sizes.removeAll()
                case YAML_SCALAR_EVENT:
                    if let anchor = name(event.data.scalar.anchor) { sizes[anchor] = 1 }
                    add(1)
                case YAML_SEQUENCE_START_EVENT:
                    stack.append((name(event.data.sequence_start.anchor), 1))
                case YAML_MAPPING_START_EVENT:
                    stack.append((name(event.data.mapping_start.anchor), 1))
                case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                    let frame = stack.removeLast()
                    if let anchor = frame.anchor { sizes[anchor] = frame.size }
                    add(frame.size)
                case YAML_ALIAS_EVENT:
                    let anchor = name(event.data.alias.anchor) ?? ""
                    let size = sizes[anchor] ?? 1
                    aliased = min(cap, aliased + size)
                    add(size)
                    if aliased > limits.maxAliasedNodes {
                        let location = source.location(line: Int(event.start_mark.line) + 1,
                                                       column: Int(event.start_mark.column) + 1)
                        return source.diagnostic(
                            .error, "aliases expand to more than \(limits.maxAliasedNodes) nodes at *\(anchor); "
                            + "refusing a possible alias bomb (write the values out or use fewer aliases)",
                            at: location)
                    }
                default:
                    break
                }
            }
        }
    }

    // MARK: Yams errors

    /// A diagnostic for a Yams parse/compose error, positioned at libyaml's problem mark.
    static func diagnostic(for error: YamlError, in source: SourceText) -> Diagnostic {
        func note(_ context: YamlError.Context?) -> [Diagnostic] {
            guard let context else { return [] }
            let location = source.location(line: context.mark.line, column: context.mark.column)
            return [Diagnostic(.note, "\(context.text) that starts here", at: location)]
        }
        switch error {
        case let .scanner(context?, _, _, _) where context.text == "while scanning an alias":
            return source.diagnostic(.error, "YAML syntax error: '*' starts an alias here; quote the value if it "
                                     + "is a string or glob that starts with '*'",
                                     at: source.location(line: context.mark.line, column: context.mark.column))
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _):
            let text = problem.hasPrefix("Maximum nesting level")
                ? "YAML nesting is deeper than 1000 levels" : "YAML syntax error: \(problem)"
            return source.diagnostic(.error, text,
                                     at: source.location(line: mark.line, column: mark.column), notes: note(context))
        case let .composer(context, problem, mark, _):
            var text = "YAML error: \(problem)"
            if problem == "found undefined alias", let line = source.line(mark.line) {
                let name = line.unicodeScalars.dropFirst(mark.column).prefix {
                    !$0.properties.isWhitespace && !",[]{}".unicodeScalars.contains($0)
                }
                text = "undefined alias '*\(String(String.UnicodeScalarView(name)))': no anchor "
                    + "'&\(String(String.UnicodeScalarView(name)))' is defined before it in this document "
                    + "(quote the value if it is a string or glob that starts with '*')"
            }
            return source.diagnostic(.error, text,
                                     at: source.location(line: mark.line, column: mark.column), notes: note(context))
        case let .reader(problem, offset, value, _):
            let location = offset.map { characterLocation($0, in: source) } ?? source.location(line: 1, column: 1)
            let shown = value >= 0 ? String(format: " (U+%04X)", value) : ""
            return source.diagnostic(.error, "invalid character in YAML: \(problem)\(shown)", at: location)
        case let .duplicatedKeysInMapping(duplicates, context):
            let key = duplicates.sorted().first ?? ""
            let first = source.location(line: context.mark.line, column: context.mark.column)
            if let second = secondOccurrence(of: key, after: first, in: source) {
                return source.diagnostic(.error, "duplicate key '\(key)' in a mapping", at: second,
                                         notes: [Diagnostic(.note, "'\(key)' first given here", at: first)])
            }
            return source.diagnostic(.error, "duplicate key '\(key)' in a mapping", at: first)
        default:
            return source.diagnostic(.error, "cannot parse YAML: \(error)", at: source.location(line: 1, column: 1))
        }
    }

    /// Location of the `offset`-th Character (Yams reports reader errors in Characters).
    private static func characterLocation(_ offset: Int, in source: SourceText) -> SourceLocation {
        let text = source.text
        let index = text.index(text.startIndex, offsetBy: offset, limitedBy: text.endIndex) ?? text.endIndex
        let scalarOffset = text.unicodeScalars.distance(from: text.unicodeScalars.startIndex, to: index)
        return source.location(ofScalarOffset: scalarOffset)
    }

    /// Finds where `key` is repeated in the same block mapping as its first occurrence at `first`:
    /// a later line with the key at the same column, before the mapping's indentation ends. Yams reports
    /// only the first occurrence; pointing at the repeat is what the user has to fix.
    private static func secondOccurrence(of key: String, after first: SourceLocation,
                                         in source: SourceText) -> SourceLocation? {
        var line = first.line + 1
        while let text = source.line(line) {
            defer { line += 1 }
            let scalars = Array(text.unicodeScalars)
            guard let firstNonSpace = scalars.firstIndex(where: { $0 != " " }) else { continue }
            if scalars[firstNonSpace] == "#" { continue }
            if firstNonSpace + 1 < first.column {
                // A "- " item marker may sit left of the key on the first line of a sequence item.
                let prefix = scalars[..<min(scalars.count, first.column - 1)]
                if !prefix.allSatisfy({ $0 == " " || $0 == "-" }) { return nil }
            }
            guard scalars.count >= first.column else { continue }
            let rest = String(String.UnicodeScalarView(scalars[(first.column - 1)...]))
            for candidate in [key, "\"\(key)\"", "'\(key)'"] where rest.hasPrefix(candidate) {
                let after = rest.dropFirst(candidate.count).drop { $0 == " " }
                if after.hasPrefix(":") { return source.location(line: line, column: first.column) }
            }
        }
        return nil
    }
}
