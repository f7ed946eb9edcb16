import Foundation
import Glibc
import SutureELF

/// Why an import could not be resolved.
public struct ImportResolverError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, naming the process and the symbol.
    public var message: String

    /// Creates an error.
    public init(_ message: String) { self.message = message }

    /// The message, naming the symbol and the process.
    public var description: String { message }
}

/// Resolves symbol names to their run-time addresses in another process, the way the dynamic linker
/// would for a new object: by reading the `.dynsym` of every ELF object the process has mapped.
///
/// Objects are read through `/proc/PID/map_files/<start>-<end>` (the exact file the process maps, even
/// deleted or in another mount namespace; needs CAP_SYS_ADMIN, with a fallback to
/// `/proc/PID/root/<path>`). Each object's load bias is `start of its offset-0 mapping − page-aligned
/// p_vaddr of its first PT_LOAD` (ELF gABI "Program Loading"). Search order: libc first, then every other
/// object in address order. A plain name resolves to the default version (`name@@VER`, or unversioned);
/// `name@VER` selects a specific version. GNU indirect functions (`STT_GNU_IFUNC`, e.g. `strlen`, `memcpy`)
/// are resolved by running their resolver in THIS process, which must map the very same file
/// (device and inode), and translating the chosen implementation's offset to the target's bias — both
/// processes run on the same CPU, so the selection is the same; never by calling into the target.
///
/// Not thread-safe (caches parsed objects); use one instance per operation. Reads nothing but
/// `/proc` files: no ptrace stop needed.
public final class ImportResolver {
    /// One ELF object mapped in the process.
    public struct LoadedObject: Sendable, Hashable {
        /// Path as shown in `/proc/PID/maps` (may end in ` (deleted)`).
        public var path: String
        /// Start of its mapping with file offset 0.
        public var start: UInt64
        /// End of that mapping.
        public var end: UInt64
        /// `major:minor` device as in maps (hex).
        public var device: String
        /// Inode.
        public var inode: UInt64
    }

    /// A resolved symbol.
    public struct Resolved: Sendable, Hashable {
        /// Run-time address in the process.
        public var address: UInt64
        /// The object that exports it.
        public var object: String
        /// Its version (`GLIBC_2.14`), if versioned.
        public var version: String?
        /// True if it was a GNU indirect function resolved through this process.
        public var viaIFunc: Bool
    }

    /// The process.
    public let pid: Int32
    /// ELF candidates in search order (libc first).
    public let objects: [LoadedObject]
    private let procRoot: String
    private var parsed: [Int: (elf: ELFObjectFile, bias: UInt64)?] = [:]
    /// This process's own objects (for ifuncs), read on first use.
    private var selfObjects: [LoadedObject]?
    /// Per object: exported (defined, non-local) `.dynsym` symbols by name, built on first use.
    private var exports: [Int: [String: [ELFSymbol]]] = [:]

    /// Reads `/proc/PID/maps`.
    /// - Parameter procRoot: `/proc` (tests may point elsewhere only for the maps file; objects are still
    ///   opened through `<procRoot>/PID/map_files`).
    /// - Throws: `ImportResolverError` if the process's maps cannot be read.
    public init(pid: Int32, procRoot: String = "/proc") throws(ImportResolverError) {
        self.pid = pid
        self.procRoot = procRoot
        let text: String
        do { text = try String(contentsOfFile: "\(procRoot)/\(pid)/maps", encoding: .utf8) } catch {
            throw ImportResolverError("pid \(pid): cannot read \(procRoot)/\(pid)/maps: \(error.localizedDescription)")
        }
        self.objects = Self.parseMaps(text)
    }

