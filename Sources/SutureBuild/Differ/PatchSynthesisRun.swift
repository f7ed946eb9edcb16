import Foundation
import SutureELF

/// One original/patched object pair with its symbol correlation.
final class UnitPair {
    let unit: String
    let original: RelocatableObject?
    let patched: RelocatableObject
    /// Patched function name → original function.
    private(set) var functionMatch: [String: ELFSymbol] = [:]
    /// Patched object name → original object.
    private(set) var objectMatch: [String: ELFSymbol] = [:]

    init(unit: String, original: RelocatableObject?, patched: RelocatableObject) {
        self.unit = unit
        self.original = original
        self.patched = patched
        guard let original else { return }
        functionMatch = Self.correlate(original.functionsByKey, patched.functionsByKey, original, patched)
        objectMatch = Self.correlate(original.objectsByKey, patched.objectsByKey, original, patched)
    }

    /// Pairs symbols by key; symbols whose key collides (two `static int n` in different functions) are
    /// paired by the functions that reference them, then in numeric-suffix order.
    private static func correlate(_ o: [String: [ELFSymbol]], _ p: [String: [ELFSymbol]],
                                  _ oo: RelocatableObject, _ po: RelocatableObject) -> [String: ELFSymbol] {
        var result: [String: ELFSymbol] = [:]
        for (key, ps) in p {
            guard let os = o[key] else { continue }
            if ps.count == 1 && os.count == 1 { result[ps[0].name] = os[0]; continue }
            var remaining = os.sorted(by: SymbolKey.numericOrder)
            let oOwners = Dictionary(uniqueKeysWithValues: remaining.map { ($0.name, owners(of: $0, in: oo)) })
            var unpaired: [ELFSymbol] = []
            // First the ones referenced by the same functions (a static local belongs to its function) ...
            for s in ps.sorted(by: SymbolKey.numericOrder) {
                let mine = owners(of: s, in: po)
                if !mine.isEmpty, let i = remaining.firstIndex(where: { oOwners[$0.name] == mine }) {
                    result[s.name] = remaining.remove(at: i)
                } else {
                    unpaired.append(s)
                }
            }
            // ... then, only when it is unambiguous, the last one left on each side. Anything else is new
            // (a wrong pairing would bind new code to another variable of the target).
            if unpaired.count == 1 && remaining.count == 1 { result[unpaired[0].name] = remaining[0] }
        }
        return result
    }

    /// Keys of the functions whose relocations designate `symbol`.
    private static func owners(of symbol: ELFSymbol, in obj: RelocatableObject) -> Set<String> {
        var out = Set<String>()
        for f in obj.functions {
            for r in obj.relocations(of: f) {
                let (k, _) = obj.resolve(r)
                switch k {
                case .object(let s) where s.name == symbol.name && s.sectionIndex == symbol.sectionIndex:
                    out.insert(SymbolKey.key(for: f.name))
                case .function(let s) where s.name == symbol.name && s.sectionIndex == symbol.sectionIndex:
                    out.insert(SymbolKey.key(for: f.name))
                default: break
                }
            }
        }
        return out
    }
}

/// One `synthesize` call: load, verify against the target, diff, refuse, write the payload.
struct PatchSynthesisRun {
    let request: SynthesisRequest

