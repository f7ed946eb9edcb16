import SutureELF

/// A compiled unit's `ET_REL` object loaded for diffing: sections with contents, `.symtab`, and relocations
/// grouped by the section they apply to (sorted by offset).
final class RelocatableObject {
    let unit: String
    let path: String
    /// The compile's working directory (the tree root): DWARF paths in messages are made relative to it.
    let directory: String
    let sections: [ELFSectionHeader]
    let symbols: [ELFSymbol]
    private(set) var contents: [Int: [UInt8]] = [:]
    let relocations: [Int: [ELFRelocation]]
    /// Defined `STT_FUNC` symbols.
    let functions: [ELFSymbol]
    /// Defined `STT_OBJECT` / `STT_TLS` symbols (not `SHN_COMMON`).
    let objects: [ELFSymbol]
    /// Symbol index → the canonical symbol at the same place (itself for non-aliases).
    let aliases: [Int: ELFSymbol]
    /// Section index → the named symbols defined in it.
    let symbolsBySection: [Int: [ELFSymbol]]
    /// Correlation key → functions (see `SymbolKey`).
    let functionsByKey: [String: [ELFSymbol]]
    let objectsByKey: [String: [ELFSymbol]]

    init(unit: String, path: String, directory: String = "") throws(BuildError) {
        self.unit = unit
        self.path = path
        self.directory = directory
        do {
            let elf = try ELFObjectFile(path: path)
            guard elf.fileType == ELFObjectFile.typeRelocatable, elf.machine == ELFObjectFile.machineX86_64 else {
                throw BuildError("\(path) (unit \(unit)): not an x86-64 relocatable object")
            }
            sections = elf.sections
            symbols = try elf.symbols(.symtab)
            var rel: [Int: [ELFRelocation]] = [:]
            for rs in try elf.relocationSections() {
                rel[rs.targetSectionIndex, default: []] += rs.relocations
            }
            relocations = rel.mapValues { $0.sorted { $0.offset < $1.offset } }
            for s in sections where s.index > 0 && s.type != 8 && (s.isAllocated || s.name.hasPrefix(".gnu.lto_")) {
                contents[s.index] = try elf.sectionData(s.index)
            }
        } catch let e as BuildError {
            throw e
        } catch {
            throw BuildError("\(path) (unit \(unit)): \(error)")
        }
        let sectionCount = sections.count
        let named = symbols.filter {
            !$0.name.isEmpty && $0.isDefined && Int($0.sectionIndex) < sectionCount && $0.sectionIndex < 0xff00
        }
        // Aliases at one address (`f` and its `f.localalias`, C++ constructor variants) are one symbol:
        // the global one, else the one without a compiler suffix.
        func canonical(_ list: [ELFSymbol]) -> ([ELFSymbol], [Int: ELFSymbol]) {
            var byPlace: [String: ELFSymbol] = [:]
            for s in list {
                let key = "\(s.sectionIndex):\(s.value)"
                guard let other = byPlace[key] else { byPlace[key] = s; continue }
                let better = (s.binding != ELFSymbol.bindLocal && other.binding == ELFSymbol.bindLocal)
                    || (s.binding == other.binding && !s.name.contains(".") && other.name.contains("."))
                if better { byPlace[key] = s }
            }
            var alias: [Int: ELFSymbol] = [:]
            for s in list { alias[s.index] = byPlace["\(s.sectionIndex):\(s.value)"]! }
            return (list.filter { alias[$0.index]!.index == $0.index }, alias)
        }
        let (f, fa) = canonical(named.filter { $0.type == ELFSymbol.typeFunction || $0.type == ELFSymbol.typeIFunc })
        let (o, oa) = canonical(named.filter { $0.type == ELFSymbol.typeObject || $0.type == ELFSymbol.typeTLS })
        functions = f
        objects = o
        aliases = fa.merging(oa, uniquingKeysWith: { a, _ in a })
        symbolsBySection = Dictionary(grouping: functions + objects, by: { Int($0.sectionIndex) })
        functionsByKey = Dictionary(grouping: functions, by: { SymbolKey.key(for: $0.name) })
        objectsByKey = Dictionary(grouping: objects, by: { SymbolKey.key(for: $0.name) })
    }

