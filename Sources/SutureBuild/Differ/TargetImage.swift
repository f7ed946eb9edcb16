import SutureELF

/// The target ELF as it runs plus its symbol file: symbol lookup by name and unit, bytes at addresses,
/// and exact-bytes search of its read-only data.
///
/// Locals are grouped by the `STT_FILE` symbol that precedes them in `.symtab` (the linker keeps each
/// input object's locals after its file symbol, named by the source's basename as given to the compiler).
final class TargetImage {
    struct Symbol {
        var name: String
        var value: UInt64
        var size: UInt64
        var type: UInt8
        var isLocal: Bool
        var file: String?
    }

    let path: String
    let elf: ELFObjectFile
    let linkBase: UInt64
    private var globals: [String: [Symbol]] = [:]
    private var localsByFile: [String: [String: [Symbol]]] = [:]
    private var rodata: [(address: UInt64, bytes: [UInt8])] = []

    init(target: String, symbols: String) throws(BuildError) {
        path = target
        do {
            elf = try ELFObjectFile(path: target)
            linkBase = try elf.linkBase()
            let symbolFile = symbols == target ? elf : try ELFObjectFile(path: symbols)
            if symbols != target {
                let a = try elf.buildID(), b = try symbolFile.buildID()
                guard a != nil, a?.lowercased() == b?.lowercased() else {
                    throw BuildError("symbol file \(symbols) has build-id \(b ?? "none"), the target \(target) has \(a ?? "none")")
                }
            }
            let table = try symbolFile.symbols(.symtab)
            guard table.count > 1 else {
                throw BuildError("\(symbols) has no .symtab: the differ needs the target's symbols (see --symbols)")
            }
            var file: String?
            for s in table where s.index > 0 {
                if s.type == ELFSymbol.typeFile {
                    file = s.name
                    if localsByFile[s.name] == nil { localsByFile[s.name] = [:] }
                    continue
                }
                guard s.isDefined, !s.name.isEmpty, s.type != ELFSymbol.typeSection else { continue }
                let local = s.binding == ELFSymbol.bindLocal
                let sym = Symbol(name: s.name, value: s.value, size: s.size, type: s.type, isLocal: local,
                                 file: local ? file : nil)
                if local {
                    localsByFile[file ?? "", default: [:]][s.name, default: []].append(sym)
                } else {
                    globals[s.name, default: []].append(sym)
                    // Copy-relocated data from a library: `stdout@GLIBC_2.2.5` / `stdout@@GLIBC_2.2.5`.
                    if let at = s.name.firstIndex(of: "@") {
                        globals[String(s.name[..<at]), default: []].append(sym)
                    }
                }
            }
            for sec in elf.sections where sec.isAllocated && !sec.isWritable && !sec.isExecutable && !sec.isNoBits
                && sec.type == 1 {
                rodata.append((sec.address, try elf.sectionData(sec.index)))
            }
        } catch let e as BuildError {
            throw e
        } catch {
            throw BuildError("\(error)")
        }
    }

    /// The symbol `name` of `unit`: a local of the `STT_FILE` group named like the unit's basename when
    /// `local`, else the global definition.
    /// - Throws: `BuildError` when a local name is defined more than once in that unit's group(s).
    func lookup(_ name: String, unit: String, local: Bool) throws(BuildError) -> Symbol? {
        if local {
            let base = unit.split(separator: "/").last.map(String.init) ?? unit
            let found = (localsByFile[base]?[name] ?? [])
            if found.count > 1 {
                throw BuildError("the target defines the local symbol \(name) more than once in files named \(base) (unit \(unit)); cannot tell which one belongs to this unit")
            }
            return found.first
        }
        let found = globals[name] ?? []
        if let g = found.first(where: { $0.name == name }) ?? found.first { return g }
        // A hidden-visibility global becomes a local of the linked file: ld lists those after an unnamed
        // STT_FILE symbol, apart from every object's own statics (which are never taken for a global).
        if let hidden = localsByFile[""]?[name], hidden.count == 1 { return hidden[0] }
        return nil
    }

    /// Whether the symbol table has an `STT_FILE` symbol for a unit (its source's basename): every object
    /// linked into the file contributes one.
    func hasFile(for unit: String) -> Bool {
        localsByFile[unit.split(separator: "/").last.map(String.init) ?? unit] != nil
    }

    /// `count` bytes at link-time address `address`.
    func bytes(at address: UInt64, count: Int) throws(BuildError) -> [UInt8] {
        do { return try elf.bytes(atVirtualAddress: address, count: count) } catch {
            throw BuildError("\(path): cannot read \(count) bytes at 0x\(String(address, radix: 16)): \(error)")
        }
    }

    /// Link-time address of `needle` (e.g. a string with its NUL) in the target's read-only data, if present.
    func findReadOnly(_ needle: [UInt8]) -> UInt64? {
        guard !needle.isEmpty else { return nil }
        for (address, hay) in rodata where hay.count >= needle.count {
            let first = needle[0]
            var i = 0
            let last = hay.count - needle.count
            while i <= last {
                if hay[i] == first && hay[i..<(i + needle.count)].elementsEqual(needle) {
                    // A string must start at a string boundary of the target's copy or be a tail of one;
                    // any occurrence of the exact bytes including the NUL is the same constant contents.
                    return address + UInt64(i)
                }
                i += 1
            }
        }
        return nil
    }
}
