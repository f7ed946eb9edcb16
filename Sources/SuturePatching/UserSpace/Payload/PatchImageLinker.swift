import Glibc
import SutureCore
import SutureELF

// A static linker for one relocatable x86-64 object (a user patch payload) into a patch region of a
// running process. Formats: System V gABI "ELF Object Files" (sections, symbols, RELA) and the x86-64
// psABI ("Relocation Types", "Global Offset Table", "Procedure Linkage Table").
//
// Contract with the engine (who places and writes the image):
//  1. `let linker = try PatchImageLinker(object: payloadBytes, entity: entity)` — parses and validates the
//     payload; refuses what it cannot link correctly (TLS, exception tables, constructors, unknown
//     relocations, missing replacement functions). Do this BEFORE attaching to any process.
//  2. `linker.layout` gives the page-rounded segment sizes (text R-X, rodata R--, data+GOT+bss RW-) before
//     any address is known, so the engine can choose a hole of `layout.totalSize` bytes near the target.
//  3. `let image = try linker.link(base: hole, targetBase: runtimeLinkBase, resolveImport: resolver.address)`
//     relocates into fresh byte buffers: one `PatchSegment` per non-empty segment with its absolute
//     address, bytes (page-rounded) and final protection. Every 32-bit relocation is range-checked:
//     an out-of-reach base gives `.relocationOverflow`, never a truncated value.
//  4. The engine maps `[base, base + layout.totalSize)`, writes each segment's bytes at its address,
//     applies each segment's protection, and points detours at `image.functions[replacement]`.

/// Why a payload cannot be linked. `kind` is stable; `message` names the section, symbol or relocation.
public struct PatchLinkError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Stable error kinds.
    public enum Kind: String, Sendable, Hashable {
        /// Not an ELF64 x86-64 `ET_REL` object, or malformed.
        case invalidObject = "INVALID_OBJECT"
        /// A section the linker refuses: TLS (`.tdata`/`.tbss`), C++ exception tables
        /// (`.gcc_except_table`), constructors/destructors (`.init_array`, `.ctors`, …).
        case unsupportedSection = "UNSUPPORTED_SECTION"
        /// A symbol the linker refuses: `STT_TLS`, `STT_GNU_IFUNC` defined in the payload.
        case unsupportedSymbol = "UNSUPPORTED_SYMBOL"
        /// A relocation type outside the supported set (see `PatchImageLinker`).
        case unsupportedRelocation = "UNSUPPORTED_RELOCATION"
        /// An undefined symbol that is neither a target symbol nor resolvable as an import.
        case undefinedSymbol = "UNDEFINED_SYMBOL"
        /// A 32-bit relocation whose value does not fit (the region is too far from what it references).
        case relocationOverflow = "RELOCATION_OVERFLOW"
        /// A replacement function named by the bundle is not defined (as `STT_FUNC`) in the payload.
        case missingFunction = "MISSING_FUNCTION"
        /// `base` is not page-aligned or the region would wrap around the address space.
        case badBase = "BAD_BASE"
    }

    /// The kind.
    public var kind: Kind
    /// Human-readable detail.
    public var message: String

    /// Creates an error.
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// `RELOCATION_OVERFLOW: …`.
    public var description: String { "\(kind.rawValue): \(message)" }
}

/// Which part of the patch region a segment is.
public enum PatchSegmentKind: String, Sendable, Hashable {
    /// Code (payload `.text*` sections and PLT stubs), mapped `PROT_READ | PROT_EXEC`.
    case text
    /// Read-only data (`.rodata*`, string literals), mapped `PROT_READ`.
    case rodata
    /// GOT, `.data*`, `.bss*` and common symbols, mapped `PROT_READ | PROT_WRITE`.
    case data
}

