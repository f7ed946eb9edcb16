#if canImport(Glibc)
import Glibc
#endif

/// The target ELF object as mapped in one process: identity, load bias and address span.
struct TargetObject: Sendable, Hashable {
    /// Path as shown in maps (without ` (deleted)`).
    var path: String
    /// `major:minor` as in maps.
    var device: String
    /// Inode.
    var inode: UInt64
    /// GNU build-id (lower-case hex), "" when the object has none.
    var buildID: String
    /// `e_type`: 2 = ET_EXEC, 3 = ET_DYN.
    var elfType: UInt16
    /// Load bias: mapped address − link-time address.
    var loadBias: UInt64
    /// Link base: the lowest `PT_LOAD` `p_vaddr`, page-aligned (0 for PIE, 0x400000 for `-no-pie`).
    var linkBase: UInt64
    /// Lowest and highest mapped address of the object (all its mappings).
    var low: UInt64
    var high: UInt64

    /// Finds the object in `maps`: mappings whose device:inode equals `stat(targetPath)` as seen by the
    /// engine, else mappings whose path equals `targetPath` (chroot, other mount namespace, replaced
    /// file), else — when `buildID` is given — the mapped file whose `NT_GNU_BUILD_ID` is `buildID` (the
    /// same build installed at another path, or in a container: the planner's scanner matches processes by
    /// build-id, so the engine must find what the plan promised). Reads the ELF header, program headers and
    /// `NT_GNU_BUILD_ID` note through `/proc/PID/map_files/<range>`, i.e. the file the *process* maps.
    /// Returns nil when not mapped.
    static func find(pid: Int32, targetPath: String, buildID: String? = nil, maps: [ProcMapping]) -> TargetObject? {
        var byInode: [ProcMapping] = []
        var st = stat()
        if stat(targetPath, &st) == 0 {
            let dev = UInt64(st.st_dev)
            let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & ~UInt64(0xfff))
            let minor = (dev & 0xff) | ((dev >> 12) & ~UInt64(0xff))
            let devText = hex2(major) + ":" + hex2(minor)
            byInode = maps.filter { $0.inode == UInt64(st.st_ino) && $0.device == devText && $0.inode != 0 }
        }
        var group = byInode
        if group.isEmpty {
            group = maps.filter { $0.inode != 0 && $0.pathWithoutDeleted == targetPath }
        }
        if group.isEmpty, let wanted = buildID?.lowercased(), !wanted.isEmpty {
            // Every file mapped at offset 0 that also has an executable mapping, checked once each.
            var seen = Set<String>()
            let executableFiles = Set(maps.filter { $0.inode != 0 && $0.executable }.map { "\($0.device):\($0.inode)" })
            for m in maps where m.inode != 0 && m.offset == 0 {
                let key = "\(m.device):\(m.inode)"
                guard executableFiles.contains(key), seen.insert(key).inserted else { continue }
                if ELFIdentity.read(path: "/proc/\(pid)/map_files/\(hex(m.start))-\(hex(m.end))")?.buildID == wanted {
                    group = maps.filter { $0.inode == m.inode && $0.device == m.device }
                    break
                }
            }
        }
        guard let first = group.min(by: { $0.start < $1.start }) else { return nil }
        // Keep only mappings of that exact file (device and inode), in case several share the path.
        group = group.filter { $0.inode == first.inode && $0.device == first.device }
        guard let base = group.filter({ $0.offset == 0 }).min(by: { $0.start < $1.start }) else { return nil }
        guard let ident = ELFIdentity.read(path: "/proc/\(pid)/map_files/\(hex(base.start))-\(hex(base.end))") else {
            return nil
        }
        let pageMask = ~UInt64(4095)
        let bias = base.start &- (ident.lowestLoadVaddr & pageMask)
        return TargetObject(path: first.pathWithoutDeleted, device: first.device, inode: first.inode,
                            buildID: ident.buildID, elfType: ident.type, loadBias: bias,
                            linkBase: ident.lowestLoadVaddr & pageMask,
                            low: group.map(\.start).min() ?? base.start, high: group.map(\.end).max() ?? base.end)
    }
}

func hex(_ v: UInt64) -> String { String(v, radix: 16) }

private func hex2(_ v: UInt64) -> String {
    let s = String(v, radix: 16)
    return s.count < 2 ? "0" + s : s
}

/// The few facts of an ELF file the engine needs: `e_type`, lowest `PT_LOAD` vaddr and the GNU build-id.
/// Format: ELF-64 gABI (Elf64_Ehdr, Elf64_Phdr) and the `NT_GNU_BUILD_ID` note (type 3, owner "GNU").
struct ELFIdentity: Sendable, Hashable {
    var type: UInt16
    var lowestLoadVaddr: UInt64
    var buildID: String

    static func read(path: String) -> ELFIdentity? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return nil }
        defer { close(fd) }
        func pread(_ count: Int, _ offset: UInt64) -> [UInt8]? {
            guard count > 0, count < 1 << 20 else { return nil }
            var b = [UInt8](repeating: 0, count: count)
            let n = b.withUnsafeMutableBytes { Glibc.pread(fd, $0.baseAddress, count, off_t(offset)) }
            return n == count ? b : nil
        }
        guard let eh = pread(64, 0), eh[0] == 0x7f, eh[1] == 0x45, eh[2] == 0x4c, eh[3] == 0x46,
              eh[4] == 2 /* ELFCLASS64 */, eh[5] == 1 /* little-endian */ else { return nil }
        func u(_ b: [UInt8], _ at: Int, _ n: Int) -> UInt64 {
            var v: UInt64 = 0
            for i in 0..<n { v |= UInt64(b[at + i]) << (8 * i) }
            return v
        }
        let type = UInt16(u(eh, 16, 2))
        let phoff = u(eh, 32, 8)
        let phentsize = Int(u(eh, 54, 2))
        let phnum = Int(u(eh, 56, 2))
        guard phentsize >= 56, phnum > 0, let ph = pread(phentsize * phnum, phoff) else { return nil }
        var lowest = UInt64.max
        var buildID = ""
        for i in 0..<phnum {
            let o = i * phentsize
            let ptype = u(ph, o, 4)
            if ptype == 1 { lowest = min(lowest, u(ph, o + 16, 8)) }
            if ptype == 4, buildID.isEmpty, let notes = pread(Int(u(ph, o + 32, 8)), u(ph, o + 8, 8)) {
                var p = 0
                while p + 12 <= notes.count {
                    let namesz = Int(u(notes, p, 4)), descsz = Int(u(notes, p + 4, 4)), ntype = u(notes, p + 8, 4)
                    let nameStart = p + 12
                    let descStart = nameStart + (namesz + 3) / 4 * 4
                    let next = descStart + (descsz + 3) / 4 * 4
                    guard next <= notes.count || descStart + descsz <= notes.count else { break }
                    if ntype == 3, namesz == 4, notes[nameStart..<(nameStart + 3)].elementsEqual([0x47, 0x4e, 0x55]) {
                        buildID = PatchRegionHeader.hexString(Array(notes[descStart..<(descStart + descsz)]))
                        break
                    }
                    p = next
                }
            }
        }
        guard lowest != UInt64.max else { return nil }
        return ELFIdentity(type: type, lowestLoadVaddr: lowest, buildID: buildID)
    }
}
