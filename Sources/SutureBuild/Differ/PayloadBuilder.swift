import SutureELF

/// Assembles the payload object: copies the included functions and the data and rodata they need from the
/// patched objects, and rewrites every relocation to a payload symbol, a target symbol (bound to the
/// target's own address) or an import.
final class PayloadBuilder {
    /// Decides, for a patched symbol, whether it lives in the payload.
    struct Decisions {
        /// (unit, patched symbol name) of functions defined in the payload.
        var includedFunctions: Set<SymbolRef>
        /// Patched function/object → its original counterpart (nil = new).
        var originalSymbol: (SymbolRef) -> ELFSymbol?
        /// Global name → the unit defining it in a patched object (for cross-unit references).
        var globalDefinitions: [String: SymbolRef]
    }

    struct SymbolRef: Hashable {
        var unit: String
        var name: String
    }

    let target: TargetImage
    let objects: [String: RelocatableObject]   // unit → patched object
    let decisions: Decisions
    let debug: DebugInfoCache
    private(set) var writer = ELFRelocatableWriter()
    private var definedFunctions: [SymbolRef: Int] = [:]   // → writer symbol index
    private var definedObjects: [SymbolRef: Int] = [:]
    private var copiedSections: [String: [Int: Int]] = [:] // unit → patched section → writer section
    private var targetRefs: [String: Int] = [:]            // payload name → writer symbol
    private var importRefs: [String: Int] = [:]
    private var usedNames: Set<String> = []
    private var stringSection: Int?
    private var strings: [[UInt8]: Int] = [:]
    private var constSection: Int?
    private var constants: [[UInt8]: Int] = [:]
    private(set) var targetSymbols: [TargetSymbolReference] = []
    private(set) var imports: [String] = []
    private(set) var newData: [String] = []
    private(set) var payloadNames: [SymbolRef: String] = [:]
    private var pending: [(SymbolRef, ELFSymbol, Int)] = []   // functions whose relocations are not yet copied

    init(target: TargetImage, objects: [String: RelocatableObject], decisions: Decisions, debug: DebugInfoCache) {
        self.debug = debug
        self.target = target
        self.objects = objects
        self.decisions = decisions
    }

    private func uniqueName(_ name: String, unit: String, local: Bool) -> String {
        var candidate = name
        if usedNames.contains(candidate) { candidate = "\(unit):\(name)" }
        var n = 2
        while usedNames.contains(candidate) { candidate = "\(unit):\(name)#\(n)"; n += 1 }
        usedNames.insert(candidate)
        return candidate
    }

    /// Defines a function in the payload (once) and returns its writer symbol index.
    @discardableResult
    func defineFunction(_ ref: SymbolRef) throws(BuildError) -> Int {
        if let i = definedFunctions[ref] { return i }
        guard let obj = objects[ref.unit],
              let sym = obj.functions.first(where: { $0.name == ref.name }) else {
            throw BuildError("internal: function \(ref.name) of \(ref.unit) not found in the patched object")
        }
        let header = obj.sections[Int(sym.sectionIndex)]
        if obj.sections.contains(where: { $0.name == ".gcc_except_table.\(sym.name)" }) {
            throw BuildError("refused: \(place(sym.name, ref.unit)) has C++ exception handling (.gcc_except_table.\(sym.name)); exceptions cannot be unwound through patch code")
        }
        let name = uniqueName(sym.name, unit: ref.unit, local: sym.binding == ELFSymbol.bindLocal)
        payloadNames[ref] = name
        let section = writer.addSection(.init(name: ".text.\(name)", flags: 0x6, alignment: max(header.alignment, 16),
                                              bytes: obj.bytes(of: sym)))
        let index = writer.addSymbol(.init(name: name, type: ELFSymbol.typeFunction, binding: ELFSymbol.bindGlobal,
                                           section: section, value: 0, size: sym.size))
        definedFunctions[ref] = index
        pending.append((ref, sym, section))
        return index
    }

    /// Copies relocations of every defined function (which may define more functions and data).
    func finish() throws(BuildError) {
        while let (ref, sym, section) = pending.popLast() {
            let obj = objects[ref.unit]!
            var relocations: [ELFRelocatableWriter.Relocation] = []
            for r in obj.relocations(of: sym) {
                let (t, addend) = try rewrite(r, in: obj, unit: ref.unit, from: sym.name)
                relocations.append(.init(offset: r.offset - sym.value, type: r.type, target: t, addend: addend))
            }
            writer.sections[section].relocations = relocations
        }
    }

