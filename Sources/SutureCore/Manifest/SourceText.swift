import Foundation

/// The text of one input file, with a lazily built line index, used to attach the offending source line
/// to a `Diagnostic`.
///
/// Lines are split on `\n` (a trailing `\r` is dropped); columns count Unicode scalars, like Yams' `Mark`.
final class SourceText {
    /// The path as the user named it (printed in diagnostics).
    let file: String
    /// The decoded text.
    let text: String
    private var lineStarts: [String.UnicodeScalarView.Index]?

    init(file: String, text: String) {
        self.file = file
        self.text = text
    }

    /// The 1-based line `line` without its line terminator, or `nil` when out of range.
    func line(_ line: Int) -> String? {
        let starts = index()
        guard line >= 1, line <= starts.count else { return nil }
        let scalars = text.unicodeScalars
        let start = starts[line - 1]
        var end = line < starts.count ? scalars.index(before: starts[line]) : scalars.endIndex
        // The last line of a file that ends with a newline has no next start: drop the newline here too.
        if end > start, scalars[scalars.index(before: end)] == "\n" { end = scalars.index(before: end) }
        if end > start, scalars[scalars.index(before: end)] == "\r" { end = scalars.index(before: end) }
        if end < start { end = start }
        return String(scalars[start..<end])
    }

    /// The location of the `offset`-th Unicode scalar (0-based) as line and column (1-based).
    func location(ofScalarOffset offset: Int) -> SourceLocation {
        var line = 1
        var column = 1
        var count = 0
        for scalar in text.unicodeScalars {
            if count == offset { break }
            if scalar == "\n" {
                line += 1
                column = 1
            } else {
                column += 1
            }
            count += 1
        }
        return SourceLocation(file: file, line: line, column: column)
    }

    /// A location in this file.
    func location(line: Int, column: Int) -> SourceLocation {
        SourceLocation(file: file, line: line, column: column)
    }

    /// A diagnostic at `location` carrying its source line.
    func diagnostic(_ severity: Diagnostic.Severity, _ message: String, at location: SourceLocation,
                    notes: [Diagnostic] = []) -> Diagnostic {
        Diagnostic(severity, message, at: location,
                   sourceLine: location.file == file ? line(location.line) : nil, notes: notes)
    }

    private func index() -> [String.UnicodeScalarView.Index] {
        if let lineStarts { return lineStarts }
        var starts = [text.unicodeScalars.startIndex]
        var i = text.unicodeScalars.startIndex
        let scalars = text.unicodeScalars
        while i < scalars.endIndex {
            let next = scalars.index(after: i)
            if scalars[i] == "\n", next < scalars.endIndex { starts.append(next) }
            i = next
        }
        lineStarts = starts
        return starts
    }
}
