import Foundation
import SutureCore
import SutureTestSupport
import Testing

/// The bad-input corpus: every `Tests/Fixtures/bad-manifests/NAME.yaml` must give, as its first error,
/// exactly the line in `NAME.expected` (`NAME.yaml:line:column: error: message`).
@Suite struct BadManifestCorpusTests {
    static let cases: [String] = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: ManifestFixtures.badManifests.path)) ?? []
        return names.filter { $0.hasSuffix(".yaml") }.sorted()
    }()

    @Test func corpusHasAtLeast25CasesEachWithAnExpectation() throws {
        #expect(Self.cases.count >= 25)
        for name in Self.cases {
            let expected = ManifestFixtures.badManifests.appendingPathComponent(
                String(name.dropLast(5)) + ".expected")
            #expect(FileManager.default.fileExists(atPath: expected.path), "\(name) has no .expected file")
        }
    }

    @Test(arguments: cases) func firstErrorIsExactlyTheExpectedOne(_ name: String) throws {
        let directory = ManifestFixtures.badManifests
        let expectedURL = directory.appendingPathComponent(String(name.dropLast(5)) + ".expected")
        let expected = try String(contentsOf: expectedURL, encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let result = ManifestFixtures.lintLoader().load(paths: [directory.appendingPathComponent(name).path])
        #expect(result.hasErrors)
        let line = ManifestFixtures.firstErrorLine(result.diagnostics, strippingPrefix: directory.path + "/")
        #expect(line == expected)
    }
}