    private func targetReference(payloadName: String, targetName: String, address: UInt64) -> Int {
        if let i = targetRefs[payloadName] { return i }
        usedNames.insert(payloadName)
        let i = writer.addSymbol(.init(name: payloadName, type: 0, binding: ELFSymbol.bindGlobal, section: nil))
        targetRefs[payloadName] = i
        targetSymbols.append(.init(payloadSymbol: payloadName, targetSymbol: targetName, offset: address - target.linkBase))
        return i
    }

    private func importReference(_ name: String, weak: Bool) -> Int {
        if let i = importRefs[name] { return i }
        usedNames.insert(name)
        let i = writer.addSymbol(.init(name: name, type: 0, binding: weak ? ELFSymbol.bindWeak : ELFSymbol.bindGlobal,
                                       section: nil))
        importRefs[name] = i
        imports.append(name)
        return i
    }

    /// A reference to the target's copy of an existing function or object (`original`: the original
    /// build's symbol), checked to have the same size in the target.
    private func existing(_ original: ELFSymbol, unit: String, kind: String, from: String) throws(BuildError) -> Int {
        let name = original.name
        let local = original.binding == ELFSymbol.bindLocal
        guard let t = try target.lookup(name, unit: unit, local: local) else {
            throw BuildError("\(place(from, unit)) references the \(local ? "static " : "")\(kind) \(name), which the target \(target.path) does not define")
        }
        if t.size != original.size {
            throw BuildError("the rebuild does not reproduce the target: \(kind) \(name) (unit \(unit)) is \(original.size) bytes in the rebuild and \(t.size) in \(target.path); wrong base tree or flags?")
        }
        let payloadName = local ? "\(unit):\(name)" : name
        return targetReference(payloadName: payloadName, targetName: name, address: t.value)
    }

    /// `f (unit u at file:line)` for messages.
    private func place(_ from: String, _ unit: String) -> String {
        guard let obj = objects[unit] else { return "\(from) (unit \(unit))" }
        return "\(from) (unit \(unit)\(debug.location(of: from, in: obj)))"
    }

    private func rewrite(_ r: ELFRelocation, in obj: RelocatableObject, unit: String, from: String)
        throws(BuildError) -> (ELFRelocatableWriter.RelocationTarget, Int64) {
        if tlsRelocationTypes.contains(r.type) {
            let name = r.symbolIndex < obj.symbols.count ? obj.symbols[r.symbolIndex].name : "?"
            throw BuildError("refused: \(place(from, unit)) uses the thread-local variable \(name): thread-local storage cannot be referenced from a patch")
        }
        let (kind, addend) = obj.resolve(r)
        switch kind {
        case .function(let s):
            let ref = SymbolRef(unit: unit, name: s.name)
            if decisions.includedFunctions.contains(ref) || decisions.originalSymbol(ref) == nil {
                return (.symbol(try defineFunction(ref)), addend)
            }
            let o = decisions.originalSymbol(ref)!
            return (.symbol(try existing(o, unit: unit, kind: "function", from: from)), addend)
        case .object(let s):
            if s.type == ELFSymbol.typeTLS {
                throw BuildError("refused: \(place(from, unit)) uses the thread-local variable \(s.name): thread-local storage cannot be referenced from a patch")
            }
            let ref = SymbolRef(unit: unit, name: s.name)
            if let o = decisions.originalSymbol(ref) {
                return (.symbol(try existing(o, unit: unit, kind: "variable", from: from)), addend)
            }
            return (.symbol(try defineObject(ref, symbol: s, in: obj)), addend)
        case .external(let s):
            if let def = decisions.globalDefinitions[s.name], let defObj = objects[def.unit] {
                if let ds = defObj.functions.first(where: { $0.name == s.name }) {
                    if decisions.includedFunctions.contains(def) || decisions.originalSymbol(def) == nil {
                        return (.symbol(try defineFunction(def)), addend)
                    }
                    _ = ds
                } else if let ds = defObj.objects.first(where: { $0.name == s.name }), decisions.originalSymbol(def) == nil {
                    return (.symbol(try defineObject(def, symbol: ds, in: defObj)), addend)
                }
            }
            if s.type == ELFSymbol.typeTLS {
                throw BuildError("refused: \(place(from, unit)) uses the thread-local variable \(s.name): thread-local storage cannot be referenced from a patch")
            }
            if s.name == "_GLOBAL_OFFSET_TABLE_" {
                throw BuildError("\(place(from, unit)) references _GLOBAL_OFFSET_TABLE_ (large code model?), which a patch cannot")
            }
            if let t = try target.lookup(s.name, unit: unit, local: false) {
                return (.symbol(targetReference(payloadName: s.name, targetName: t.name, address: t.value)), addend)
            }
            return (.symbol(importReference(s.name, weak: s.binding == ELFSymbol.bindWeak)), addend)
        case .string(_, _, let bytes):
            if let address = target.findReadOnly(bytes) {
                let name = "__suture_str.\(String(address - target.linkBase, radix: 16))"
                let text = String(decoding: bytes.dropLast().prefix(40), as: UTF8.self)
                return (.symbol(targetReference(payloadName: name, targetName: "\"\(text)\"", address: address)), addend)
            }
            let (section, offset) = addString(bytes)
            return (.section(section), addend + Int64(offset))
        case .constant(let sec, _, let bytes):
            let (section, offset) = addConstant(bytes, alignment: obj.sections[sec].alignment)
            return (.section(section), addend + Int64(offset))
        case .anonymous(let sec):
            return (.section(try copySection(sec, of: obj, unit: unit)), addend)
        case .other(let n):
            throw BuildError("\(from) (unit \(unit)): relocation against \(n) cannot be expressed in a payload")
        }
    }

