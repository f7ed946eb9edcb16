#if canImport(Glibc)
import Glibc
#endif
import SystemPackage
internal import CLibElf

/// An error reading an ELF file.
///
/// Every case names the file (its path, or the description given with a file descriptor).
public enum ELFError: Error, Sendable, Hashable, CustomStringConvertible {
    /// `open(2)` failed; `errno` is the system error number.
    case cannotOpen(path: String, errno: Int32)
    /// The file is readable but is not an ELF object (libelf reports another kind, e.g. `ar` or data).
    case notELF(path: String)
    /// libelf reported an error; `message` is `elf_errmsg`'s text, `operation` the libelf call.
    case libelf(path: String, operation: String, message: String)
    /// The file is ELF but inconsistent (e.g. a program header that cannot be read).
    case malformed(path: String, reason: String)

    /// A one-line description of the error (path and libelf message).
    public var description: String {
        switch self {
        case let .cannotOpen(path, code):
            return "\(path): cannot open: \(Errno(rawValue: code).description)"
        case let .notELF(path):
            return "\(path): not an ELF file"
        case let .libelf(path, operation, message):
            return "\(path): \(operation) failed: \(message)"
        case let .malformed(path, reason):
            return "\(path): malformed ELF: \(reason)"
        }
    }

    /// The path or description of the file the error is about.
    public var path: String {
        switch self {
        case let .cannotOpen(path, _), let .notELF(path), let .libelf(path, _, _), let .malformed(path, _):
            return path
        }
    }
}

/// `e_type` of an ELF header (ELF gABI, "ELF Header").
public enum ELFFileType: Sendable, Hashable, CustomStringConvertible {
    /// `ET_REL` (1): a relocatable object (`.o`, a user patch payload, a kernel module).
    case relocatable
    /// `ET_EXEC` (2): a fixed-address executable (`gcc -no-pie`); its load bias is 0.
    case executable
    /// `ET_DYN` (3): a shared object or a position-independent executable.
    case sharedObject
    /// `ET_CORE` (4).
    case core
    /// Any other value, kept as read.
    case other(UInt16)

    /// Decodes an `e_type` value.
    public init(rawValue: UInt16) {
        switch rawValue {
        case 1: self = .relocatable
        case 2: self = .executable
        case 3: self = .sharedObject
        case 4: self = .core
        default: self = .other(rawValue)
        }
    }

    /// The `e_type` value.
    public var rawValue: UInt16 {
        switch self {
        case .relocatable: return 1
        case .executable: return 2
        case .sharedObject: return 3
        case .core: return 4
        case let .other(value): return value
        }
    }

    /// A one-line description of the error (path and libelf message).
    public var description: String {
        switch self {
        case .relocatable: return "ET_REL"
        case .executable: return "ET_EXEC"
        case .sharedObject: return "ET_DYN"
        case .core: return "ET_CORE"
        case let .other(value): return "ET_\(value)"
        }
    }
}

/// One program header (`Elf64_Phdr`, widened from 32-bit files by `gelf_getphdr`).
///
/// Addresses and sizes are in bytes; `vaddr` is the link-time virtual address.
public struct ELFProgramHeader: Sendable, Hashable {
    /// `p_type` (`PT_LOAD` = 1, `PT_DYNAMIC` = 2, `PT_NOTE` = 4, …).
    public var type: UInt32
    /// `p_flags` (`PF_X` = 1, `PF_W` = 2, `PF_R` = 4).
    public var flags: UInt32
    /// `p_offset`: file offset of the segment.
    public var offset: UInt64
    /// `p_vaddr`: link-time virtual address.
    public var vaddr: UInt64
    /// `p_paddr`.
    public var paddr: UInt64
    /// `p_filesz`: bytes in the file.
    public var fileSize: UInt64
    /// `p_memsz`: bytes in memory.
    public var memorySize: UInt64
    /// `p_align`.
    public var align: UInt64

    /// `PT_LOAD`.
    public static let typeLoad: UInt32 = 1
    /// `PT_NOTE`.
    public static let typeNote: UInt32 = 4
    /// `PF_X`.
    public static let flagExecute: UInt32 = 1
    /// `PF_W`.
    public static let flagWrite: UInt32 = 2
    /// `PF_R`.
    public static let flagRead: UInt32 = 4

    /// Memberwise initializer.
    public init(type: UInt32, flags: UInt32, offset: UInt64, vaddr: UInt64, paddr: UInt64,
                fileSize: UInt64, memorySize: UInt64, align: UInt64) {
        self.type = type
        self.flags = flags
        self.offset = offset
        self.vaddr = vaddr
        self.paddr = paddr
        self.fileSize = fileSize
        self.memorySize = memorySize
        self.align = align
    }

