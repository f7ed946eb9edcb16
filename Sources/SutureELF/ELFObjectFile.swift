internal import CLibElf
import Foundation
import SystemPackage

/// Errors from reading an ELF file with `ELFObjectFile`.
public struct ELFObjectError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, naming the file (or `<memory>`) and the libelf message when there is one.
    public var message: String

    /// Creates an error with a message.
    public init(_ message: String) { self.message = message }

    /// The message, naming the file and the problem.
    public var description: String { message }
}

/// One section header (ELF spec, "Sections"; `Elf64_Shdr`), with its name resolved.
public struct ELFSectionHeader: Sendable, Hashable {
    /// Section index (`0` is the null section).
    public var index: Int
    /// Name from `.shstrtab` (`.text.parse_request`).
    public var name: String
    /// `sh_type` (`SHT_PROGBITS` = 1, `SHT_SYMTAB` = 2, `SHT_RELA` = 4, `SHT_NOBITS` = 8, …).
    public var type: UInt32
    /// `sh_flags` (`SHF_WRITE` = 1, `SHF_ALLOC` = 2, `SHF_EXECINSTR` = 4, `SHF_TLS` = 0x400, …).
    public var flags: UInt64
    /// `sh_addr`: virtual address in a linked file, 0 in a relocatable object.
    public var address: UInt64
    /// `sh_offset`: file offset of the contents.
    public var offset: UInt64
    /// `sh_size` in bytes (for `SHT_NOBITS`, the size in memory).
    public var size: UInt64
    /// `sh_addralign` (0 or 1 = no constraint).
    public var alignment: UInt64
    /// `sh_link` (a symbol table's string table, a relocation section's symbol table).
    public var link: UInt32
    /// `sh_info` (a relocation section's target section; a symbol table's first non-local index).
    public var info: UInt32
    /// `sh_entsize`.
    public var entrySize: UInt64

    /// `SHF_ALLOC`: occupies memory at run time.
    public var isAllocated: Bool { flags & 0x2 != 0 }
    /// `SHF_WRITE`.
    public var isWritable: Bool { flags & 0x1 != 0 }
    /// `SHF_EXECINSTR`.
    public var isExecutable: Bool { flags & 0x4 != 0 }
    /// `SHF_TLS`.
    public var isTLS: Bool { flags & 0x400 != 0 }
    /// `SHT_NOBITS` (`.bss`): no file contents.
    public var isNoBits: Bool { type == 8 }
}

/// Which symbol table to read.
public enum ELFSymbolTableKind: Sendable, Hashable {
    /// `.symtab` (`SHT_SYMTAB`): every symbol, removed by `strip`.
    case symtab
    /// `.dynsym` (`SHT_DYNSYM`): the dynamic symbols a shared object exports and imports.
    case dynsym
}

/// One symbol (`Elf64_Sym`), with its name and, for `.dynsym`, its GNU symbol version.
public struct ELFSymbol: Sendable, Hashable {
    /// Index in its symbol table.
    public var index: Int
    /// Name (`printf`); empty for section and unnamed symbols.
    public var name: String
    /// `st_value`: a virtual address in linked files, a section offset in relocatable objects
    /// (for `SHN_COMMON`: the alignment).
    public var value: UInt64
    /// `st_size` in bytes.
    public var size: UInt64
    /// `ELF64_ST_TYPE(st_info)`: `STT_NOTYPE` 0, `STT_OBJECT` 1, `STT_FUNC` 2, `STT_SECTION` 3,
    /// `STT_FILE` 4, `STT_COMMON` 5, `STT_TLS` 6, `STT_GNU_IFUNC` 10.
    public var type: UInt8
    /// `ELF64_ST_BIND(st_info)`: `STB_LOCAL` 0, `STB_GLOBAL` 1, `STB_WEAK` 2, `STB_GNU_UNIQUE` 10.
    public var binding: UInt8
    /// `ELF64_ST_VISIBILITY(st_other)`: default 0, internal 1, hidden 2, protected 3.
    public var visibility: UInt8
    /// `st_shndx`: section index, or `SHN_UNDEF` 0, `SHN_ABS` 0xfff1, `SHN_COMMON` 0xfff2.
    public var sectionIndex: UInt16
    /// `.dynsym` only: the version name from `.gnu.version_d`/`.gnu.version_r` (`GLIBC_2.2.5`), if any.
    public var version: String?
    /// `.dynsym` only: false when the version is hidden (`name@VERSION`, an old compatibility
    /// version), true for the default version (`name@@VERSION`) and for unversioned symbols.
    public var isDefaultVersion: Bool