    private func addString(_ bytes: [UInt8]) -> (Int, Int) {
        if stringSection == nil {
            stringSection = writer.addSection(.init(name: ".rodata.str1.1", flags: 0x2, alignment: 1, bytes: []))
        }
        if let o = strings[bytes] { return (stringSection!, o) }
        let o = writer.sections[stringSection!].bytes.count
        writer.sections[stringSection!].bytes += bytes
        strings[bytes] = o
        return (stringSection!, o)
    }

    private func addConstant(_ bytes: [UInt8], alignment: UInt64) -> (Int, Int) {
        if constSection == nil {
            constSection = writer.addSection(.init(name: ".rodata.cst", flags: 0x2, alignment: 32, bytes: []))
        }
        if let o = constants[bytes] { return (constSection!, o) }
        let align = Int(max(alignment, 1))
        while writer.sections[constSection!].bytes.count % align != 0 { writer.sections[constSection!].bytes.append(0) }
        let o = writer.sections[constSection!].bytes.count
        writer.sections[constSection!].bytes += bytes
        constants[bytes] = o
        return (constSection!, o)
    }

    /// Copies a whole patched section (anonymous rodata, jump tables) with its relocations rewritten.
    private func copySection(_ index: Int, of obj: RelocatableObject, unit: String) throws(BuildError) -> Int {
        if let s = copiedSections[unit]?[index] { return s }
        let h = obj.sections[index]
        if h.isWritable {
            throw BuildError("unit \(unit): code references the writable section \(h.name), which has no symbol; it cannot be shared with the target (build with -fdata-sections)")
        }
        let s = writer.addSection(.init(name: h.name, type: h.type, flags: h.flags & 0x7, alignment: h.alignment,
                                        bytes: obj.bytes(index), noBitsSize: h.size))
        copiedSections[unit, default: [:]][index] = s
        var rel: [ELFRelocatableWriter.Relocation] = []
        for r in obj.relocations[index] ?? [] {
            let (t, a) = try rewrite(r, in: obj, unit: unit, from: h.name)
            rel.append(.init(offset: r.offset, type: r.type, target: t, addend: a))
        }
        writer.sections[s].relocations = rel
        return s
    }

    /// Defines a new data object in the payload, initialized as in the patched object.
    private func defineObject(_ ref: SymbolRef, symbol s: ELFSymbol, in obj: RelocatableObject) throws(BuildError) -> Int {
        if let i = definedObjects[ref] { return i }
        let h = obj.sections[Int(s.sectionIndex)]
        let name = uniqueName(s.name, unit: ref.unit, local: s.binding == ELFSymbol.bindLocal)
        payloadNames[ref] = name
        newData.append(name)
        let section = writer.addSection(.init(name: (h.isNoBits ? ".bss." : h.isWritable ? ".data." : ".rodata.") + name,
                                              type: h.type, flags: h.flags & 0x7, alignment: h.alignment,
                                              bytes: h.isNoBits ? [] : obj.bytes(of: s), noBitsSize: s.size))
        let index = writer.addSymbol(.init(name: name, type: ELFSymbol.typeObject, binding: ELFSymbol.bindGlobal,
                                           section: section, value: 0, size: s.size))
        definedObjects[ref] = index
        var rel: [ELFRelocatableWriter.Relocation] = []
        for r in obj.relocations(of: s) {
            let (t, a) = try rewrite(r, in: obj, unit: ref.unit, from: s.name)
            rel.append(.init(offset: r.offset - s.value, type: r.type, target: t, addend: a))
        }
        writer.sections[section].relocations = rel
        return index
    }
}