    /// The segment is `PT_LOAD`.
    public var isLoad: Bool { type == Self.typeLoad }
}

/// An ELF file opened read-only through libelf.
///
/// Reads are lazy (`ELF_C_READ`: libelf `pread`s what it needs), so the file descriptor stays open for the
/// object's lifetime; the file is never `mmap`ed, so truncating it on disk cannot crash the reader with
/// `SIGBUS`. The header and program headers are read once at open; the build-id when first asked for.
///
/// Not thread-safe (one libelf handle); use one instance per thread. Other files of SutureELF reach the
/// libelf handle through ``handle`` (package access) to add symbols, sections and relocations.
public final class ELFFile {
    /// The path given to ``init(path:)``, or the description given to ``init(fileDescriptor:description:closeOnDeinit:)``.
    public let path: String
    /// `e_type`.
    public let type: ELFFileType
    /// `e_machine` (`EM_X86_64` = 62, `EM_AARCH64` = 183, …).
    public let machine: UInt16
    /// `true` for ELFCLASS64, `false` for ELFCLASS32.
    public let is64Bit: Bool
    /// `e_entry`.
    public let entry: UInt64
    /// The program headers in file order (empty for most `ET_REL` objects).
    public let programHeaders: [ELFProgramHeader]

    /// `EM_X86_64`.
    public static let machineX86_64: UInt16 = 62
    /// `EM_AARCH64`.
    public static let machineAArch64: UInt16 = 183

    /// The libelf `Elf *` handle, valid for the lifetime of this object.
    package let handle: OpaquePointer
    /// The file descriptor libelf reads from.
    package let fileDescriptor: Int32
    private let closeOnDeinit: Bool
    private var cachedBuildID: String??

    private static let libelfReady: Bool = elf_version(UInt32(EV_CURRENT)) != UInt32(EV_NONE)