    /// The file-backed objects of a maps file, one per (device, inode, path), with their offset-0 mapping;
    /// libc first, then address order.
    static func parseMaps(_ text: String) -> [LoadedObject] {
        struct Row { var start, end, offset: UInt64; var device: String; var inode: UInt64; var path: String }
        var rows: [Row] = []
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard f.count == 6, let inode = UInt64(f[4]), inode != 0, let offset = UInt64(f[2], radix: 16) else { continue }
            let path = f[5].trimmingCharacters(in: .whitespaces)
            guard path.hasPrefix("/"), !path.hasPrefix("/memfd:") else { continue }
            let range = f[0].split(separator: "-")
            guard range.count == 2, let start = UInt64(range[0], radix: 16), let end = UInt64(range[1], radix: 16) else { continue }
            rows.append(Row(start: start, end: end, offset: offset, device: String(f[3]), inode: inode, path: path))
        }
        // Per file, the offset-0 mapping the loader made: the one directly followed by another mapping of
        // the same file (a plain mmap of the whole file, e.g. by a tool reading it, stands alone).
        func followed(_ i: Int) -> Bool {
            i + 1 < rows.count && rows[i + 1].start == rows[i].end && rows[i + 1].inode == rows[i].inode
                && rows[i + 1].device == rows[i].device
        }
        var chosen: [String: Int] = [:]
        var order: [String] = []
        for (i, r) in rows.enumerated() where r.offset == 0 {
            let key = "\(r.device):\(r.inode):\(r.path)"
            if let prior = chosen[key] {
                if !followed(prior) && followed(i) { chosen[key] = i }
            } else {
                chosen[key] = i
                order.append(key)
            }
        }
        let result = order.map { key -> LoadedObject in
            let r = rows[chosen[key]!]
            return LoadedObject(path: r.path, start: r.start, end: r.end, device: r.device, inode: r.inode)
        }.sorted { $0.start < $1.start }
        func isLibc(_ o: LoadedObject) -> Bool {
            let base = (o.path as NSString).lastPathComponent
            return base.hasPrefix("libc.so") || base.hasPrefix("libc-")
        }
        return result.filter(isLibc) + result.filter { !isLibc($0) }
    }

    /// The address of `name` in the process, or nil when no object exports it (or it cannot be resolved).
    /// Suitable as `PatchImageLinker.link`'s `resolveImport`.
    public func address(of name: String) -> UInt64? { try? resolve(name)?.address }

    /// Resolves `name` (`printf`, or `memcpy@GLIBC_2.2.5` for a specific version).
    /// - Returns: nil when no loaded object exports it.
    /// - Throws: `ImportResolverError` when it is exported but cannot be resolved safely (an IFUNC whose
    ///   object this process does not map).
    public func resolve(_ name: String) throws(ImportResolverError) -> Resolved? {
        var symbolName = name
        var version: String? = nil
        if let at = name.firstIndex(of: "@") {
            symbolName = String(name[..<at])
            version = String(name[at...].drop { $0 == "@" })
        }
        for (i, object) in objects.enumerated() {
            guard let (elf, bias) = load(i) else { continue }
            if exports[i] == nil {
                var table: [String: [ELFSymbol]] = [:]
                for s in (try? elf.symbols(.dynsym)) ?? [] where s.isDefined && s.binding != ELFSymbol.bindLocal
                    && s.type != ELFSymbol.typeSection && !s.name.isEmpty {
                    table[s.name, default: []].append(s)
                }
                exports[i] = table
            }
            let candidates = exports[i]![symbolName] ?? []
            let chosen: ELFSymbol?
            if let version {
                chosen = candidates.first { $0.version == version }
            } else {
                chosen = candidates.first { $0.isDefaultVersion && $0.binding == ELFSymbol.bindGlobal }
                    ?? candidates.first { $0.isDefaultVersion }
            }
            guard let sym = chosen else { continue }
            if sym.type == ELFSymbol.typeIFunc {
                let address = try resolveIFunc(symbolName, version: version, object: object, bias: bias)
                return Resolved(address: address, object: object.path, version: sym.version, viaIFunc: true)
            }
            return Resolved(address: bias &+ sym.value, object: object.path, version: sym.version, viaIFunc: false)
        }
        return nil
    }

    /// The load bias of object `index`, parsing it on first use; nil if it is not a loadable ELF file.
    private func load(_ index: Int) -> (ELFObjectFile, UInt64)? {
        if let cached = parsed[index] { return cached }
        let object = objects[index]
        let mapFile = "\(procRoot)/\(pid)/map_files/\(String(object.start, radix: 16))-\(String(object.end, radix: 16))"
        var elf = try? ELFObjectFile(path: mapFile)
        if elf == nil {
            let plain = object.path.hasSuffix(" (deleted)") ? nil : "\(procRoot)/\(pid)/root\(object.path)"
            if let plain, let candidate = try? ELFObjectFile(path: plain), Self.sameFile(plain, object) {
                elf = candidate
            }
        }
        guard let elf, elf.fileType == ELFObjectFile.typeShared || elf.fileType == ELFObjectFile.typeExecutable,
              let loads = try? elf.programHeaders().filter({ $0.type == 1 }),
              let first = loads.min(by: { $0.virtualAddress < $1.virtualAddress }) else {
            parsed[index] = .some(nil)
            return nil
        }
        let bias = object.start &- (first.virtualAddress & ~0xfff)
        parsed[index] = (elf, bias)
        return (elf, bias)
    }

    /// The load bias (`l_addr` of its `struct link_map`, from glibc's `dlinfo(RTLD_DI_LINKMAP)`) of an
    /// object this process loaded.
    private static func loadBias(of handle: UnsafeMutableRawPointer) -> UInt64? {
        typealias DLInfo = @convention(c) (UnsafeMutableRawPointer?, Int32, UnsafeMutableRawPointer?) -> Int32
        guard let f = dlsym(nil, "dlinfo") else { return nil }
        var linkMap: UnsafeMutableRawPointer? = nil
        let rc = withUnsafeMutablePointer(to: &linkMap) { unsafeBitCast(f, to: DLInfo.self)(handle, 2 /* RTLD_DI_LINKMAP */, $0) }
        guard rc == 0, let linkMap else { return nil }
        return linkMap.load(as: UInt64.self)   // struct link_map { ElfW(Addr) l_addr; … } (<link.h>)
    }

    /// glibc's `dlvsym` (a GNU extension the Glibc module does not import), looked up with `dlsym`.
    private static func dlvsym(_ handle: UnsafeMutableRawPointer, _ name: String, _ version: String) -> UnsafeMutableRawPointer? {
        typealias DLVSym = @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>, UnsafePointer<CChar>) -> UnsafeMutableRawPointer?
        guard let f = dlsym(nil, "dlvsym") else { return nil }
        return unsafeBitCast(f, to: DLVSym.self)(handle, name, version)
    }

    private static func sameFile(_ path: String, _ object: LoadedObject) -> Bool {
        var st = stat()
        guard stat(path, &st) == 0 else { return false }
        return UInt64(st.st_ino) == object.inode
    }

    /// Resolves an IFUNC by asking this process's dynamic linker for the same file's symbol.
    private func resolveIFunc(_ name: String, version: String?, object: LoadedObject, bias: UInt64) throws(ImportResolverError) -> UInt64 {
        if selfObjects == nil {
            selfObjects = Self.parseMaps((try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8)) ?? "")
        }
        guard let mine = selfObjects!.first(where: { $0.device == object.device && $0.inode == object.inode }) else {
            throw ImportResolverError("pid \(pid): \(name) in \(object.path) is a GNU indirect function (ifunc) and this process does not map the same file to resolve it; reference a non-ifunc symbol instead")
        }
        guard let handle = dlopen(mine.path, RTLD_LAZY | RTLD_NOLOAD) else {
            throw ImportResolverError("pid \(pid): cannot resolve ifunc \(name): dlopen(\(mine.path), RTLD_NOLOAD) failed")
        }
        defer { dlclose(handle) }
        let pointer = version.map { Self.dlvsym(handle, name, $0) } ?? dlsym(handle, name)
        guard let pointer, let myBias = Self.loadBias(of: handle) else {
            throw ImportResolverError("pid \(pid): cannot resolve ifunc \(name) in \(mine.path)")
        }
        let here = UInt64(UInt(bitPattern: pointer))
        return bias &+ (here &- myBias)
    }
}