/// Page-rounded segment sizes of a patch image, known before its base address is chosen.
///
/// The region is `[base, base + totalSize)`; text starts at `base`, rodata at `base + rodataOffset`,
/// data at `base + dataOffset`. An empty segment has size 0 (and no `PatchSegment` in the image).
public struct PatchImageLayout: Sendable, Hashable {
    /// The page size every segment is rounded to (4096 on x86-64).
    public static let pageSize: UInt64 = 4096
    /// Text bytes, page-rounded.
    public var textSize: UInt64
    /// Read-only data bytes, page-rounded.
    public var rodataSize: UInt64
    /// Writable data (GOT + `.data` + `.bss` + common) bytes, page-rounded.
    public var dataSize: UInt64
    /// Number of GOT slots (8 bytes each) at the start of the data segment.
    public var gotSlots: Int
    /// Number of PLT stubs (16 bytes each) at the end of the text segment.
    public var pltStubs: Int

    /// Offset of the text segment from the base (always 0).
    public var textOffset: UInt64 { 0 }
    /// Offset of the rodata segment from the base.
    public var rodataOffset: UInt64 { textSize }
    /// Offset of the data segment from the base.
    public var dataOffset: UInt64 { textSize + rodataSize }
    /// Total bytes to map (a multiple of the page size).
    public var totalSize: UInt64 { textSize + rodataSize + dataSize }
}

/// One segment of a linked patch image, ready to be written at `address` and protected.
public struct PatchSegment: Sendable, Hashable {
    /// Text, rodata or data.
    public var kind: PatchSegmentKind
    /// Absolute address in the target process (page-aligned).
    public var address: UInt64
    /// Contents; `bytes.count` is the page-rounded segment size (text padding is `int3`, other padding 0).
    public var bytes: [UInt8]

    /// Final `mmap`/`mprotect` protection: text `PROT_READ|PROT_EXEC`, rodata `PROT_READ`,
    /// data `PROT_READ|PROT_WRITE` (never writable and executable at once).
    public var protection: Int32 {
        switch kind {
        case .text: return PROT_READ | PROT_EXEC
        case .rodata: return PROT_READ
        case .data: return PROT_READ | PROT_WRITE
        }
    }
}

/// The result of linking a payload at a fixed address.
public struct PatchImage: Sendable, Hashable {
    /// The region's start address (page-aligned).
    public var base: UInt64
    /// The region's size in bytes (`layout.totalSize`).
    public var size: UInt64
    /// Non-empty segments in address order (text, rodata, data).
    public var segments: [PatchSegment]
    /// Absolute address of every function defined in the payload (globals, and locals with a unique
    /// name), in particular each bundle `FunctionPatch.replacement`: the detour destination.
    public var functions: [String: UInt64]
    /// The run-time address each import resolved to (name → address; 0 for an unresolved weak import).
    public var imports: [String: UInt64]
}

/// Links one relocatable x86-64 payload object (`ET_REL`, built with `gcc -c`, with or without `-fPIC`,
/// `-ffunction-sections -fdata-sections` recommended) into a patch region.
///
/// Symbols are resolved in this order: defined in the payload → the target's own symbols (`targetSymbols`,
/// name → offset from the target's link base, pre-resolved by `suture bundle create`; run-time address
/// `targetBase + offset`) → imports from other shared objects (`resolveImport`, e.g. `ImportResolver`),
/// reached through GOT slots in the data segment and PLT stubs (`jmp *slot(%rip)`) in the text segment.
///
/// Supported relocations: `R_X86_64_NONE`, `64`, `PC64`, `PC32`, `PLT32` (an import goes through its PLT
/// stub), `GOTPCREL`, `GOTPCRELX`, `REX_GOTPCRELX` (always through a GOT slot, no relaxation), `32`, `32S`.
/// Every 32-bit relocation is overflow-checked. Refused with a clear error: TLS sections, symbols and
/// relocations; `.gcc_except_table` (C++ exception paths through new code cannot be unwound);
/// `.init_array`/`.fini_array`/`.ctors`/`.dtors` (nothing would run them); payload-defined IFUNCs; any
/// other relocation type. Dropped silently: `.eh_frame` (no unwinder would find it in an anonymous
/// region), notes, section groups and non-allocated sections (debug info, `.comment`).
public struct PatchImageLinker: Sendable {
    /// The segment sizes; known before `link`.
    public let layout: PatchImageLayout
    /// Names of the symbols resolved at run time through `resolveImport`, sorted.
    public let imports: [String]
    /// The target's link base from the bundle (`BundleEntity.targetLinkBase`, 0 when unknown or when
    /// built from `init(object:targetSymbols:requiredFunctions:)`); `link(base:loadBias:…)` adds it.
    public private(set) var targetLinkBase: UInt64 = 0