    /// Opens the ELF file at `path` read-only.
    ///
    /// - Throws: ``ELFError/cannotOpen(path:errno:)`` when `open(2)` fails, ``ELFError/notELF(path:)`` when
    ///   the file is not ELF, ``ELFError/libelf(path:operation:message:)`` or
    ///   ``ELFError/malformed(path:reason:)`` when its header or program headers cannot be read.
    public convenience init(path: String) throws(ELFError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw .cannotOpen(path: path, errno: errno) }
        try self.init(fileDescriptor: fd, description: path, closeOnDeinit: true)
    }

    /// Reads an ELF file from an already-open file descriptor (for example one opened on
    /// `/proc/PID/map_files/<start>-<end>`, which reaches the mapped file even when it is deleted, replaced
    /// on disk, or in another mount namespace).
    ///
    /// - Parameters:
    ///   - fileDescriptor: a readable descriptor; it must stay open while this object lives.
    ///   - description: names the file in errors and in ``path``.
    ///   - closeOnDeinit: close the descriptor when this object is released (also when `init` throws).
    /// - Throws: as ``init(path:)``, except ``ELFError/cannotOpen(path:errno:)``.
    public init(fileDescriptor: Int32, description: String, closeOnDeinit: Bool = false) throws(ELFError) {
        func fail(_ error: ELFError, _ elf: OpaquePointer? = nil) -> ELFError {
            if let elf { elf_end(elf) }
            if closeOnDeinit { close(fileDescriptor) }
            return error
        }
        guard Self.libelfReady else {
            throw fail(.libelf(path: description, operation: "elf_version", message: Self.lastError()))
        }
        guard let elf = elf_begin(fileDescriptor, ELF_C_READ, nil) else {
            throw fail(.libelf(path: description, operation: "elf_begin", message: Self.lastError()))
        }
        guard elf_kind(elf) == ELF_K_ELF else { throw fail(.notELF(path: description), elf) }
        var ehdr = GElf_Ehdr()
        guard gelf_getehdr(elf, &ehdr) != nil else {
            throw fail(.libelf(path: description, operation: "gelf_getehdr", message: Self.lastError()), elf)
        }
        var count = 0
        guard elf_getphdrnum(elf, &count) == 0 else {
            throw fail(.libelf(path: description, operation: "elf_getphdrnum", message: Self.lastError()), elf)
        }
        var headers: [ELFProgramHeader] = []
        headers.reserveCapacity(count)
        for index in 0..<count {
            var phdr = GElf_Phdr()
            guard gelf_getphdr(elf, Int32(index), &phdr) != nil else {
                throw fail(.malformed(path: description,
                                      reason: "program header \(index): \(Self.lastError())"), elf)
            }
            headers.append(ELFProgramHeader(type: phdr.p_type, flags: phdr.p_flags, offset: phdr.p_offset,
                                            vaddr: phdr.p_vaddr, paddr: phdr.p_paddr, fileSize: phdr.p_filesz,
                                            memorySize: phdr.p_memsz, align: phdr.p_align))
        }
        self.path = description
        self.handle = elf
        self.fileDescriptor = fileDescriptor
        self.closeOnDeinit = closeOnDeinit
        self.type = ELFFileType(rawValue: ehdr.e_type)
        self.machine = ehdr.e_machine
        self.is64Bit = ehdr.e_ident.4 == UInt8(ELFCLASS64)
        self.entry = ehdr.e_entry
        self.programHeaders = headers
    }

    deinit {
        elf_end(handle)
        if closeOnDeinit { close(fileDescriptor) }
    }

    /// The `PT_LOAD` program headers, in file order.
    public var loadSegments: [ELFProgramHeader] { programHeaders.filter(\.isLoad) }

    /// The link base: the lowest `p_vaddr` of any `PT_LOAD` segment (`0` for a typical PIE or shared object,
    /// `0x400000` for a typical x86-64 `-no-pie` executable); `nil` when there is no `PT_LOAD`.
    public var linkBase: UInt64? { loadSegments.map(\.vaddr).min() }

    /// The GNU build-id (`NT_GNU_BUILD_ID`, owner `GNU`) as lower-case hex, or `nil` when the file has none.
    ///
    /// Looked up in the `PT_NOTE` segments first (what a loaded image carries), then in `SHT_NOTE` sections
    /// (relocatable objects and files without program headers). Format: `readelf -n` prints the same hex.
    ///
    /// - Throws: ``ELFError/libelf(path:operation:message:)`` when a note cannot be read.
    public func buildID() throws(ELFError) -> String? {
        if let cached = cachedBuildID { return cached }
        var found: [UInt8]? = nil
        for phdr in programHeaders where phdr.type == ELFProgramHeader.typeNote && phdr.fileSize > 0 {
            let noteType = phdr.align == 8 ? ELF_T_NHDR8 : ELF_T_NHDR
            guard let data = elf_getdata_rawchunk(handle, Int64(phdr.offset), Int(phdr.fileSize), noteType) else {
                throw .libelf(path: path, operation: "elf_getdata_rawchunk", message: Self.lastError())
            }
            if let id = Self.gnuBuildID(in: data) { found = id; break }
        }
        if found == nil {
            var section: OpaquePointer? = elf_nextscn(handle, nil)
            while let scn = section, found == nil {
                var shdr = GElf_Shdr()
                if gelf_getshdr(scn, &shdr) != nil, shdr.sh_type == UInt32(SHT_NOTE) {
                    guard let data = elf_getdata(scn, nil) else {
                        throw .libelf(path: path, operation: "elf_getdata", message: Self.lastError())
                    }
                    found = Self.gnuBuildID(in: data)
                }
                section = elf_nextscn(handle, scn)
            }
        }
        let hex = found.map(Self.hex)
        cachedBuildID = .some(hex)
        return hex
    }

    /// Finds an `NT_GNU_BUILD_ID` note with owner `GNU` in a note data block.
    private static func gnuBuildID(in data: UnsafeMutablePointer<Elf_Data>) -> [UInt8]? {
        guard let base = data.pointee.d_buf else { return nil }
        let size = data.pointee.d_size
        var offset = 0
        while offset < size {
            var nhdr = GElf_Nhdr()
            var nameOffset = 0
            var descOffset = 0
            let next = gelf_getnote(data, offset, &nhdr, &nameOffset, &descOffset)
            if next == 0 { break }
            if nhdr.n_type == UInt32(NT_GNU_BUILD_ID), nhdr.n_namesz == 4,
               nameOffset + 4 <= size, descOffset + Int(nhdr.n_descsz) <= size {
                let name = base.advanced(by: nameOffset).assumingMemoryBound(to: UInt8.self)
                if name[0] == 0x47, name[1] == 0x4E, name[2] == 0x55, name[3] == 0 {  // "GNU\0"
                    let desc = UnsafeRawBufferPointer(start: base.advanced(by: descOffset), count: Int(nhdr.n_descsz))
                    return Array(desc)
                }
            }
            offset = next
        }
        return nil
    }

    private static func hex(_ bytes: [UInt8]) -> String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// libelf's message for the last error on this thread.
    package static func lastError() -> String {
        guard let message = elf_errmsg(-1) else { return "unknown libelf error" }
        return String(cString: message)
    }
}
