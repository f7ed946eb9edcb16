import Foundation
import Testing
import SutureBuild
import SutureELF
import SutureTestSupport

/// The differ corpus: each case is a small C/C++ tree and a fix patch, built with gcc, linked into a
/// target, diffed by `PatchSynthesizer.synthesize`, and checked against the exact expected outcome (the
/// functions replaced, or the refusal).
@Suite struct DifferCorpusTests {
    static let cases = [
        "one-line-fix",
    ]

    @Test(arguments: cases.map(CorpusCase.load))
    func corpusCase(_ c: CorpusCase) throws {
        let built = try BuiltCase.build(c)
        defer { if ProcessInfo.processInfo.environment["SUTURE_KEEP_CORPUS"] == nil { built.cleanup() } }
        for s in c.produces ?? [] {
            #expect(built.objectSymbols.contains(s), "gcc did not produce \(s) for case \(c.name); symbols: \(built.objectSymbols.sorted())")
        }
        if let refusal = c.refusal {
            #expect {
                _ = try PatchSynthesizer.synthesize(built.request)
            } throws: { error in
                let message = (error as? BuildError)?.message ?? "\(error)"
                let ok = refusal.allSatisfy { message.contains($0) }
                if !ok { Issue.record("refusal of \(c.name) was: \(message)") }
                return ok
            }
            return
        }
        let result = try #require(try PatchSynthesizer.synthesize(built.request))
        if ProcessInfo.processInfo.environment["SUTURE_KEEP_CORPUS"] != nil {
            let e = JSONEncoder()
            e.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try e.encode(result), as: UTF8.self))
        }
        let expect = try #require(c.expect)
        #expect(result.functions.map { "\($0.unit):\($0.symbol)" }.sorted() == expect.replaced.sorted())
        if let v = expect.newFunctions { #expect(result.newFunctions == v.sorted()) }
        if let v = expect.lineNumberOnly { #expect(result.lineNumberOnly == v.sorted()) }
        if let v = expect.inlinedCauses { #expect(result.inlinedCauses == v) }
        if let v = expect.newData { #expect(result.newData == v.sorted()) }
        if let v = expect.targetSymbols { #expect(result.targetSymbols.map(\.targetSymbol).sorted() == v.sorted()) }
        if let v = expect.imports { #expect(result.imports == v.sorted()) }
        // The payload is a relocatable x86-64 object that defines every replacement.
        let payload = try ELFObjectFile(path: result.payload)
        #expect(payload.fileType == ELFObjectFile.typeRelocatable)
        let defined = Set(try payload.symbols(.symtab).filter { $0.isDefined && $0.type == ELFSymbol.typeFunction }.map(\.name))
        for f in result.functions { #expect(defined.contains(f.replacement)) }
    }
}
