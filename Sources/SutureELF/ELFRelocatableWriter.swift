/// Writes a relocatable x86-64 ELF object (`ET_REL`): allocated sections, one `.rela<name>` section per
/// section that has relocations, `.symtab` (local symbols first, as the gABI requires), `.strtab` and
/// `.shstrtab`. Format: System V gABI "ELF Object Files" (`Elf64_Ehdr`, `Elf64_Shdr`, `Elf64_Sym`,
/// `Elf64_Rela`), little-endian, `EM_X86_64`, `ELFOSABI_NONE`.
///
/// Used by the object differ to emit a user patch payload; `PatchImageLinker` and binutils read the result.
public struct ELFRelocatableWriter: Sendable {
    /// One section to write.
    public struct Section: Sendable, Hashable {
        /// Name (`.text.fix`).
        public var name: String
        /// `sh_type`: `SHT_PROGBITS` 1 or `SHT_NOBITS` 8.
        public var type: UInt32
        /// `sh_flags` (`SHF_ALLOC` 2 | `SHF_EXECINSTR` 4 | `SHF_WRITE` 1 | `SHF_MERGE` 0x10 | `SHF_STRINGS` 0x20).
        public var flags: UInt64
        /// `sh_addralign` (≥ 1).
        public var alignment: UInt64
        /// Contents (empty for `SHT_NOBITS`).
        public var bytes: [UInt8]
        /// Size in memory for `SHT_NOBITS` (ignored otherwise).
        public var noBitsSize: UInt64
        /// `sh_entsize` (1 for string sections, 0 otherwise).
        public var entrySize: UInt64
        /// Relocations applied to this section (written to `.rela<name>`).
        public var relocations: [Relocation]

        /// Creates a section.
        public init(name: String, type: UInt32 = 1, flags: UInt64, alignment: UInt64, bytes: [UInt8],
                    noBitsSize: UInt64 = 0, entrySize: UInt64 = 0, relocations: [Relocation] = []) {
            self.name = name
            self.type = type
            self.flags = flags
            self.alignment = max(alignment, 1)
            self.bytes = bytes
            self.noBitsSize = noBitsSize
            self.entrySize = entrySize
            self.relocations = relocations
        }

        /// Bytes in memory.
        public var size: UInt64 { type == 8 ? noBitsSize : UInt64(bytes.count) }
    }

    /// One symbol to write. Section symbols are written automatically (one per section).
    public struct Symbol: Sendable, Hashable {
        /// Name.
        public var name: String
        /// `STT_NOTYPE` 0, `STT_OBJECT` 1, `STT_FUNC` 2.
        public var type: UInt8
        /// `STB_LOCAL` 0, `STB_GLOBAL` 1, `STB_WEAK` 2.
        public var binding: UInt8
        /// Index into `ELFRelocatableWriter.sections`, or nil for an undefined symbol.
        public var section: Int?
        /// Offset inside the section.
        public var value: UInt64
        /// `st_size`.
        public var size: UInt64

        /// Creates a symbol.
        public init(name: String, type: UInt8, binding: UInt8, section: Int?, value: UInt64 = 0, size: UInt64 = 0) {
            self.name = name
            self.type = type
            self.binding = binding
            self.section = section
            self.value = value
            self.size = size
        }
    }

    /// What a relocation refers to.
    public enum RelocationTarget: Sendable, Hashable {
        /// `symbols[i]`.
        case symbol(Int)
        /// The section symbol of `sections[i]`.
        case section(Int)
    }

    /// One `Elf64_Rela`.
    public struct Relocation: Sendable, Hashable {
        /// `r_offset` inside the section.
        public var offset: UInt64
        /// x86-64 relocation type (`R_X86_64_PC32` 2, `PLT32` 4, `64` 1, …).
        public var type: UInt32
        /// The symbol.
        public var target: RelocationTarget
        /// `r_addend`.
        public var addend: Int64

        /// Creates a relocation.
        public init(offset: UInt64, type: UInt32, target: RelocationTarget, addend: Int64) {
            self.offset = offset
            self.type = type
            self.target = target
            self.addend = addend
        }
    }

    /// The sections, in output order (output section index = position + 1).
    public var sections: [Section] = []
    /// The symbols (any order; locals are written first).
    public var symbols: [Symbol] = []

    /// Creates an empty object.
    public init() {}

    /// Appends a section and returns its index in `sections`.
    @discardableResult
    public mutating func addSection(_ section: Section) -> Int {
        sections.append(section)
        return sections.count - 1
    }

    /// Appends a symbol and returns its index in `symbols`.
    @discardableResult
    public mutating func addSymbol(_ symbol: Symbol) -> Int {
        symbols.append(symbol)
        return symbols.count - 1
    }

