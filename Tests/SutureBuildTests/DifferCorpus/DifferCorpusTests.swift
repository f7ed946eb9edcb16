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
        "new-static-helper",
        "same-named-statics",
        "clone-isra",
        "clone-constprop",
        "clone-part",
        "clone-cold",
        "inlined-callee",
        "new-string-literal",
        "new-initialized-global",
        "changed-initializer",
        "struct-layout",
        "new-tls",
        "function-pointer-table",
        "header-several-units",
        "line-number-only",
        "lto",
        "cf-protection",
        "cxx-method",
        "wrong-base",
        "stripped-target",
        "new-constructor",
        "new-ifunc",
        "changed-data-size",
        "cxx-exceptions",
        "shared-library",
        "copy-relocated-data",
        "uses-existing-tls",
        "hidden-visibility",
        "static-local-renumbered",
        "other-program-unit",
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
                if ProcessInfo.processInfo.environment["SUTURE_KEEP_CORPUS"] != nil { print("REFUSAL \(c.name): \(message)") }
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
        // A static bound in the target ("unit:name") is the one of that unit: cross-checked against
        // readelf's listing, where each object's locals follow its FILE symbol.
        let listing = try CBuild.check("/usr/bin/readelf", ["-sW", built.request.symbols]).stdout
        let linkBase = try ELFObjectFile(path: built.request.symbols).linkBase()
        var file = ""
        var localsByFile: [String: [String: UInt64]] = [:]
        for line in listing.split(separator: "\n") {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count >= 8, f[0].hasSuffix(":") else { continue }
            if f[3] == "FILE" { file = String(f[7]); continue }
            if f[4] == "LOCAL", let v = UInt64(f[1], radix: 16) { localsByFile[file, default: [:]][String(f[7])] = v }
        }
        for t in result.targetSymbols where t.payloadSymbol.contains(":") && !t.payloadSymbol.hasPrefix("__suture_str") {
            let parts = t.payloadSymbol.split(separator: ":", maxSplits: 1).map(String.init)
            let unitFile = (parts[0] as NSString).lastPathComponent
            #expect(localsByFile[unitFile]?[parts[1]].map { $0 - linkBase } == t.offset, "\(t.payloadSymbol) bound to 0x\(String(t.offset, radix: 16))")
        }
        // The payload is a relocatable x86-64 object that defines every replacement.
        let payload = try ELFObjectFile(path: result.payload)
        #expect(payload.fileType == ELFObjectFile.typeRelocatable)
        let defined = Set(try payload.symbols(.symtab).filter { $0.isDefined && $0.type == ELFSymbol.typeFunction }.map(\.name))
        for f in result.functions { #expect(defined.contains(f.replacement)) }
        // binutils accepts it as a relocatable input.
        try CBuild.check("/usr/bin/ld", ["-r", result.payload, "-o", built.dir.appendingPathComponent("ld-r.o").path])
    }
}