    /// Contents of a section (empty for NOBITS or non-allocated sections).
    func bytes(_ section: Int) -> [UInt8] { contents[section] ?? [] }

    /// The bytes of a defined symbol.
    func bytes(of symbol: ELFSymbol) -> [UInt8] {
        let data = bytes(Int(symbol.sectionIndex))
        let start = Int(symbol.value), end = start + Int(symbol.size)
        guard start <= end, end <= data.count else { return [] }
        return Array(data[start..<end])
    }

    /// Relocations inside a defined symbol's bytes.
    func relocations(of symbol: ELFSymbol) -> [ELFRelocation] {
        relocations(in: Int(symbol.sectionIndex), from: symbol.value, size: symbol.size)
    }

    /// Relocations of `section` with offsets in `[from, from + size)`.
    func relocations(in section: Int, from: UInt64, size: UInt64) -> [ELFRelocation] {
        (relocations[section] ?? []).filter { $0.offset >= from && $0.offset < from + size }
    }

    /// The named function or object defined at `offset` in `section` (the one whose range holds it).
    func symbol(in section: Int, at offset: UInt64) -> ELFSymbol? {
        let candidates = symbolsBySection[section] ?? []
        return candidates.first { offset >= $0.value && offset < $0.value + max($0.size, 1) }
            ?? candidates.first { $0.value == offset }
    }

    /// Whether a section holds NUL-terminated strings (`SHF_MERGE | SHF_STRINGS`).
    func isStringSection(_ section: Int) -> Bool {
        let s = sections[section]
        return s.flags & 0x30 == 0x30
    }

    /// Whether a section holds fixed-size mergeable constants (`SHF_MERGE` without `SHF_STRINGS`).
    func isConstantSection(_ section: Int) -> Bool {
        let s = sections[section]
        return s.flags & 0x30 == 0x10 && s.entrySize > 0
    }
}

/// Correlation keys: the names under which an original and a patched symbol are the same thing.
///
/// GCC appends numeric suffixes that move between builds: static locals (`counter.1` → `counter.3`), clones
/// (`parse.isra.0`, `scan.constprop.1`, `split.part.0`) and their combinations. The key drops every
/// all-digit dot-component after the first (`parse.constprop.0.isra.0` → `parse.constprop.isra`) and keeps
/// the clone kind; `.cold` parts keep `.cold`. Symbols that still collide within one object are paired in
/// the order of their numeric suffixes.
enum SymbolKey {
    static func key(for name: String) -> String {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count > 1 else { return name }
        var kept = [parts[0]]
        for p in parts.dropFirst() where !(p.allSatisfy(\.isNumber) && !p.isEmpty) { kept.append(p) }
        return kept.joined(separator: ".")
    }

    /// The clone kind suffixes gcc emits.
    static let cloneMarkers = ["isra", "constprop", "part", "cold", "lto_priv", "localalias"]

    /// The function a clone derives from (`parse.isra.0` → `parse`).
    static func base(of name: String) -> String {
        String(name.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)[0])
    }

    /// Whether `name` is a `.cold` part (never an entry point; goes with its parent).
    static func isColdPart(_ name: String) -> Bool {
        name.split(separator: ".").dropFirst().contains("cold")
    }

    /// Orders same-key symbols by the numbers in their names (`x.1` before `x.12`).
    static func numericOrder(_ a: ELFSymbol, _ b: ELFSymbol) -> Bool {
        func nums(_ n: String) -> [Int] { n.split(separator: ".").compactMap { Int($0) } }
        let (x, y) = (nums(a.name), nums(b.name))
        return x.lexicographicallyPrecedes(y) || (x == y && a.value < b.value)
    }
}
