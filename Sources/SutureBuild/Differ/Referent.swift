import SutureELF

/// What a relocation points at, independent of section layout: the symbolic form in which an original and
/// a patched relocation are compared (docs/build.md, "How the differ decides").
indirect enum Referent: Hashable, CustomStringConvertible {
    /// A function defined in the object, by correlation key.
    case function(String)
    /// A data object defined in the object, by correlation key.
    case object(String)
    /// An undefined (external) symbol, by name.
    case external(String)
    /// A string literal in a mergeable string section: its bytes including the NUL.
    case string([UInt8])
    /// A mergeable constant (`.rodata.cst8`, …): its bytes.
    case constant([UInt8])
    /// A section without named symbols (jump tables, anonymous rodata): its name key and symbolic contents.
    case anonymous(String, [UInt8], [AnonymousRelocation])
    /// Anything else: section name and offset.
    case other(String, Int64)

    struct AnonymousRelocation: Hashable {
        var offset: UInt64
        var type: UInt32
        var referent: Referent
        var addend: Int64
    }

    var description: String {
        switch self {
        case .function(let n): return n
        case .object(let n): return n
        case .external(let n): return n
        case .string(let b): return "string \"\(String(decoding: b.dropLast(), as: UTF8.self))\""
        case .constant: return "constant"
        case .anonymous(let n, _, _): return "section \(n)"
        case .other(let n, let o): return "\(n)+\(o)"
        }
    }
}

/// The defined thing a relocation resolves to, with the addend made relative to it.
enum RelocationTargetKind {
    case function(ELFSymbol)
    case object(ELFSymbol)
    case external(ELFSymbol)
    /// String in section `section` starting at `start`.
    case string(section: Int, start: Int, bytes: [UInt8])
    case constant(section: Int, start: Int, bytes: [UInt8])
    case anonymous(section: Int)
    case other(String)
}

/// x86-64 relocation types whose value is `S + A` (no `- P`): `R_X86_64_64` 1, `32` 10, `32S` 11.
let absoluteRelocationTypes: Set<UInt32> = [1, 10, 11]
/// TLS relocation types (`DTPMOD64` … `GOTPC32_TLSDESC`, `TLSDESC_CALL`, `TLSDESC`).
let tlsRelocationTypes: Set<UInt32> = [16, 17, 18, 19, 20, 21, 22, 23, 34, 35, 36]

extension RelocatableObject {
    /// The position a relocation designates inside its target section: the addend for absolute types,
    /// `addend + 4` for PC-relative ones (the displacement is measured from the end of a 4-byte field;
    /// an immediate after the field makes it larger, which `resolve` tolerates by snapping forward).
    func designatedOffset(_ r: ELFRelocation) -> Int64 {
        absoluteRelocationTypes.contains(r.type) ? r.addend : r.addend + 4
    }

    /// Resolves a relocation to what it designates and the addend relative to that thing.
    func resolve(_ r: ELFRelocation) -> (RelocationTargetKind, Int64) {
        guard r.symbolIndex < symbols.count else { return (.other("#\(r.symbolIndex)"), r.addend) }
        let sym = symbols[r.symbolIndex]
        if !sym.isDefined { return (.external(sym), r.addend) }
        if sym.sectionIndex >= 0xff00 { return (.other(sym.name), r.addend) }
        let section = Int(sym.sectionIndex)
        if sym.type != ELFSymbol.typeSection {
            let canonical = aliases[sym.index] ?? sym
            switch sym.type {
            case ELFSymbol.typeFunction, ELFSymbol.typeIFunc: return (.function(canonical), r.addend)
            case ELFSymbol.typeObject, ELFSymbol.typeTLS: return (.object(canonical), r.addend)
            default: break
            }
        }
        // Section symbol (or a label): find what lives at the designated position.
        let base = Int64(sym.type == ELFSymbol.typeSection ? 0 : sym.value)
        let p = base + designatedOffset(r)
        let data = bytes(section)
        if isStringSection(section) {
            var s = Int(max(0, min(p, Int64(data.count))))
            while s > 0 && s < data.count && data[s - 1] != 0 { s += 1 }
            var e = s
            while e < data.count && data[e] != 0 { e += 1 }
            let str = s < data.count ? Array(data[s...min(e, data.count - 1)]) : []
            return (.string(section: section, start: s, bytes: str), r.addend + base - Int64(s))
        }
        if isConstantSection(section) {
            let size = Int(sections[section].entrySize)
            var s = Int(max(0, p))
            s = (s + size - 1) / size * size
            let entry = s + size <= data.count ? Array(data[s..<(s + size)]) : []
            return (.constant(section: section, start: s, bytes: entry), r.addend + base - Int64(s))
        }
        let defined = symbolsBySection[section] ?? []
        if defined.isEmpty { return (.anonymous(section: section), r.addend + base) }
        let target: ELFSymbol
        if defined.count == 1 {
            target = defined[0]
        } else {
            let clamped = UInt64(max(0, p))
            guard let s = symbol(in: section, at: clamped) ?? defined.filter({ $0.value <= clamped }).max(by: { $0.value < $1.value })
            else { return (.other(sections[section].name), r.addend + base) }
            target = s
        }
        let rel = r.addend + base - Int64(target.value)
        if target.type == ELFSymbol.typeFunction || target.type == ELFSymbol.typeIFunc { return (.function(target), rel) }
        return (.object(target), rel)
    }

    /// The symbolic referent of a relocation (for comparing an original and a patched relocation).
    func referent(_ r: ELFRelocation, visiting: inout Set<Int>) -> (Referent, Int64) {
        let (kind, addend) = resolve(r)
        switch kind {
        case .function(let s): return (.function(SymbolKey.key(for: s.name)), addend)
        case .object(let s): return (.object(SymbolKey.key(for: s.name)), addend)
        case .external(let s): return (.external(s.name), addend)
        case .string(_, _, let b): return (.string(b), addend)
        case .constant(_, _, let b): return (.constant(b), addend)
        case .other(let n): return (.other(n, 0), addend)
        case .anonymous(let section):
            let name = SymbolKey.key(for: sections[section].name)
            if visiting.contains(section) { return (.other(name, 0), addend) }
            visiting.insert(section)
            defer { visiting.remove(section) }
            var data = bytes(section)
            var rels: [Referent.AnonymousRelocation] = []
            for x in relocations[section] ?? [] {
                mask(&data, at: Int(x.offset), type: x.type)
                let (ref, a) = referent(x, visiting: &visiting)
                rels.append(.init(offset: x.offset, type: x.type, referent: ref, addend: a))
            }
            return (.anonymous(name, data, rels), addend)
        }
    }
}

/// Width in bytes of the field a relocation type writes (x86-64 psABI).
func relocationWidth(_ type: UInt32) -> Int {
    switch type {
    case 0: return 0
    case 1, 24, 16, 17, 18, 26, 36: return 8   // 64, PC64, DTPMOD64, DTPOFF64, TPOFF64, GOTOFF64, TLSDESC
    case 12, 13: return 2
    case 14, 15: return 1
    default: return 4
    }
}

/// Zeroes the field a relocation writes.
func mask(_ data: inout [UInt8], at offset: Int, type: UInt32) {
    let w = relocationWidth(type)
    guard offset >= 0 else { return }
    for i in offset..<min(offset + w, data.count) { data[i] = 0 }
}
