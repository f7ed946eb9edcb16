import Foundation
import Testing
import SutureBuild
import SutureTestSupport

/// One case of the differ corpus: `Tests/Fixtures/build-corpus/<name>/` holds `tree/` (the sources),
/// `fix.patch` (applied with `patch -p1` inside a copy of `tree/`) and `case.json` (this struct).
struct CorpusCase: Decodable, Sendable, CustomTestStringConvertible {
    /// What the case exercises.
    var description: String
    /// Translation units (paths inside `tree/`), compiled in this order and linked into `target`.
    var units: [String]
    /// Extra compiler flags (`-O2`, `-fcf-protection`, `-flto`, …).
    var cflags: [String]?
    /// Extra link flags.
    var ldflags: [String]?
    /// `gcc` (default) or `g++`.
    var compiler: String?
    /// The expected result when the differ succeeds; a key that is absent is not checked.
    var expect: Expectation?
    /// A substring the refusal message must contain (the case must fail with a `BuildError`).
    var refusal: [String]?
    /// Symbol names (exact) that must exist in the original or patched objects: proves gcc really produced
    /// the clone kind or construct the case is about.
    var produces: [String]?
    /// A patch applied to the tree the target is linked from (simulates a target built from another base).
    var targetPatch: String?
    /// Units linked into the target (default: all of `units`); the others belong to another program.
    var linkUnits: [String]?
    /// Strip the target; the differ gets the unstripped link as its symbol file.
    var stripTarget: Bool?
    /// Case directory name (filled in by the loader).
    var name: String = ""

    struct Expectation: Decodable, Sendable {
        var replaced: [String]
        var newFunctions: [String]?
        var lineNumberOnly: [String]?
        var inlinedCauses: [String: [String]]?
        var newData: [String]?
        var targetSymbols: [String]?
        var imports: [String]?
    }

    enum CodingKeys: String, CodingKey {
        case description, units, cflags, ldflags, compiler, expect, refusal, produces, targetPatch, stripTarget, linkUnits
    }

    var testDescription: String { name }

    static var root: URL { TestSupport.packageRoot.appendingPathComponent("Tests/Fixtures/build-corpus") }

    static func load(_ name: String) -> CorpusCase {
        let url = root.appendingPathComponent(name).appendingPathComponent("case.json")
        do {
            var c = try JSONDecoder().decode(CorpusCase.self, from: Data(contentsOf: url))
            c.name = name
            return c
        } catch {
            fatalError("\(url.path): \(error)")
        }
    }
}

/// A corpus case built twice with gcc (original and patched tree) and linked into a target.
struct BuiltCase {
    let dir: URL
    let request: SynthesisRequest
    let target: URL
    let objectSymbols: Set<String>

    static let differFlags = ["-g", "-ffunction-sections", "-fdata-sections"]

    static func build(_ c: CorpusCase) throws -> BuiltCase {
        let dir = try TestSupport.temporaryDirectory("suture-differ-\(c.name)")
        let original = dir.appendingPathComponent("original"), patched = dir.appendingPathComponent("patched")
        let source = CorpusCase.root.appendingPathComponent(c.name)
        try FileManager.default.copyItem(at: source.appendingPathComponent("tree"), to: original)
        try FileManager.default.copyItem(at: source.appendingPathComponent("tree"), to: patched)
        try CBuild.check("/usr/bin/patch", ["-p1", "--quiet", "-i", source.appendingPathComponent("fix.patch").path], in: patched)
        let cc = "/usr/bin/" + (c.compiler ?? "gcc")
        let flags = differFlags + (c.cflags ?? [])
        var originalUnits: [CompiledUnit] = [], patchedUnits: [CompiledUnit] = []
        var symbols = Set<String>()
        for unit in c.units {
            let object = (unit as NSString).deletingPathExtension + ".o"
            var preprocessed: [String] = []
            for (tree, list) in [(original, 0), (patched, 1)] {
                let args = ["-c"] + flags + [unit, "-o", object]
                try CBuild.check(cc, args, in: tree)
                let u = CompiledUnit(source: unit, object: tree.appendingPathComponent(object).path,
                                     arguments: [cc] + args, directory: tree.path)
                if list == 0 { originalUnits.append(u) } else { patchedUnits.append(u) }
                preprocessed.append(try CBuild.check(cc, ["-E"] + (c.cflags ?? []) + [unit], in: tree).stdout)
                let nm = try CBuild.check("/usr/bin/nm", [tree.appendingPathComponent(object).path]).stdout
                for line in nm.split(separator: "\n") { if let n = line.split(separator: " ").last { symbols.insert(String(n)) } }
            }
            // Only units whose preprocessed text differs are "changed" (what the incremental build recompiles).
            if preprocessed[0] == preprocessed[1] {
                originalUnits.removeLast()
                patchedUnits.removeLast()
            }
        }
        let objects = (c.linkUnits ?? c.units).map { ($0 as NSString).deletingPathExtension + ".o" }
        var linkDir = original
        if let targetPatch = c.targetPatch {
            linkDir = dir.appendingPathComponent("deployed")
            try FileManager.default.copyItem(at: source.appendingPathComponent("tree"), to: linkDir)
            try CBuild.check("/usr/bin/patch", ["-p1", "--quiet", "-i", source.appendingPathComponent(targetPatch).path], in: linkDir)
            for (unit, object) in zip(c.linkUnits ?? c.units, objects) { try CBuild.check(cc, ["-c"] + flags + [unit, "-o", object], in: linkDir) }
        }
        try CBuild.check(cc, (c.cflags ?? []) + ["-g"] + objects + (c.ldflags ?? []) + ["-o", "target"], in: linkDir)
        let symbolFile = linkDir.appendingPathComponent("target")
        var target = symbolFile
        if c.stripTarget == true {
            target = linkDir.appendingPathComponent("target.stripped")
            try CBuild.check("/usr/bin/strip", ["-o", target.path, symbolFile.path])
        }
        return BuiltCase(dir: dir, request: SynthesisRequest(original: originalUnits, patched: patchedUnits, target: target.path,
                                                             symbols: symbolFile.path,
                                                             workDirectory: dir.appendingPathComponent("work").path),
                         target: target, objectSymbols: symbols)
    }

    func cleanup() { try? FileManager.default.removeItem(at: dir) }
}