    /// `STT_FUNC`.
    public static let typeFunction: UInt8 = 2
    /// `STT_OBJECT`.
    public static let typeObject: UInt8 = 1
    /// `STT_SECTION`.
    public static let typeSection: UInt8 = 3
    /// `STT_FILE`.
    public static let typeFile: UInt8 = 4
    /// `STT_TLS`.
    public static let typeTLS: UInt8 = 6
    /// `STT_GNU_IFUNC`.
    public static let typeIFunc: UInt8 = 10
    /// `STB_LOCAL`.
    public static let bindLocal: UInt8 = 0
    /// `STB_GLOBAL`.
    public static let bindGlobal: UInt8 = 1
    /// `STB_WEAK`.
    public static let bindWeak: UInt8 = 2
    /// `SHN_UNDEF`.
    public static let sectionUndefined: UInt16 = 0
    /// `SHN_ABS`.
    public static let sectionAbsolute: UInt16 = 0xfff1
    /// `SHN_COMMON`.
    public static let sectionCommon: UInt16 = 0xfff2

    /// Defined in this file (not `SHN_UNDEF`).
    public var isDefined: Bool { sectionIndex != Self.sectionUndefined }
}

/// One `Elf64_Rela` relocation.
public struct ELFRelocation: Sendable, Hashable {
    /// `r_offset`: offset inside the target section (relocatable objects) or a virtual address.
    public var offset: UInt64
    /// `ELF64_R_TYPE(r_info)` (x86-64: `R_X86_64_PC32` = 2, …; see `X86_64RelocationType`).
    public var type: UInt32
    /// `ELF64_R_SYM(r_info)`: index into the linked symbol table.
    public var symbolIndex: Int
    /// `r_addend`.
    public var addend: Int64
}

/// A `SHT_RELA` section and the section its relocations apply to.
public struct ELFRelocationSection: Sendable, Hashable {
    /// The `.rela.*` section itself.
    public var section: ELFSectionHeader
    /// `sh_info`: index of the section being relocated.
    public var targetSectionIndex: Int
    /// `sh_link`: index of the symbol table the relocations refer to.
    public var symbolTableIndex: Int
    /// The relocations in file order.
    public var relocations: [ELFRelocation]
}

/// One program header (`Elf64_Phdr`).
public struct ELFSegmentHeader: Sendable, Hashable {
    /// `p_type` (`PT_LOAD` = 1, `PT_DYNAMIC` = 2, `PT_NOTE` = 4, …).
    public var type: UInt32
    /// `p_flags` (`PF_X` = 1, `PF_W` = 2, `PF_R` = 4).
    public var flags: UInt32
    /// `p_offset`.
    public var offset: UInt64
    /// `p_vaddr`.
    public var virtualAddress: UInt64
    /// `p_filesz`.
    public var fileSize: UInt64
    /// `p_memsz`.
    public var memorySize: UInt64
    /// `p_align`.
    public var alignment: UInt64
}

/// A read-only view of one ELF64 file through libelf (elfutils): header, sections, program headers,
/// symbol tables with GNU versions, relocations and the GNU build-id.
///
/// Opened from a path, from a file descriptor (for `/proc/PID/map_files/<start>-<end>`, which reads the
/// exact file a process maps even when it was deleted or lives in another mount namespace), or from
/// bytes in memory (a payload whose checksum was just verified). Formats: System V gABI "ELF Object
/// Files" and the x86-64 psABI; GNU versioning: LSB "Symbol Versioning". Not thread-safe; use one
/// instance per thread.
public final class ELFObjectFile {
    private let elf: OpaquePointer
    private let fd: Int32
    private let memory: UnsafeMutableRawBufferPointer?
    /// Where the file came from (for messages).
    public let origin: String
    /// `e_type`: `ET_REL` 1, `ET_EXEC` 2, `ET_DYN` 3.
    public let fileType: UInt16
    /// `e_machine` (`EM_X86_64` = 62).
    public let machine: UInt16
    /// All section headers, index 0 included.
    public let sections: [ELFSectionHeader]

