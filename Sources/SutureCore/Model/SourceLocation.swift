/// A position in a text file, 1-based, as printed in diagnostics (`file:line:column`).
///
/// Lines and columns follow Yams' `Mark` (1-based; columns count Unicode scalars).
public struct SourceLocation: Codable, Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Path of the file as the user named it (relative paths stay relative).
    public var file: String
    /// 1-based line number.
    public var line: Int
    /// 1-based column number.
    public var column: Int

    /// Creates a location.
    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    /// `file:line:column`.
    public var description: String { "\(file):\(line):\(column)" }

    /// Orders by file, then line, then column.
    public static func < (a: SourceLocation, b: SourceLocation) -> Bool {
        (a.file, a.line, a.column) < (b.file, b.line, b.column)
    }
}

/// One message about user input, printed swift-format style:
/// `file:line:column: error: message`, then the offending source line and a caret, then notes.
public struct Diagnostic: Codable, Sendable, Hashable, CustomStringConvertible {
    /// Severity of a diagnostic.
    public enum Severity: String, Codable, Sendable, Hashable { case error, warning, note }

    /// Severity.
    public var severity: Severity
    /// Where; `nil` for diagnostics about the whole run (e.g. a missing path).
    public var location: SourceLocation?
    /// One-line message.
    public var message: String
    /// The source line the location points into, without its newline, when known.
    public var sourceLine: String?
    /// Further lines, each printed as `file:line:column: note: …` or indented.
    public var notes: [Diagnostic]

    /// Creates a diagnostic.
    public init(_ severity: Severity, _ message: String, at location: SourceLocation? = nil,
                sourceLine: String? = nil, notes: [Diagnostic] = []) {
        self.severity = severity
        self.location = location
        self.message = message
        self.sourceLine = sourceLine
        self.notes = notes
    }

    /// The rendered text (several lines when a source line or notes are present), no trailing newline.
    public var description: String {
        var out = ""
        if let location { out += "\(location): " }
        out += "\(severity.rawValue): \(message)"
        if let sourceLine, let location {
            let (shown, caretColumn) = Diagnostic.excerpt(sourceLine, column: location.column)
            out += "\n" + shown + "\n"
            // Caret under the column (columns count Unicode scalars; tabs are kept so the caret lines up).
            let prefix = shown.unicodeScalars.prefix(max(0, caretColumn - 1))
            out += String(String.UnicodeScalarView(prefix.map { $0 == "\t" ? "\t" : " " })) + "^"
        }
        for note in notes { out += "\n" + note.description }
        return out
    }
}

extension Diagnostic {
    /// Longest source excerpt printed under a diagnostic, in Unicode scalars.
    public static let maxExcerptWidth = 160

    /// The part of `line` printed under a diagnostic and the column of the caret in it: control characters
    /// (other than tab) become U+FFFD so a binary or escape-laden line cannot garble the terminal, and a
    /// line longer than `maxExcerptWidth` is cut to a window around `column` marked with "…" at the cut ends.
    static func excerpt(_ line: String, column: Int) -> (String, Int) {
        var scalars = line.unicodeScalars.map { s -> Unicode.Scalar in
            s == "\t" || !(s.value < 0x20 || s.value == 0x7F || (0x80..<0xA0).contains(s.value)) ? s : "\u{FFFD}"
        }
        var caret = column
        if scalars.count > maxExcerptWidth {
            let half = maxExcerptWidth / 2
            let start = max(0, min(column - 1 - half, scalars.count - maxExcerptWidth))
            let end = min(scalars.count, start + maxExcerptWidth)
            var window = Array(scalars[start..<end])
            if start > 0 { window.insert("…", at: 0); caret = column - start + 1 } else { caret = column }
            if end < scalars.count { window.append("…") }
            scalars = window
        }
        return (String(String.UnicodeScalarView(scalars)), caret)
    }
}

/// An error that carries one or more diagnostics (manifest, bundle and snapshot loading throw this).
public struct DiagnosticError: Error, Sendable, CustomStringConvertible {
    /// The diagnostics, in source order; at least one has severity `.error`.
    public var diagnostics: [Diagnostic]
    /// Creates the error.
    public init(_ diagnostics: [Diagnostic]) { self.diagnostics = diagnostics }
    /// Creates the error from a single diagnostic.
    public init(_ diagnostic: Diagnostic) { self.diagnostics = [diagnostic] }
    /// All diagnostics, one block each.
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}