    func run() throws(BuildError) -> SynthesisResult? {
        // 1. Load every object; refuse LTO objects (GIMPLE bytecode, no machine code to diff).
        var pairs: [UnitPair] = []
        let originals = Dictionary(request.original.map { ($0.source, $0) }, uniquingKeysWith: { a, _ in a })
        for p in request.patched {
            let patched = try RelocatableObject(unit: p.source, path: p.object, directory: p.directory)
            let original = try originals[p.source].map { (u) throws(BuildError) in try RelocatableObject(unit: u.source, path: u.object, directory: u.directory) }
            for obj in [original, patched].compactMap({ $0 }) {
                if let lto = obj.sections.first(where: { $0.name.hasPrefix(".gnu.lto_") }) {
                    throw BuildError("\(obj.path) (unit \(obj.unit)) is an -flto object (section \(lto.name) holds GIMPLE, not machine code): build without -flto to make a patch")
                }
            }
            pairs.append(UnitPair(unit: p.source, original: original, patched: patched))
        }
        guard !pairs.isEmpty else { throw BuildError("no changed units to diff") }
        let target = try TargetImage(target: request.target, symbols: request.symbols)
        let debug = DebugInfoCache()

        // 2. The original build must reproduce the target: every function of a changed unit found in the
        //    target has the same bytes, relocation fields masked.
        var unitsInTarget = Set<String>()
        for pair in pairs {
            guard var o = pair.original else { continue }
            if let plain = originals[pair.unit]?.verificationObject {
                o = try RelocatableObject(unit: pair.unit, path: plain)
            }
            if try TargetVerifier.verify(o, against: target, debug: debug) { unitsInTarget.insert(pair.unit) }
        }

        // 3. Classify functions.
        var changed: [(UnitPair, ELFSymbol, ELFSymbol)] = []   // (pair, patched, original)
        var lineOnly: [String] = []
        var globalDefinitions: [String: PayloadBuilder.SymbolRef] = [:]
        for pair in pairs {
            for s in pair.patched.functions + pair.patched.objects where s.binding != ELFSymbol.bindLocal {
                globalDefinitions[s.name] = .init(unit: pair.unit, name: s.name)
            }
            guard let o = pair.original, unitsInTarget.contains(pair.unit) else { continue }
            for f in pair.patched.functions {
                guard let g = pair.functionMatch[f.name] else { continue }
                switch SymbolComparer.compare(o, g, pair.patched, f) {
                case .same: continue
                case .changed: changed.append((pair, f, g))
                case .bytesOnly(let offsets):
                    if try isLineNumberOnly(pair: pair, original: g, patched: f, offsets: offsets, debug: debug) {
                        lineOnly.append(g.name)
                    } else {
                        changed.append((pair, f, g))
                    }
                }
            }
        }

        // 4. Refusals: data, TLS, ifuncs, constructors, struct layouts.
        try Refusals.check(pairs: pairs.filter { $0.original == nil || unitsInTarget.contains($0.unit) },
                           changedFunctions: Set(changed.map { PayloadBuilder.SymbolRef(unit: $0.0.unit, name: $0.1.name) }),
                           debug: debug)

        // 5. Replaced functions: changed, not a `.cold` part (it goes with its parent), found in the target.
        var replaced: [(UnitPair, ELFSymbol, ELFSymbol, TargetImage.Symbol)] = []
        var included = Set<PayloadBuilder.SymbolRef>()
        for (pair, f, g) in changed {
            if SymbolKey.isColdPart(f.name) {
                // A changed cold part: its parent is replaced (the cold part is only entered from it).
                let parentKey = SymbolKey.key(for: f.name).replacingOccurrences(of: ".cold", with: "")
                if let parent = pair.patched.functionsByKey[parentKey]?.first, let pg = pair.functionMatch[parent.name],
                   !changed.contains(where: { $0.0 === pair && $0.1.name == parent.name }),
                   let t = try target.lookup(pg.name, unit: pair.unit, local: pg.binding == ELFSymbol.bindLocal),
                   !replaced.contains(where: { $0.0 === pair && $0.1.name == parent.name }) {
                    replaced.append((pair, parent, pg, t))
                    included.insert(.init(unit: pair.unit, name: parent.name))
                }
                included.insert(.init(unit: pair.unit, name: f.name))
                continue
            }
            guard let t = try target.lookup(g.name, unit: pair.unit, local: g.binding == ELFSymbol.bindLocal) else {
                // Not linked into this target (e.g. discarded by --gc-sections): payload-local if referenced.
                included.insert(.init(unit: pair.unit, name: f.name))
                continue
            }
            // One detour per target address (a C++ inline function defined in several changed units).
            if replaced.contains(where: { $0.3.value == t.value }) { continue }
            replaced.append((pair, f, g, t))
            included.insert(.init(unit: pair.unit, name: f.name))
        }
        // Cold parts of replaced functions travel with them.
        for (pair, f, _, _) in replaced {
            for c in pair.patched.functions where SymbolKey.isColdPart(c.name) && SymbolKey.base(of: c.name) == SymbolKey.base(of: f.name)
                && SymbolKey.key(for: c.name).hasPrefix(SymbolKey.key(for: f.name) + ".") {
                included.insert(.init(unit: pair.unit, name: c.name))
            }
        }
        guard !replaced.isEmpty else {
            if !changed.isEmpty || !lineOnly.isEmpty || unitsInTarget.isEmpty { return nil }
            return nil
        }

        // 6. The payload.
        let byUnit = Dictionary(pairs.map { ($0.unit, $0) }, uniquingKeysWith: { a, _ in a })
        let decisions = PayloadBuilder.Decisions(
            includedFunctions: included,
            originalSymbol: { ref in
                guard let pair = byUnit[ref.unit] else { return nil }
                return pair.functionMatch[ref.name] ?? pair.objectMatch[ref.name]
            },
            globalDefinitions: globalDefinitions)
        let builder = PayloadBuilder(target: target, objects: byUnit.mapValues(\.patched), decisions: decisions, debug: debug)
        var functions: [ReplacedFunction] = []
        for (pair, f, g, t) in replaced {
            try builder.defineFunction(.init(unit: pair.unit, name: f.name))
            functions.append(ReplacedFunction(symbol: g.name, unit: pair.unit, offset: t.value - target.linkBase,
                                              size: t.size, replacement: ""))
        }
        try builder.finish()
        for i in functions.indices {
            let (pair, f, _, _) = replaced[i]
            functions[i].replacement = builder.payloadNames[.init(unit: pair.unit, name: f.name)] ?? f.name
        }
        let replacements = Set(functions.map(\.replacement))
        let newFunctions = builder.payloadNames.values.filter { name in
            !replacements.contains(name) && !builder.newData.contains(name)
        }.sorted()

        let work = URL(fileURLWithPath: request.workDirectory)
        do {
            try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
            let name = URL(fileURLWithPath: request.target).lastPathComponent
            let path = work.appendingPathComponent("\(name).payload.o")
            try Data(builder.writer.write()).write(to: path, options: .atomic)

            var causes: [String: [String]] = [:]
            let changedNames = Set(changed.map { SymbolKey.base(of: $0.1.name) })
            for (pair, f, g, _) in replaced {
                let inlined = debug.info(pair.patched)?.inlinedCallees(of: f.name) ?? []
                let culprits = inlined.filter { callee in
                    callee != SymbolKey.base(of: f.name) && (changedNames.contains(callee)
                        || Self.inlineOnlyChanged(callee, pair: pair, debug: debug))
                }
                if !culprits.isEmpty { causes[g.name] = Array(Set(culprits)).sorted() }
            }
            return SynthesisResult(
                payload: path.path,
                functions: functions.sorted { ($0.unit, $0.symbol) < ($1.unit, $1.symbol) },
                newFunctions: newFunctions,
                lineNumberOnly: lineOnly.sorted(),
                inlinedCauses: causes,
                newData: builder.newData.sorted(),
                targetSymbols: builder.targetSymbols.sorted { $0.payloadSymbol < $1.payloadSymbol },
                imports: builder.imports.sorted())
        } catch {
            throw BuildError("\(request.workDirectory): cannot write the payload: \(error)")
        }
    }