    /// `ET_REL`.
    public static let typeRelocatable: UInt16 = 1
    /// `ET_EXEC`.
    public static let typeExecutable: UInt16 = 2
    /// `ET_DYN`.
    public static let typeShared: UInt16 = 3
    /// `EM_X86_64`.
    public static let machineX86_64: UInt16 = 62

    /// Opens the file at `path`.
    /// - Throws: `ELFObjectError` if it cannot be opened or is not an ELF64 file.
    public convenience init(path: String) throws(ELFObjectError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ELFObjectError("\(path): cannot open: \(Errno(rawValue: errno).description)") }
        try self.init(ownedFileDescriptor: fd, origin: path)
    }

    /// Opens the file behind `fileDescriptor` (duplicated; the caller keeps and closes its own).
    /// - Throws: `ELFObjectError`.
    public convenience init(fileDescriptor: Int32, origin: String = "<fd>") throws(ELFObjectError) {
        let dupped = fcntl(fileDescriptor, F_DUPFD_CLOEXEC, 0)
        guard dupped >= 0 else { throw ELFObjectError("\(origin): dup: \(Errno(rawValue: errno).description)") }
        try self.init(ownedFileDescriptor: dupped, origin: origin)
    }

    /// Parses an ELF image held in memory (copied).
    /// - Throws: `ELFObjectError`.
    public init(bytes: [UInt8], origin: String = "<memory>") throws(ELFObjectError) {
        _ = elf_version(UInt32(EV_CURRENT))
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
        bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
        guard let e = elf_memory(buffer.baseAddress!.assumingMemoryBound(to: CChar.self), bytes.count) else {
            buffer.deallocate()
            throw ELFObjectError("\(origin): not an ELF image: \(Self.libelfMessage())")
        }
        self.elf = e
        self.fd = -1
        self.memory = buffer
        self.origin = origin
        do {
            (fileType, machine, sections) = try Self.readHeaders(e, origin: origin)
        } catch {
            elf_end(e)
            buffer.deallocate()
            throw error
        }
    }

    private init(ownedFileDescriptor fd: Int32, origin: String) throws(ELFObjectError) {
        _ = elf_version(UInt32(EV_CURRENT))
        guard let e = elf_begin(fd, ELF_C_READ_MMAP, nil) else {
            close(fd)
            throw ELFObjectError("\(origin): \(Self.libelfMessage())")
        }
        self.elf = e
        self.fd = fd
        self.memory = nil
        self.origin = origin
        do {
            (fileType, machine, sections) = try Self.readHeaders(e, origin: origin)
        } catch {
            elf_end(e)
            close(fd)
            throw error
        }
    }

    deinit {
        elf_end(elf)
        if fd >= 0 { close(fd) }
        memory?.deallocate()
    }

    static func libelfMessage() -> String {
        let code = elf_errno()
        guard code != 0, let msg = elf_errmsg(code) else { return "not an ELF file" }
        return String(cString: msg)
    }

    private static func readHeaders(_ e: OpaquePointer, origin: String) throws(ELFObjectError)
        -> (UInt16, UInt16, [ELFSectionHeader]) {
        guard elf_kind(e) == ELF_K_ELF else { throw ELFObjectError("\(origin): not an ELF file") }
        guard gelf_getclass(e) == ELFCLASS64 else { throw ELFObjectError("\(origin): not a 64-bit ELF file") }
        var ehdr = GElf_Ehdr()
        guard gelf_getehdr(e, &ehdr) != nil else { throw ELFObjectError("\(origin): \(libelfMessage())") }
        var shstrndx = 0
        guard elf_getshdrstrndx(e, &shstrndx) == 0 else { throw ELFObjectError("\(origin): \(libelfMessage())") }
        var result: [ELFSectionHeader] = []
        var count = 0
        guard elf_getshdrnum(e, &count) == 0 else { throw ELFObjectError("\(origin): \(libelfMessage())") }
        for i in 0..<count {
            guard let scn = elf_getscn(e, i) else { throw ELFObjectError("\(origin): section \(i): \(libelfMessage())") }
            var sh = GElf_Shdr()
            guard gelf_getshdr(scn, &sh) != nil else { throw ELFObjectError("\(origin): section \(i): \(libelfMessage())") }
            let name = elf_strptr(e, shstrndx, Int(sh.sh_name)).map { String(cString: $0) } ?? ""
            result.append(ELFSectionHeader(index: i, name: name, type: sh.sh_type, flags: sh.sh_flags,
                                           address: sh.sh_addr, offset: sh.sh_offset, size: sh.sh_size,
                                           alignment: sh.sh_addralign, link: sh.sh_link, info: sh.sh_info,
                                           entrySize: sh.sh_entsize))
        }
        return (ehdr.e_type, ehdr.e_machine, result)
    }

    /// The first section named `name`, if any.
    public func section(named name: String) -> ELFSectionHeader? { sections.first { $0.name == name } }

    /// The raw contents of section `index` (empty for `SHT_NOBITS`).
    /// - Throws: `ELFObjectError` on a bad index or a truncated file.
    public func sectionData(_ index: Int) throws(ELFObjectError) -> [UInt8] {
        guard index > 0, index < sections.count else { throw ELFObjectError("\(origin): no section \(index)") }
        if sections[index].isNoBits { return [] }
        guard let scn = elf_getscn(elf, index), let data = elf_rawdata(scn, nil) else {
            throw ELFObjectError("\(origin): section \(sections[index].name): \(Self.libelfMessage())")
        }
        guard let buf = data.pointee.d_buf, data.pointee.d_size > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: buf, count: data.pointee.d_size))
    }

    /// Program headers (empty for a relocatable object).
    /// - Throws: `ELFObjectError`.
    public func programHeaders() throws(ELFObjectError) -> [ELFSegmentHeader] {
        var count = 0
        guard elf_getphdrnum(elf, &count) == 0 else { throw ELFObjectError("\(origin): \(Self.libelfMessage())") }
        var result: [ELFSegmentHeader] = []
        for i in 0..<Int32(count) {
            var ph = GElf_Phdr()
            guard gelf_getphdr(elf, i, &ph) != nil else { throw ELFObjectError("\(origin): phdr \(i): \(Self.libelfMessage())") }
            result.append(ELFSegmentHeader(type: ph.p_type, flags: ph.p_flags, offset: ph.p_offset,
                                           virtualAddress: ph.p_vaddr, fileSize: ph.p_filesz,
                                           memorySize: ph.p_memsz, alignment: ph.p_align))
        }
        return result
    }

    /// The link base: the lowest `PT_LOAD` `p_vaddr`, aligned down to its `p_align` (0 for PIE and shared
    /// objects, 0x400000 for a typical `-no-pie` executable). Offsets recorded in bundles are relative to it.
    /// - Throws: `ELFObjectError` if there is no `PT_LOAD`.
    public func linkBase() throws(ELFObjectError) -> UInt64 {
        let loads = try programHeaders().filter { $0.type == 1 }
        guard let lowest = loads.min(by: { $0.virtualAddress < $1.virtualAddress }) else {
            throw ELFObjectError("\(origin): no PT_LOAD program header")
        }
        let align = max(lowest.alignment, 1)
        return lowest.virtualAddress & ~(align - 1)
    }

    /// Reads `count` bytes at virtual address `address` from the file contents of the `PT_LOAD` segment
    /// that holds them.
    /// - Throws: `ELFObjectError` if the range is not file-backed in one segment.
    public func bytes(atVirtualAddress address: UInt64, count: Int) throws(ELFObjectError) -> [UInt8] {
        guard let seg = try programHeaders().first(where: {
            $0.type == 1 && address >= $0.virtualAddress && address + UInt64(count) <= $0.virtualAddress + $0.fileSize
        }) else {
            throw ELFObjectError("\(origin): 0x\(String(address, radix: 16)) (+\(count)) is not in a file-backed PT_LOAD segment")
        }
        return try rawBytes(fileOffset: seg.offset + (address - seg.virtualAddress), count: count)
    }

    /// Reads `count` bytes at file offset `offset`.
    /// - Throws: `ELFObjectError` when out of range.
    public func rawBytes(fileOffset offset: UInt64, count: Int) throws(ELFObjectError) -> [UInt8] {
        var size = 0
        guard let base = elf_rawfile(elf, &size) else { throw ELFObjectError("\(origin): \(Self.libelfMessage())") }
        guard offset <= UInt64(size), UInt64(count) <= UInt64(size) - offset else {
            throw ELFObjectError("\(origin): file offset 0x\(String(offset, radix: 16)) (+\(count)) beyond end of file (\(size) bytes)")
        }
        return Array(UnsafeRawBufferPointer(start: UnsafeRawPointer(base).advanced(by: Int(offset)), count: count))
    }

    /// The GNU build-id (`NT_GNU_BUILD_ID` note, from `SHT_NOTE` sections or `PT_NOTE` segments), lower-case
    /// hex, or nil if the file has none.
    /// - Throws: `ELFObjectError` on unreadable note data.
    public func buildID() throws(ELFObjectError) -> String? {
        var blobs: [[UInt8]] = []
        for s in sections where s.type == 7 { blobs.append(try sectionData(s.index)) }
        if blobs.isEmpty {
            for ph in try programHeaders() where ph.type == 4 {
                blobs.append(try rawBytes(fileOffset: ph.offset, count: Int(ph.fileSize)))
            }
        }
        for blob in blobs {
            var pos = 0
            func u32(_ at: Int) -> UInt32 {
                UInt32(blob[at]) | UInt32(blob[at + 1]) << 8 | UInt32(blob[at + 2]) << 16 | UInt32(blob[at + 3]) << 24
            }
            while pos + 12 <= blob.count {
                let namesz = Int(u32(pos)), descsz = Int(u32(pos + 4)), type = u32(pos + 8)
                let nameStart = pos + 12
                let descStart = nameStart + ((namesz + 3) & ~3)
                let next = descStart + ((descsz + 3) & ~3)
                guard descStart + descsz <= blob.count else { break }
                if type == 3, namesz == 4, blob[nameStart..<nameStart + 3].elementsEqual([0x47, 0x4e, 0x55]) {
                    return blob[descStart..<descStart + descsz].map { String(format: "%02x", $0) }.joined()
                }
                pos = next
            }
        }
        return nil
    }

    /// The symbols of `.symtab` or `.dynsym` (index 0, the null symbol, included), or `[]` when the table
    /// is absent (a stripped file has no `.symtab`). `.dynsym` symbols carry their GNU version.
    /// - Throws: `ELFObjectError` on malformed tables.
    public func symbols(_ kind: ELFSymbolTableKind) throws(ELFObjectError) -> [ELFSymbol] {
        let wanted: UInt32 = kind == .symtab ? 2 : 11
        guard let table = sections.first(where: { $0.type == wanted }) else { return [] }
        return try symbols(inSection: table.index)
    }

    /// The symbols of the symbol table in section `index` (`SHT_SYMTAB` or `SHT_DYNSYM`).
    /// - Throws: `ELFObjectError`.
    public func symbols(inSection index: Int) throws(ELFObjectError) -> [ELFSymbol] {
        guard index > 0, index < sections.count, sections[index].type == 2 || sections[index].type == 11 else {
            throw ELFObjectError("\(origin): section \(index) is not a symbol table")
        }
        let table = sections[index]
        guard let scn = elf_getscn(elf, index), let data = elf_getdata(scn, nil) else {
            throw ELFObjectError("\(origin): \(table.name): \(Self.libelfMessage())")
        }
        let count = table.entrySize > 0 ? Int(table.size / table.entrySize) : 0
        let versions = table.type == 11 ? try versionInfo(dynsymIndex: index, count: count) : nil
        var result: [ELFSymbol] = []
        result.reserveCapacity(count)
        for i in 0..<count {
            var sym = GElf_Sym()
            guard gelf_getsym(data, Int32(i), &sym) != nil else {
                throw ELFObjectError("\(origin): \(table.name)[\(i)]: \(Self.libelfMessage())")
            }
            let name = sym.st_name == 0 ? "" : (elf_strptr(elf, Int(table.link), Int(sym.st_name)).map { String(cString: $0) } ?? "")
            var version: String? = nil
            var isDefault = true
            if let versions, i < versions.count {
                let v = versions[i]
                isDefault = v.raw & 0x8000 == 0
                version = v.name
            }
            result.append(ELFSymbol(index: i, name: name, value: sym.st_value, size: sym.st_size,
                                    type: sym.st_info & 0xf, binding: sym.st_info >> 4,
                                    visibility: sym.st_other & 0x3, sectionIndex: sym.st_shndx,
                                    version: version, isDefaultVersion: isDefault))
        }
        return result
    }

    /// Per `.dynsym` entry: the raw `.gnu.version` value and the version name it designates.
    private func versionInfo(dynsymIndex: Int, count: Int) throws(ELFObjectError) -> [(raw: UInt16, name: String?)]? {
        guard let versym = sections.first(where: { $0.type == 0x6fff_ffff && Int($0.link) == dynsymIndex }) else { return nil }
        let raw = try sectionData(versym.index)
        var names: [UInt16: String] = [:]
        func u16(_ b: [UInt8], _ at: Int) -> UInt16 { UInt16(b[at]) | UInt16(b[at + 1]) << 8 }
        func u32(_ b: [UInt8], _ at: Int) -> UInt32 {
            UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24
        }
        // .gnu.version_d: Elf64_Verdef {vd_version, vd_flags, vd_ndx, vd_cnt: u16; vd_hash, vd_aux, vd_next: u32}
        // followed by Elf64_Verdaux {vda_name, vda_next: u32}.
        if let verdef = sections.first(where: { $0.type == 0x6fff_fffd }) {
            let b = try sectionData(verdef.index)
            var pos = 0
            for _ in 0..<Int(verdef.info) where pos + 20 <= b.count {
                let ndx = u16(b, pos + 4)
                let aux = Int(u32(b, pos + 12)), next = Int(u32(b, pos + 16))
                if pos + aux + 8 <= b.count, let p = elf_strptr(elf, Int(verdef.link), Int(u32(b, pos + aux))) {
                    names[ndx] = String(cString: p)
                }
                if next == 0 { break }
                pos += next
            }
        }
        // .gnu.version_r: Elf64_Verneed {vn_version, vn_cnt: u16; vn_file, vn_aux, vn_next: u32}
        // followed by Elf64_Vernaux {vna_hash: u32; vna_flags, vna_other: u16; vna_name, vna_next: u32}.
        if let verneed = sections.first(where: { $0.type == 0x6fff_fffe }) {
            let b = try sectionData(verneed.index)
            var pos = 0
            for _ in 0..<Int(verneed.info) where pos + 16 <= b.count {
                let cnt = Int(u16(b, pos + 2))
                var apos = pos + Int(u32(b, pos + 8))
                for _ in 0..<cnt where apos + 16 <= b.count {
                    let other = u16(b, apos + 6)
                    if let p = elf_strptr(elf, Int(verneed.link), Int(u32(b, apos + 8))) { names[other] = String(cString: p) }
                    let anext = Int(u32(b, apos + 12))
                    if anext == 0 { break }
                    apos += anext
                }
                let next = Int(u32(b, pos + 12))
                if next == 0 { break }
                pos += next
            }
        }
        var result: [(UInt16, String?)] = []
        result.reserveCapacity(count)
        for i in 0..<count {
            guard 2 * i + 1 < raw.count else { result.append((1, nil)); continue }
            let v = u16(raw, 2 * i)
            let idx = v & 0x7fff
            result.append((v, idx >= 2 ? names[idx] : nil))
        }
        return result
    }

    /// Every `SHT_RELA` section with its relocations. (x86-64 objects use RELA only; a `SHT_REL` section
    /// is reported as an error.)
    /// - Throws: `ELFObjectError`.
    public func relocationSections() throws(ELFObjectError) -> [ELFRelocationSection] {
        var result: [ELFRelocationSection] = []
        for s in sections {
            if s.type == 9 { throw ELFObjectError("\(origin): \(s.name): SHT_REL relocations are not used on x86-64") }
            guard s.type == 4 else { continue }
            guard let scn = elf_getscn(elf, s.index), let data = elf_getdata(scn, nil) else {
                throw ELFObjectError("\(origin): \(s.name): \(Self.libelfMessage())")
            }
            let count = s.entrySize > 0 ? Int(s.size / s.entrySize) : 0
            var relocs: [ELFRelocation] = []
            relocs.reserveCapacity(count)
            for i in 0..<count {
                var r = GElf_Rela()
                guard gelf_getrela(data, Int32(i), &r) != nil else {
                    throw ELFObjectError("\(origin): \(s.name)[\(i)]: \(Self.libelfMessage())")
                }
                relocs.append(ELFRelocation(offset: r.r_offset, type: UInt32(truncatingIfNeeded: r.r_info & 0xffff_ffff),
                                            symbolIndex: Int(r.r_info >> 32), addend: r.r_addend))
            }
            result.append(ELFRelocationSection(section: s, targetSectionIndex: Int(s.info),
                                               symbolTableIndex: Int(s.link), relocations: relocs))
        }
        return result
    }

    /// Looks up an exported (defined, global or weak) `.dynsym` function or object by name, preferring the
    /// default version (`name@@VER`) over hidden ones; `version` selects a specific version instead.
    /// Returns nil when the object does not export it.
    /// - Throws: `ELFObjectError`.
    public func exportedSymbol(named name: String, version: String? = nil) throws(ELFObjectError) -> ELFSymbol? {
        let candidates = try symbols(.dynsym).filter {
            $0.name == name && $0.isDefined && $0.binding != ELFSymbol.bindLocal && $0.type != ELFSymbol.typeSection
        }
        if let version { return candidates.first { $0.version == version } }
        return candidates.first { $0.isDefaultVersion && $0.binding == ELFSymbol.bindGlobal }
            ?? candidates.first { $0.isDefaultVersion }
    }
}

