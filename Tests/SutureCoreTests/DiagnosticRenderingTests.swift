import Foundation
@testable import SutureCore
import Testing

/// How a diagnostic prints its source excerpt (regressions from the kernel tier's console and the
/// adversarial review of `apply`).
struct DiagnosticRenderingTests {
    @Test func lastLineOfAFileEndingWithANewlineHasNoBlankLineBeforeTheCaret() {
        let source = SourceText(file: "m.yaml", text: "a: 1\nkernel: \"6.1\"\n")
        #expect(source.line(2) == "kernel: \"6.1\"")
        let d = Diagnostic(.error, "wrong", at: SourceLocation(file: "m.yaml", line: 2, column: 1), sourceLine: source.line(2))
        #expect(d.description == "m.yaml:2:1: error: wrong\nkernel: \"6.1\"\n^")
    }

    @Test func aHugeLineIsCutToAWindowAroundTheColumn() {
        let line = String(repeating: "x", count: 50_000) + "BAD" + String(repeating: "y", count: 50_000)
        let d = Diagnostic(.error, "bad value", at: SourceLocation(file: "m.yaml", line: 1, column: 50_001), sourceLine: line)
        let lines = d.description.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 3)
        let excerpt = lines[1], caret = lines[2]
        #expect(excerpt.unicodeScalars.count == Diagnostic.maxExcerptWidth + 2)
        #expect(excerpt.hasPrefix("…") && excerpt.hasSuffix("…"))
        // The caret still points at the 'B'.
        let caretColumn = caret.unicodeScalars.count
        #expect(Array(excerpt.unicodeScalars)[caretColumn - 1] == "B")
        // Near the start: no leading cut.
        let early = Diagnostic(.error, "x", at: SourceLocation(file: "m", line: 1, column: 3), sourceLine: line).description
        #expect(early.split(separator: "\n")[1].hasPrefix("xxx"))
        #expect(early.split(separator: "\n")[2] == "  ^")
    }

    @Test func controlCharactersAreNotEchoed() {
        let line = "name: \u{1B}[2J\u{07}evil\u{0}\ttab"
        let text = Diagnostic(.error, "bad", at: SourceLocation(file: "m", line: 1, column: 7), sourceLine: line).description
        #expect(!text.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 || $0.value == 0 })
        #expect(text.contains("\u{FFFD}[2J\u{FFFD}evil\u{FFFD}\ttab"))
    }
}
