import SutureELF

/// What a patch may not change, checked over every unit linked into the target (docs/build.md,
/// "Refusals"). Each refusal is one `BuildError` naming the symbol or type, its unit and `file:line`.
enum Refusals {
    static func check(pairs: [UnitPair], changedFunctions: Set<PayloadBuilder.SymbolRef>,
                      debug: DebugInfoCache) throws(BuildError) {
        for pair in pairs {
            let p = pair.patched
            let unit = pair.unit
            // New indirect functions: an ifunc resolver runs at load time, which a patch cannot repeat.
            for f in p.functions where f.type == ELFSymbol.typeIFunc {
                let old = pair.functionMatch[f.name]
                if old == nil || old!.type != ELFSymbol.typeIFunc {
                    throw BuildError("refused: \(f.name) (unit \(unit)\(debug.location(of: f.name, in: p))) is a new GNU indirect function (ifunc); its resolver would never run in a patch")
                }
            }
            // Constructors/destructors: new entries would never run.
            try checkConstructors(pair, debug: debug)
            // Data.
            for d in p.objects {
                let isTLS = d.type == ELFSymbol.typeTLS || p.sections[Int(d.sectionIndex)].isTLS
                let loc = debug.location(of: d.name, in: p)
                guard let o = pair.original, let e = pair.objectMatch[d.name] else {
                    if isTLS {
                        throw BuildError("refused: new thread-local variable \(d.name) (unit \(unit)\(loc)): thread-local storage cannot be added by a patch")
                    }
                    continue
                }
                if d.size != e.size {
                    throw BuildError("refused: the size of existing \(isTLS ? "thread-local " : "")variable \(e.name) (unit \(unit)\(loc)) changes from \(e.size) to \(d.size) bytes; the running program keeps the old object")
                }
                switch SymbolComparer.compare(o, e, p, d) {
                case .same:
                    continue
                case .changed, .bytesOnly:
                    if isTLS {
                        throw BuildError("refused: the initializer of thread-local variable \(e.name) (unit \(unit)\(loc)) changes; thread-local storage cannot be changed by a patch")
                    }
                    let pointsAtCode = (o.relocations(of: e) + []).contains { r in
                        if case .function = o.resolve(r).0 { return true } else { return false }
                    } || p.relocations(of: d).contains { r in
                        if case .function = p.resolve(r).0 { return true } else { return false }
                    }
                    if pointsAtCode {
                        throw BuildError("refused: the function-pointer table \(e.name) (unit \(unit)\(loc)) changes; the running program keeps using the old table (change the code that uses it instead)")
                    }
                    throw BuildError("refused: the initializer of existing variable \(e.name) (unit \(unit)\(loc)) changes; the running program keeps its current value (a patch cannot re-initialize data)")
                }
            }
            try checkLayouts(pair, changedFunctions: changedFunctions, debug: debug)
        }
    }

    private static func constructorTargets(_ obj: RelocatableObject) -> [String] {
        var out: [String] = []
        for s in obj.sections where [14, 15, 16].contains(s.type) || s.name.hasPrefix(".ctors") || s.name.hasPrefix(".dtors")
            || s.name.hasPrefix(".init_array") || s.name.hasPrefix(".fini_array") {
            for r in obj.relocations[s.index] ?? [] {
                switch obj.resolve(r).0 {
                case .function(let f): out.append("\(s.name):\(SymbolKey.key(for: f.name))")
                case .external(let f): out.append("\(s.name):\(f.name)")
                default: out.append("\(s.name):?")
                }
            }
        }
        return out.sorted()
    }

    private static func checkConstructors(_ pair: UnitPair, debug: DebugInfoCache) throws(BuildError) {
        let now = constructorTargets(pair.patched)
        let before = pair.original.map(constructorTargets) ?? []
        guard now != before else { return }
        let added = now.filter { !before.contains($0) }
        let what = (added.first ?? now.first ?? "").split(separator: ":", maxSplits: 1).map(String.init)
        let name = what.count == 2 ? what[1] : "?"
        throw BuildError("refused: the patch adds or changes a constructor/destructor (\(what.first ?? "?") entry \(name), unit \(pair.unit)\(debug.location(of: name, in: pair.patched))); it would never run in a live patch")
    }

    /// A struct/union/class whose layout differs while an unchanged function or existing data uses it.
    private static func checkLayouts(_ pair: UnitPair, changedFunctions: Set<PayloadBuilder.SymbolRef>,
                                     debug: DebugInfoCache) throws(BuildError) {
        guard let o = pair.original, let oi = debug.info(o), let pi = debug.info(pair.patched) else { return }
        var differing: [String: String] = [:]   // type → what differs
        for (name, a) in oi.layouts.sorted(by: { $0.key < $1.key }) {
            guard let b = pi.layouts[name], a.size != b.size || a.members != b.members else { continue }
            differing[name] = describe(a, b)
        }
        guard !differing.isEmpty else { return }
        let changedBases = Set(changedFunctions.filter { $0.unit == pair.unit }.map { SymbolKey.base(of: $0.name) })
        // Unchanged functions of the original object that use a differing type.
        for f in o.functions.sorted(by: { $0.name < $1.name }) where !SymbolKey.isColdPart(f.name) {
            let base = SymbolKey.base(of: f.name)
            if changedBases.contains(base) { continue }
            guard let info = oi.function(named: f.name) else { continue }
            if let t = info.usedTypes.sorted().first(where: { differing[$0] != nil }) {
                let decl = oi.layouts[t].flatMap { l in l.declFile.map { " (declared at \(DebugInfoCache.relative($0, to: o.directory)):\(l.declLine))" } } ?? ""
                throw BuildError("refused: the layout of \(t)\(decl) changes (\(differing[t]!)) and the unchanged function \(f.name) (unit \(pair.unit)\(debug.location(of: f.name, in: o))) uses it; it would access the new objects with the old layout")
            }
        }
        // Existing data of a differing type.
        for e in o.objects.sorted(by: { $0.name < $1.name }) {
            guard let v = oi.variables[e.name]?.first ?? oi.variables[SymbolKey.base(of: e.name)]?.first else { continue }
            if let t = v.usedTypes.sorted().first(where: { differing[$0] != nil }) {
                throw BuildError("refused: the layout of \(t) changes (\(differing[t]!)) and the existing variable \(e.name) (unit \(pair.unit)\(debug.location(of: e.name, in: o))) uses it; the running program's object keeps the old layout")
            }
        }
    }

    private static func describe(_ a: DWARFObjectInfo.Layout, _ b: DWARFObjectInfo.Layout) -> String {
        var facts: [String] = []
        let old = Dictionary(a.members.map { ($0.name, $0) }, uniquingKeysWith: { x, _ in x })
        let new = Dictionary(b.members.map { ($0.name, $0) }, uniquingKeysWith: { x, _ in x })
        for m in b.members where old[m.name] == nil { facts.append("member \(m.name) added at offset \(m.offset)") }
        for m in a.members where new[m.name] == nil { facts.append("member \(m.name) removed") }
        for m in a.members {
            guard let n = new[m.name] else { continue }
            if m.offset != n.offset { facts.append("member \(m.name) moves from offset \(m.offset) to \(n.offset)") }
            else if m.type != n.type { facts.append("member \(m.name) changes type from \(m.type) to \(n.type)") }
            else if m.bitOffset != n.bitOffset { facts.append("member \(m.name) changes its bit-field layout") }
        }
        if a.size != b.size { facts.append("size \(a.size) -> \(b.size) bytes") }
        if facts.isEmpty { facts.append("member order changes") }
        return facts.prefix(3).joined(separator: "; ")
    }
}