/// Names of x86-64 relocation types (psABI "Relocation Types" table), for messages.
public enum X86_64RelocationType {
    /// `R_X86_64_…` name of `type`, or `R_X86_64_<n>` for an unknown number.
    public static func name(_ type: UInt32) -> String {
        let names: [UInt32: String] = [
            0: "NONE", 1: "64", 2: "PC32", 3: "GOT32", 4: "PLT32", 5: "COPY", 6: "GLOB_DAT", 7: "JUMP_SLOT",
            8: "RELATIVE", 9: "GOTPCREL", 10: "32", 11: "32S", 12: "16", 13: "PC16", 14: "8", 15: "PC8",
            16: "DTPMOD64", 17: "DTPOFF64", 18: "TPOFF64", 19: "TLSGD", 20: "TLSLD", 21: "DTPOFF32",
            22: "GOTTPOFF", 23: "TPOFF32", 24: "PC64", 25: "GOTOFF64", 26: "GOTPC32", 27: "GOT64",
            28: "GOTPCREL64", 29: "GOTPC64", 30: "GOTPLT64", 31: "PLTOFF64", 32: "SIZE32", 33: "SIZE64",
            34: "GOTPC32_TLSDESC", 35: "TLSDESC_CALL", 36: "TLSDESC", 37: "IRELATIVE", 38: "RELATIVE64",
            41: "GOTPCRELX", 42: "REX_GOTPCRELX",
        ]
        return "R_X86_64_" + (names[type] ?? String(type))
    }
}