    /// The object file's bytes.
    public func write() -> [UInt8] {
        // Symbol table order: null, section symbols, local symbols, global symbols.
        var strtab: [UInt8] = [0]
        func addString(_ s: String, to table: inout [UInt8]) -> UInt32 {
            if s.isEmpty { return 0 }
            let offset = UInt32(table.count)
            table.append(contentsOf: Array(s.utf8))
            table.append(0)
            return offset
        }
        let locals = symbols.indices.filter { symbols[$0].binding == 0 }
        let globals = symbols.indices.filter { symbols[$0].binding != 0 }
        var finalIndex = [Int](repeating: 0, count: symbols.count)
        var symtab: [UInt8] = Array(repeating: 0, count: 24)
        func appendSym(name: UInt32, info: UInt8, shndx: UInt16, value: UInt64, size: UInt64) {
            symtab.append(contentsOf: le32(name))
            symtab.append(info)
            symtab.append(0)
            symtab.append(contentsOf: le16(shndx))
            symtab.append(contentsOf: le64(value))
            symtab.append(contentsOf: le64(size))
        }
        for i in sections.indices { appendSym(name: 0, info: 3, shndx: UInt16(i + 1), value: 0, size: 0) }
        var next = 1 + sections.count
        for i in locals + globals {
            let s = symbols[i]
            finalIndex[i] = next
            next += 1
            appendSym(name: addString(s.name, to: &strtab), info: (s.binding << 4) | (s.type & 0xf),
                      shndx: s.section.map { UInt16($0 + 1) } ?? 0, value: s.value, size: s.size)
        }
        let firstGlobal = 1 + sections.count + locals.count

        // Section headers: null, user sections, .rela*, .symtab, .strtab, .shstrtab.
        struct Header { var name: UInt32; var type: UInt32; var flags: UInt64; var offset: UInt64 = 0
            var size: UInt64; var link: UInt32 = 0; var info: UInt32 = 0; var align: UInt64; var entsize: UInt64
            var bytes: [UInt8] }
        var shstrtab: [UInt8] = [0]
        var headers: [Header] = []
        for s in sections {
            headers.append(Header(name: addString(s.name, to: &shstrtab), type: s.type, flags: s.flags,
                                  size: s.size, align: s.alignment, entsize: s.entrySize,
                                  bytes: s.type == 8 ? [] : s.bytes))
        }
        let symtabIndex = UInt32(1 + sections.count + sections.filter { !$0.relocations.isEmpty }.count)
        for (i, s) in sections.enumerated() where !s.relocations.isEmpty {
            var bytes: [UInt8] = []
            for r in s.relocations.sorted(by: { $0.offset < $1.offset }) {
                let sym: Int
                switch r.target {
                case .symbol(let k): sym = finalIndex[k]
                case .section(let k): sym = 1 + k
                }
                bytes.append(contentsOf: le64(r.offset))
                bytes.append(contentsOf: le64(UInt64(sym) << 32 | UInt64(r.type)))
                bytes.append(contentsOf: le64(UInt64(bitPattern: r.addend)))
            }
            headers.append(Header(name: addString(".rela" + s.name, to: &shstrtab), type: 4, flags: 0x40,
                                  size: UInt64(bytes.count), link: symtabIndex, info: UInt32(i + 1), align: 8,
                                  entsize: 24, bytes: bytes))
        }
        headers.append(Header(name: addString(".symtab", to: &shstrtab), type: 2, flags: 0,
                              size: UInt64(symtab.count), link: symtabIndex + 1, info: UInt32(firstGlobal),
                              align: 8, entsize: 24, bytes: symtab))
        headers.append(Header(name: addString(".strtab", to: &shstrtab), type: 3, flags: 0,
                              size: UInt64(strtab.count), align: 1, entsize: 0, bytes: strtab))
        let shstrndx = headers.count + 1
        let shstrName = addString(".shstrtab", to: &shstrtab)
        headers.append(Header(name: shstrName, type: 3, flags: 0, size: UInt64(shstrtab.count), align: 1,
                              entsize: 0, bytes: shstrtab))

        // Contents after the 64-byte ELF header, each aligned; then the section header table.
        var out = [UInt8](repeating: 0, count: 64)
        for i in headers.indices {
            let align = max(headers[i].align, 1)
            while UInt64(out.count) % align != 0 { out.append(0) }
            headers[i].offset = UInt64(out.count)
            out.append(contentsOf: headers[i].bytes)
        }
        while out.count % 8 != 0 { out.append(0) }
        let shoff = UInt64(out.count)
        out.append(contentsOf: [UInt8](repeating: 0, count: 64))   // null section header
        for h in headers {
            out.append(contentsOf: le32(h.name))
            out.append(contentsOf: le32(h.type))
            out.append(contentsOf: le64(h.flags))
            out.append(contentsOf: le64(0))
            out.append(contentsOf: le64(h.offset))
            out.append(contentsOf: le64(h.size))
            out.append(contentsOf: le32(h.link))
            out.append(contentsOf: le32(h.info))
            out.append(contentsOf: le64(h.align))
            out.append(contentsOf: le64(h.entsize))
        }
        // ELF header.
        var eh: [UInt8] = [0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0] + [UInt8](repeating: 0, count: 8)
        eh += le16(1) + le16(62) + le32(1) + le64(0) + le64(0) + le64(shoff)
        eh += le32(0) + le16(64) + le16(0) + le16(0) + le16(64)
        eh += le16(UInt16(headers.count + 1)) + le16(UInt16(shstrndx))
        out.replaceSubrange(0..<64, with: eh)
        return out
    }
}

private func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8)] }
private func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8((v >> ($0 * 8)) & 0xff) } }
private func le64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8((v >> (UInt64($0) * 8)) & 0xff) } }