    private enum Resolution: Sendable {
        case section(Int, UInt64)     // placed section index, value within it
        case absolute(UInt64)
        case common(UInt64)           // offset within the data segment
        case target(UInt64)           // offset from the target link base
        case imported(String, weak: Bool)
        case dropped(String)          // defined in a section we do not load
    }

    private struct Placement: Sendable {
        var kind: PatchSegmentKind
        var offset: UInt64            // within the segment
        var bytes: [UInt8]            // empty for NOBITS
        var name: String
    }

    private struct Reloc: Sendable {
        var section: Int              // placed target section
        var offset: UInt64
        var type: UInt32
        var symbol: Int
        var addend: Int64
    }

    private let placements: [Int: Placement]
    private let resolutions: [Resolution]
    private let symbolNames: [String]
    private let relocs: [Reloc]
    private let gotSlotBySymbol: [Int: Int]
    private let pltStubBySymbol: [Int: Int]
    private let pltOffset: UInt64          // within text
    private let functionSymbols: [String: Int]

    private static let supportedRelocations: Set<UInt32> = [0, 1, 2, 4, 9, 10, 11, 24, 41, 42]
    private static let tlsRelocations: Set<UInt32> = [16, 17, 18, 19, 20, 21, 22, 23, 34, 35, 36]
    private static let gotRelocations: Set<UInt32> = [9, 41, 42]

    /// Parses and validates a payload for a bundle entity: target symbols from `entity.targetSymbols`,
    /// required functions from `entity.functions[].replacement`.
    /// - Throws: `PatchLinkError` (see `init(object:targetSymbols:requiredFunctions:)`).
    public init(object: [UInt8], entity: BundleEntity) throws(PatchLinkError) {
        var targets: [String: UInt64] = [:]
        for s in entity.targetSymbols ?? [] { targets[s.symbol] = s.offset }
        try self.init(object: object, targetSymbols: targets,
                      requiredFunctions: (entity.functions ?? []).map(\.replacement))
        targetLinkBase = entity.targetLinkBase ?? 0
    }