    /// A function with no out-of-line copy whose source text changed (it can only be seen where inlined).
    private static func inlineOnlyChanged(_ name: String, pair: UnitPair, debug: DebugInfoCache) -> Bool {
        guard let o = pair.original, let oi = debug.info(o), let pi = debug.info(pair.patched),
              let a = oi.functionSource(name), let b = pi.functionSource(name) else { return false }
        return a != b
    }

    /// `__LINE__`-only rule (docs/build.md): the function's declaration moved by `delta` lines, and every
    /// differing byte lies in an immediate equal to a line of the original function's line range in the
    /// original and to that line + `delta` in the patched build.
    private func isLineNumberOnly(pair: UnitPair, original g: ELFSymbol, patched f: ELFSymbol, offsets: [Int],
                                  debug: DebugInfoCache) throws(BuildError) -> Bool {
        guard let o = pair.original, let oi = debug.info(o), let pi = debug.info(pair.patched),
              let od = oi.function(named: SymbolKey.base(of: g.name)),
              let pd = pi.function(named: SymbolKey.base(of: f.name)) else { return false }
        let delta = Int64(pd.declLine) - Int64(od.declLine)
        guard delta != 0, let range = od.lineRange else { return false }
        // The function's own source text must be the same (after the move), else it really changed.
        if let a = oi.functionSource(od.name), let b = pi.functionSource(pd.name), a != b { return false }
        return SymbolComparer.onlyLineNumbers(original: o.bytes(of: g), patched: pair.patched.bytes(of: f),
                                              offsets: offsets, delta: delta, lines: range)
    }
}