    /// Parses and validates a payload object.
    /// - Parameters:
    ///   - object: the `ET_REL` file's bytes (verified against the bundle's checksum by the caller).
    ///   - targetSymbols: target-local symbols the payload may reference: name → offset from the target's
    ///     link base (lowest `PT_LOAD` `p_vaddr`).
    ///   - requiredFunctions: payload functions that must exist (the replacements).
    /// - Throws: `PatchLinkError` with kind `.invalidObject`, `.unsupportedSection`, `.unsupportedSymbol`,
    ///   `.unsupportedRelocation` or `.missingFunction`.
    public init(object: [UInt8], targetSymbols: [String: UInt64], requiredFunctions: [String]) throws(PatchLinkError) {
        let elf: ELFObjectFile
        let sections: [ELFSectionHeader]
        let symbols: [ELFSymbol]
        let relocationSections: [ELFRelocationSection]
        do {
            elf = try ELFObjectFile(bytes: object, origin: "payload")
            sections = elf.sections
            symbols = try elf.symbols(.symtab)
            relocationSections = try elf.relocationSections()
        } catch {
            throw PatchLinkError(.invalidObject, error.message)
        }
        guard elf.fileType == ELFObjectFile.typeRelocatable else {
            throw PatchLinkError(.invalidObject, "payload is not a relocatable object (ET_REL), e_type=\(elf.fileType)")
        }
        guard elf.machine == ELFObjectFile.machineX86_64 else {
            throw PatchLinkError(.invalidObject, "payload is not x86-64 (e_machine=\(elf.machine))")
        }
        guard !symbols.isEmpty else { throw PatchLinkError(.invalidObject, "payload has no symbol table") }

        // 1. Sections: refuse, drop or place.
        var placements: [Int: Placement] = [:]
        var sizes: [PatchSegmentKind: UInt64] = [.text: 0, .rodata: 0, .data: 0]
        func place(_ s: ELFSectionHeader, in kind: PatchSegmentKind, bytes: [UInt8]) {
            let align = max(s.alignment, 1)
            let offset = (sizes[kind]! + align - 1) / align * align
            placements[s.index] = Placement(kind: kind, offset: offset, bytes: bytes, name: s.name)
            sizes[kind] = offset + s.size
        }
        var bss: [ELFSectionHeader] = []
        var writable: [ELFSectionHeader] = []
        for s in sections where s.index > 0 {
            if s.name.hasPrefix(".gcc_except_table") {
                throw PatchLinkError(.unsupportedSection, "section \(s.name): C++ exception tables are not supported (exceptions cannot be unwound through patch code)")
            }
            if s.isTLS || s.name.hasPrefix(".tdata") || s.name.hasPrefix(".tbss") {
                throw PatchLinkError(.unsupportedSection, "section \(s.name): thread-local storage is not supported in patches")
            }
            if [14, 15, 16].contains(s.type) || s.name.hasPrefix(".ctors") || s.name.hasPrefix(".dtors") {
                throw PatchLinkError(.unsupportedSection, "section \(s.name): constructors/destructors are not run in a patch region")
            }
            guard s.isAllocated else { continue }
            if s.type == 7 || s.type == 17 || s.type == 0x7000_0001 || s.name == ".eh_frame" { continue }
            if s.isExecutable {
                let data: [UInt8]
                do { data = try elf.sectionData(s.index) } catch { throw PatchLinkError(.invalidObject, error.message) }
                place(s, in: .text, bytes: data)
            } else if s.isWritable {
                if s.isNoBits { bss.append(s) } else { writable.append(s) }
            } else {
                let data: [UInt8]
                do { data = try elf.sectionData(s.index) } catch { throw PatchLinkError(.invalidObject, error.message) }
                place(s, in: .rodata, bytes: data)
            }
        }

        // 2. Symbols: classify.
        var resolutions: [Resolution] = []
        var commons: [(Int, ELFSymbol)] = []
        resolutions.reserveCapacity(symbols.count)
        for sym in symbols {
            if sym.type == ELFSymbol.typeTLS {
                throw PatchLinkError(.unsupportedSymbol, "symbol \(sym.name): thread-local variables are not supported in patches")
            }
            if sym.type == ELFSymbol.typeIFunc && sym.isDefined {
                throw PatchLinkError(.unsupportedSymbol, "symbol \(sym.name): GNU indirect functions (ifunc) cannot be defined in a patch")
            }
            switch sym.sectionIndex {
            case ELFSymbol.sectionUndefined:
                if sym.index == 0 {
                    resolutions.append(.absolute(0))
                } else if let offset = targetSymbols[sym.name] {
                    resolutions.append(.target(offset))
                } else {
                    resolutions.append(.imported(sym.name, weak: sym.binding == ELFSymbol.bindWeak))
                }
            case ELFSymbol.sectionAbsolute:
                resolutions.append(.absolute(sym.value))
            case ELFSymbol.sectionCommon:
                resolutions.append(.common(0))
                commons.append((sym.index, sym))
            case 0xff00...0xffff:
                throw PatchLinkError(.invalidObject, "symbol \(sym.name): unsupported special section index 0x\(String(sym.sectionIndex, radix: 16))")
            default:
                let idx = Int(sym.sectionIndex)
                if placements[idx] != nil || writable.contains(where: { $0.index == idx }) || bss.contains(where: { $0.index == idx }) {
                    resolutions.append(.section(idx, sym.value))
                } else {
                    let name = idx < sections.count ? sections[idx].name : "#\(idx)"
                    resolutions.append(.dropped(name))
                }
            }
        }

        // 3. Relocations of placed sections: validate, collect GOT and PLT needs.
        var relocs: [Reloc] = []
        var gotSlots: [Int: Int] = [:]
        var pltStubs: [Int: Int] = [:]
        let loaded = Set(placements.keys).union(writable.map(\.index)).union(bss.map(\.index))
        for rs in relocationSections where loaded.contains(rs.targetSectionIndex) {
            let target = sections[rs.targetSectionIndex]
            for r in rs.relocations {
                let name = X86_64RelocationType.name(r.type)
                let where_ = "\(name) at \(target.name)+0x\(String(r.offset, radix: 16))"
                guard r.symbolIndex < symbols.count else {
                    throw PatchLinkError(.invalidObject, "\(where_): symbol index \(r.symbolIndex) out of range")
                }
                if Self.tlsRelocations.contains(r.type) {
                    throw PatchLinkError(.unsupportedRelocation, "\(where_) (symbol \(symbols[r.symbolIndex].name)): thread-local storage is not supported in patches")
                }
                guard Self.supportedRelocations.contains(r.type) else {
                    throw PatchLinkError(.unsupportedRelocation, "\(where_) (symbol \(symbols[r.symbolIndex].name)) is not supported")
                }
                let width: UInt64 = (r.type == 1 || r.type == 24) ? 8 : (r.type == 0 ? 0 : 4)
                guard r.offset + width <= target.size else {
                    throw PatchLinkError(.invalidObject, "\(where_): offset beyond the section's end")
                }
                if case .dropped(let sec) = resolutions[r.symbolIndex], r.type != 0 {
                    throw PatchLinkError(.unsupportedSection, "\(where_) refers to \(symbols[r.symbolIndex].name.isEmpty ? sec : symbols[r.symbolIndex].name) in section \(sec), which is not loaded")
                }
                if Self.gotRelocations.contains(r.type), gotSlots[r.symbolIndex] == nil {
                    gotSlots[r.symbolIndex] = gotSlots.count
                }
                if r.type == 4, case .imported = resolutions[r.symbolIndex], pltStubs[r.symbolIndex] == nil {
                    pltStubs[r.symbolIndex] = pltStubs.count
                    if gotSlots[r.symbolIndex] == nil { gotSlots[r.symbolIndex] = gotSlots.count }
                }
                relocs.append(Reloc(section: rs.targetSectionIndex, offset: r.offset, type: r.type,
                                    symbol: r.symbolIndex, addend: r.addend))
            }
        }

        // 4. Finish the layout: PLT stubs after text; GOT, data, bss, commons in the data segment.
        let pltOffset = (sizes[.text]! + 15) / 16 * 16
        if !pltStubs.isEmpty { sizes[.text] = pltOffset + UInt64(pltStubs.count) * 16 }
        sizes[.data] = UInt64(gotSlots.count) * 8
        for s in writable {
            let data: [UInt8]
            do { data = try elf.sectionData(s.index) } catch { throw PatchLinkError(.invalidObject, error.message) }
            place(s, in: .data, bytes: data)
        }
        for s in bss { place(s, in: .data, bytes: []) }
        for (index, sym) in commons {
            let align = max(sym.value, 1)
            let offset = (sizes[.data]! + align - 1) / align * align
            resolutions[index] = .common(offset)
            sizes[.data] = offset + sym.size
        }
        func pageRound(_ v: UInt64) -> UInt64 { (v + PatchImageLayout.pageSize - 1) / PatchImageLayout.pageSize * PatchImageLayout.pageSize }
        self.layout = PatchImageLayout(textSize: pageRound(sizes[.text]!), rodataSize: pageRound(sizes[.rodata]!),
                                       dataSize: pageRound(sizes[.data]!), gotSlots: gotSlots.count,
                                       pltStubs: pltStubs.count)

        // 5. Functions defined in the payload.
        var functions: [String: Int] = [:]
        var ambiguous: Set<String> = []
        for sym in symbols where sym.type == ELFSymbol.typeFunction && sym.isDefined && !sym.name.isEmpty {
            guard case .section = resolutions[sym.index] else { continue }
            if sym.binding != ELFSymbol.bindLocal {
                functions[sym.name] = sym.index
                ambiguous.remove(sym.name)
            } else if let existing = functions[sym.name] {
                if symbols[existing].binding == ELFSymbol.bindLocal { ambiguous.insert(sym.name) }
            } else {
                functions[sym.name] = sym.index
            }
        }
        for name in ambiguous { functions[name] = nil }
        for name in requiredFunctions where functions[name] == nil {
            throw PatchLinkError(.missingFunction, ambiguous.contains(name)
                ? "replacement function \(name) is defined more than once (static) in the payload"
                : "replacement function \(name) is not defined as a function in the payload")
        }

        var importNames: Set<String> = []
        for r in relocs { if case .imported(let n, _) = resolutions[r.symbol] { importNames.insert(n) } }
        self.imports = importNames.sorted()
        self.placements = placements
        self.resolutions = resolutions
        self.symbolNames = symbols.map(\.name)
        self.relocs = relocs
        self.gotSlotBySymbol = gotSlots
        self.pltStubBySymbol = pltStubs
        self.pltOffset = pltOffset
        self.functionSymbols = functions
    }

    /// Links the payload at `base`.
    /// - Parameters:
    ///   - base: the region's start address, page-aligned; the region spans `layout.totalSize` bytes.
    ///   - targetBase: the run-time address of the target's link base = load bias + lowest `PT_LOAD`
    ///     `p_vaddr` (for a PIE: the start of its first mapping; for `-no-pie` at 0x400000: 0x400000).
    ///     A target symbol at bundle offset `o` is at `targetBase + o`; so is a `FunctionPatch.offset`.
    ///   - resolveImport: run-time address of a symbol from another loaded object, or nil if none exports it.
    /// - Returns: the segments to write and the address of every payload function.
    /// - Throws: `PatchLinkError` `.badBase`, `.undefinedSymbol` (listing every unresolved import), or
    ///   `.relocationOverflow` naming the relocation, its place and the value that does not fit.
    public func link(base: UInt64, targetBase: UInt64,
                     resolveImport: (String) -> UInt64?) throws(PatchLinkError) -> PatchImage {
        guard base % PatchImageLayout.pageSize == 0 else {
            throw PatchLinkError(.badBase, "base 0x\(String(base, radix: 16)) is not page-aligned")
        }
        guard base <= UInt64.max - layout.totalSize else {
            throw PatchLinkError(.badBase, "region at 0x\(String(base, radix: 16)) wraps around")
        }
        let segBase: [PatchSegmentKind: UInt64] = [.text: base + layout.textOffset, .rodata: base + layout.rodataOffset,
                                                   .data: base + layout.dataOffset]
        var buffers: [PatchSegmentKind: [UInt8]] = [
            .text: [UInt8](repeating: 0xcc, count: Int(layout.textSize)),
            .rodata: [UInt8](repeating: 0, count: Int(layout.rodataSize)),
            .data: [UInt8](repeating: 0, count: Int(layout.dataSize)),
        ]
        for p in placements.values where !p.bytes.isEmpty {
            buffers[p.kind]!.replaceSubrange(Int(p.offset)..<Int(p.offset) + p.bytes.count, with: p.bytes)
        }

        // Imports.
        var importAddress: [String: UInt64] = [:]
        var unresolved: [String] = []
        for r in relocs {
            guard case .imported(let name, let weak) = resolutions[r.symbol], importAddress[name] == nil else { continue }
            if let a = resolveImport(name) { importAddress[name] = a } else if weak { importAddress[name] = 0 } else {
                if !unresolved.contains(name) { unresolved.append(name) }
            }
        }
        guard unresolved.isEmpty else {
            throw PatchLinkError(.undefinedSymbol, "unresolved symbol(s): \(unresolved.joined(separator: ", ")) (neither in the payload, the target's recorded symbols, nor any object loaded in the process)")
        }

        func address(_ symbol: Int) -> UInt64 {
            switch resolutions[symbol] {
            case .section(let idx, let value): let p = placements[idx]!; return segBase[p.kind]! + p.offset + value
            case .absolute(let v): return v
            case .common(let off): return segBase[.data]! + off
            case .target(let off): return targetBase &+ off
            case .imported(let name, _): return importAddress[name] ?? 0
            case .dropped: return 0
            }
        }

        // GOT slots and PLT stubs.
        let gotBase = segBase[.data]!
        for (symbol, slot) in gotSlotBySymbol {
            let v = address(symbol)
            let at = slot * 8
            for i in 0..<8 { buffers[.data]![at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
        }
        var pltAddress: [Int: UInt64] = [:]
        for (symbol, stub) in pltStubBySymbol {
            let stubOffset = Int(pltOffset) + stub * 16
            let stubAddress = segBase[.text]! + UInt64(stubOffset)
            let slotAddress = gotBase + UInt64(gotSlotBySymbol[symbol]!) * 8
            let disp = Int64(bitPattern: slotAddress &- (stubAddress + 6))
            guard let d32 = Int32(exactly: disp) else {
                throw PatchLinkError(.relocationOverflow, "PLT stub for \(symbolNames[symbol]): GOT slot out of rel32 reach")
            }
            let bytes: [UInt8] = [0xff, 0x25] + withUnsafeBytes(of: d32.littleEndian, Array.init) + [0x0f, 0x0b]
            buffers[.text]!.replaceSubrange(stubOffset..<stubOffset + bytes.count, with: bytes)
            pltAddress[symbol] = stubAddress
        }

        // Relocations.
        for r in relocs {
            let p = placements[r.section]!
            let place = segBase[p.kind]! + p.offset + r.offset
            let at = Int(p.offset + r.offset)
            let s = address(r.symbol)
            let a = UInt64(bitPattern: r.addend)
            func describe(_ value: Int64) -> String {
                var name = symbolNames[r.symbol]
                if name.isEmpty, case .section(let idx, _) = resolutions[r.symbol] { name = placements[idx]?.name ?? "section #\(idx)" }
                return "\(X86_64RelocationType.name(r.type)) at \(p.name)+0x\(String(r.offset, radix: 16)) (address 0x\(String(place, radix: 16))) to \(name)\(r.addend >= 0 ? "+" : "")\(r.addend): value \(value) (0x\(String(UInt64(bitPattern: value), radix: 16))) does not fit in 32 bits; the patch region at 0x\(String(base, radix: 16)) is too far from what it references"
            }
            func put32(_ value: Int64, signed: Bool) throws(PatchLinkError) {
                let ok = signed ? (Int64(Int32.min)...Int64(Int32.max)).contains(value) : (0...Int64(UInt32.max)).contains(value)
                guard ok else { throw PatchLinkError(.relocationOverflow, describe(value)) }
                let v = UInt32(truncatingIfNeeded: value)
                for i in 0..<4 { buffers[p.kind]![at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) }
            }
            func put64(_ value: UInt64) {
                for i in 0..<8 { buffers[p.kind]![at + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
            }
            switch r.type {
            case 0: break                                                           // NONE
            case 1: put64(s &+ a)                                                   // 64: S + A
            case 24: put64(s &+ a &- place)                                         // PC64: S + A - P
            case 2: try put32(Int64(bitPattern: s &+ a &- place), signed: true)     // PC32: S + A - P
            case 4:                                                                 // PLT32: L + A - P
                let l = pltAddress[r.symbol] ?? s
                try put32(Int64(bitPattern: l &+ a &- place), signed: true)
            case 9, 41, 42:                                                         // GOTPCREL(X): G + GOT + A - P
                let slot = gotBase + UInt64(gotSlotBySymbol[r.symbol]!) * 8
                try put32(Int64(bitPattern: slot &+ a &- place), signed: true)
            case 10: try put32(Int64(bitPattern: s &+ a), signed: false)            // 32: S + A, zero-extended
            case 11: try put32(Int64(bitPattern: s &+ a), signed: true)             // 32S: S + A, sign-extended
            default:
                throw PatchLinkError(.unsupportedRelocation, "\(X86_64RelocationType.name(r.type)) is not supported")
            }
        }

        var segments: [PatchSegment] = []
        for kind in [PatchSegmentKind.text, .rodata, .data] where !buffers[kind]!.isEmpty {
            segments.append(PatchSegment(kind: kind, address: segBase[kind]!, bytes: buffers[kind]!))
        }
        var functions: [String: UInt64] = [:]
        for (name, index) in functionSymbols { functions[name] = address(index) }
        return PatchImage(base: base, size: layout.totalSize, segments: segments, functions: functions,
                          imports: importAddress)
    }
}
