#if canImport(Glibc)
import Glibc
#endif
import SutureELF

/// An ELF file a patch targets: where it is installed and, when known, which build it must be.
public struct TargetFile: Sendable, Hashable, Codable {
    /// Absolute path as installed (`/usr/sbin/demo`), as processes see it in their mount namespace.
    public var path: String
    /// Expected GNU build-id (lower-case hex). `nil` matches any build of the file at ``path`` (by path or
    /// device:inode only).
    public var buildID: String?

    /// Memberwise initializer.
    public init(path: String, buildID: String? = nil) {
        self.path = path
        self.buildID = buildID?.lowercased()
    }
}

/// Finds the processes that map target ELF files or carry Suture patch markers, by reading `/proc`.
///
/// For every `/proc/[0-9]*` under the root it reads `maps` once (one `read` per buffer-full into a buffer
/// reused across processes) and walks its bytes without building strings. A mapping is a *candidate* when its
/// device:inode equals a target file's on disk, or its pathname equals a target's path or ends in
/// `/<target basename>` (a replaced binary shows as `path (deleted)`; a chroot or another mount namespace shows
/// another prefix). Only candidates are examined further: their build-id is read through
/// `/proc/PID/map_files/<start>-<end>` (which reaches the mapped inode even when it is deleted or invisible in
/// our namespace), cached per device:inode for one scan. A candidate matches a target when the build-ids are
/// equal (targets with an expected build-id), or by path or device:inode (targets without one). So a process
/// still running an old, deleted copy matches the old build-id and not the new one on disk.
///
/// Suture's marker mappings `/memfd:suture:<uuid> (deleted)` (``PatchRegionMarker``, docs/markers.md) become
/// ``UserPatchMarker``s.
///
/// Kernel threads and zombies (empty maps) and processes that exit during the scan are skipped silently.
/// Permission problems (another user's `maps` when not root, `map_files` without `CAP_SYS_ADMIN` or
/// `CAP_CHECKPOINT_RESTORE`) become ``UnreadableFact``s, never errors.
///
/// A process can exit and its pid be reused between reading its `maps` and its `stat`; the pair (pid, start
/// time) in ``ProcessLiveState`` identifies the process that was seen.
public struct ProcessScanner: Sendable {
    /// The root under which `/proc` and the target paths are read (`/` in production).
    public let root: String

    /// Creates a scanner reading `root`/proc.
    public init(root: String = "/") {
        self.root = root
    }

    /// What one scan found.
    public struct Result: Sendable, Hashable {
        /// Processes that map a matching target or carry a marker, sorted by pid.
        public var processes: [ProcessLiveState]
        /// Facts that could not be read, in pid order.
        public var unreadable: [UnreadableFact]
        /// How many `/proc/PID` directories were examined.
        public var processesExamined: Int
    }

    /// Scans every process (or only `pids`, when given) for `targets` and markers.
    ///
    /// Never throws: an unreadable `/proc` is reported as an ``UnreadableFact``.
    public func scan(targets: [TargetFile], pids: [Int32]? = nil) -> Result {
        let state = ScanState(root: root, targets: targets)
        let procPath = LiveFS.join(root, "/proc")
        var pidList: [Int32]
        if let pids {
            pidList = pids
        } else {
            guard let names = LiveFS.list(procPath) else {
                return Result(processes: [], unreadable: [UnreadableFact(
                    path: procPath, reason: LiveFS.describe(errno: errno),
                    effect: "no process could be inspected: user patches are not planned")], processesExamined: 0)
            }
            pidList = names.compactMap { name in
                guard let first = name.utf8.first, first >= 0x30, first <= 0x39 else { return nil }
                return Int32(name)
            }
        }
        pidList.sort()
        var processes: [ProcessLiveState] = []
        for pid in pidList {
            if let process = state.scanProcess(pid: pid) { processes.append(process) }
        }
        return Result(processes: processes, unreadable: state.unreadable, processesExamined: pidList.count)
    }
}

/// Per-scan state: resolved targets, the reusable read buffer and the build-id cache.
private final class ScanState {
    struct DeviceInode: Hashable {
        var major: UInt32
        var minor: UInt32
        var inode: UInt64
    }

    struct ResolvedTarget {
        var target: TargetFile
        var pathBytes: [UInt8]
        var basenameSuffix: [UInt8]   // "/name"
        var onDisk: DeviceInode?
    }

    /// What is known about one mapped file, cached per device:inode.
    struct ELFInfo {
        var buildID: String?
        var loads: [ELFProgramHeader]
        var linkBase: UInt64?
    }

    /// The mappings of one candidate file in one process.
    struct Candidate {
        var key: DeviceInode
        var pathname: String
        var deleted: Bool
        var lowestStart: UInt64
        var lowestEnd: UInt64
        var lowestOffset: UInt64
        var byInode: [Int]    // target indices matched by device:inode
        var byPath: [Int]     // target indices matched by exact path
        var byBasename: [Int] // target indices matched by basename only
    }

    let root: String
    let procRoot: String
    let pageSize: UInt64
    var targets: [ResolvedTarget] = []
    var targetsByInode: [DeviceInode: [Int]] = [:]
    var elfCache: [DeviceInode: ELFInfo?] = [:]   // .some(nil) = not an ELF file
    /// Files (by device:inode) already seen in this scan under a name that matches no target: libc, ld.so
    /// and friends appear in nearly every process, and are rejected with one hash lookup after the first.
    /// (A hard link of one inode mapped under two names, only one of them a target's, is decided by the
    /// first name seen; target files found by device:inode are never in this set.)
    var rejected: Set<DeviceInode> = []
    var unreadable: [UnreadableFact] = []
    var buffer: UnsafeMutableRawBufferPointer

    deinit { buffer.deallocate() }

    init(root: String, targets: [TargetFile]) {
        self.root = root
        self.procRoot = LiveFS.join(root, "/proc")
        self.pageSize = UInt64(max(4096, sysconf(Int32(_SC_PAGESIZE))))
        self.buffer = .allocate(byteCount: 256 * 1024, alignment: 16)
        for target in targets {
            var st = stat()
            var onDisk: DeviceInode? = nil
            if stat(LiveFS.join(root, target.path), &st) == 0 {
                let (major, minor) = LiveFS.split(device: UInt64(st.st_dev))
                onDisk = DeviceInode(major: major, minor: minor, inode: UInt64(st.st_ino))
            }
            let name = target.path.split(separator: "/").last.map(String.init) ?? target.path
            let resolved = ResolvedTarget(target: target, pathBytes: Array(target.path.utf8),
                                          basenameSuffix: Array(("/" + name).utf8), onDisk: onDisk)
            if let onDisk { targetsByInode[onDisk, default: []].append(self.targets.count) }
            self.targets.append(resolved)
        }
    }

    /// Reads a whole file into `buffer` (growing it); returns the byte count or an errno.
    func slurp(_ path: String) -> Result<Int, Errno> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return .failure(Errno(errno)) }
        defer { close(fd) }
        var used = 0
        while true {
            if used == buffer.count {
                let bigger = UnsafeMutableRawBufferPointer.allocate(byteCount: buffer.count * 2, alignment: 16)
                bigger.copyMemory(from: UnsafeRawBufferPointer(buffer))
                buffer.deallocate()
                buffer = bigger
            }
            let n = read(fd, buffer.baseAddress! + used, buffer.count - used)
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(Errno(errno))
            }
            if n == 0 { return .success(used) }
            used += n
        }
    }

    struct Errno: Error {
        var code: Int32
        init(_ code: Int32) { self.code = code }
        var vanished: Bool { code == ENOENT || code == ESRCH || code == ENOTDIR }
    }

    func scanProcess(pid: Int32) -> ProcessLiveState? {
        let base = procRoot + "/" + String(pid)
        let count: Int
        switch slurp(base + "/maps") {
        case let .success(n): count = n
        case let .failure(error):
            if !error.vanished {
                unreadable.append(UnreadableFact(path: base + "/maps", reason: LiveFS.describe(errno: error.code),
                                                 effect: "pid \(pid) not inspected: user patches it may need are not planned"))
            }
            return nil
        }
        if count == 0 { return nil }   // kernel thread or zombie

        var candidates: [Candidate] = []
        var markers: [String: UInt64] = [:]
        var lastRejected: DeviceInode? = nil
        var rejected: Set<DeviceInode> = []
        swap(&rejected, &self.rejected)   // mutate in place, no copy-on-write
        let targets = self.targets
        let targetsByInode = self.targetsByInode
        ProcMapsParser.forEachLine(UnsafeRawBufferPointer(rebasing: buffer[0..<count])) { line in
            if line.inode == 0 && line.pathname.isEmpty { return }
            if line.pathnameHasPrefix(PatchRegionMarker.mapsPrefixStatic) {
                let id = UnsafeRawBufferPointer(rebasing: line.pathname[PatchRegionMarker.mapsPrefixStatic.utf8CodeUnitCount...])
                let uuid = String(decoding: id, as: UTF8.self)
                if PatchRegionMarker.isValidID(uuid) {
                    markers[uuid] = min(markers[uuid] ?? UInt64.max, line.start)
                }
                return
            }
            if line.inode == 0 { return }
            let key = DeviceInode(major: line.deviceMajor, minor: line.deviceMinor, inode: line.inode)
            if key == lastRejected || rejected.contains(key) { return }
            if let index = candidates.firstIndex(where: { $0.key == key }) {
                if line.start < candidates[index].lowestStart {
                    candidates[index].lowestStart = line.start
                    candidates[index].lowestEnd = line.end
                    candidates[index].lowestOffset = line.offset
                }
                return
            }
            let byInode = targetsByInode[key] ?? []
            var byPath: [Int] = []
            var byBasename: [Int] = []
            for (index, target) in targets.enumerated() {
                let matched = target.pathBytes.withUnsafeBytes { line.pathnameEquals($0) }
                if matched { byPath.append(index); continue }
                if target.basenameSuffix.withUnsafeBytes({ line.pathnameHasSuffix($0) }) { byBasename.append(index) }
            }
            if byInode.isEmpty && byPath.isEmpty && byBasename.isEmpty {
                lastRejected = key
                rejected.insert(key)
                return
            }
            candidates.append(Candidate(key: key, pathname: line.pathnameString, deleted: line.deleted,
                                        lowestStart: line.start, lowestEnd: line.end, lowestOffset: line.offset,
                                        byInode: byInode, byPath: byPath, byBasename: byBasename))
        }
        self.rejected = rejected
        if candidates.isEmpty && markers.isEmpty { return nil }

        var objects: [MappedObject] = []
        for candidate in candidates {
            if let object = match(candidate, pid: pid, base: base) { objects.append(object) }
        }
        if objects.isEmpty && markers.isEmpty { return nil }

        guard case let .content(statText) = LiveFS.read(base + "/stat"), let stat = ProcStat.parse(statText),
              !stat.isZombie, !stat.isKernelThread else { return nil }
        objects.sort { ($0.path, $0.loadBias) < ($1.path, $1.loadBias) }
        let patchMarkers = markers.map { UserPatchMarker(uuid: $0.key, address: $0.value) }
            .sorted { ($0.address, $0.uuid) < ($1.address, $1.uuid) }
        return ProcessLiveState(pid: pid, comm: stat.comm, startTime: stat.startTime, objects: objects,
                                patches: patchMarkers)
    }

    /// Reads (or recalls) the ELF facts of a candidate and decides whether it matches a target.
    func match(_ candidate: Candidate, pid: Int32, base: String) -> MappedObject? {
        let info: ELFInfo?
        if let cached = elfCache[candidate.key] {
            info = cached
        } else {
            let mapFile = base + "/map_files/" + String(candidate.lowestStart, radix: 16) + "-"
                + String(candidate.lowestEnd, radix: 16)
            switch Self.readELF(path: mapFile) {
            case let .success(value):
                info = value
                elfCache[candidate.key] = .some(value)
            case let .failure(error):
                // The on-disk file is the mapped one when device:inode agree: read it there instead.
                if let index = candidate.byInode.first,
                   case let .success(value) = Self.readELF(path: LiveFS.join(root, targets[index].target.path)) {
                    info = value
                    elfCache[candidate.key] = .some(value)
                } else if error.vanished {
                    return nil
                } else {
                    let trusted = candidate.byInode.contains { targets[$0].target.buildID == nil }
                        || candidate.byPath.contains { targets[$0].target.buildID == nil }
                    unreadable.append(UnreadableFact(
                        path: mapFile, reason: LiveFS.describe(errno: error.code),
                        effect: "build-id of \(candidate.pathname) in pid \(pid) unknown: "
                            + (trusted ? "matched by path and inode only" : "treated as not matching")))
                    guard trusted else { return nil }
                    return MappedObject(path: candidate.pathname, buildID: "",
                                        device: ProcMapsParser.formatDevice(major: candidate.key.major,
                                                                            minor: candidate.key.minor),
                                        inode: candidate.key.inode, loadBias: 0, deleted: candidate.deleted)
                }
            }
        }
        guard let info else { return nil }   // not an ELF file
        let matches: (Int) -> Bool = { index in
            if let expected = self.targets[index].target.buildID { return info.buildID == expected }
            return false
        }
        let matched = candidate.byInode.contains(where: matches) || candidate.byPath.contains(where: matches)
            || candidate.byBasename.contains(where: matches)
            || candidate.byInode.contains { targets[$0].target.buildID == nil }
            || candidate.byPath.contains { targets[$0].target.buildID == nil }
        guard matched else { return nil }
        return MappedObject(path: candidate.pathname, buildID: info.buildID ?? "",
                            device: ProcMapsParser.formatDevice(major: candidate.key.major, minor: candidate.key.minor),
                            inode: candidate.key.inode,
                            loadBias: Self.loadBias(start: candidate.lowestStart, offset: candidate.lowestOffset,
                                                    info: info, pageSize: pageSize),
                            deleted: candidate.deleted)
    }

    /// Load bias = mapping start − page-aligned `p_vaddr` of the `PT_LOAD` segment mapped at that file offset
    /// (the lowest mapping normally maps the first segment, offset 0).
    static func loadBias(start: UInt64, offset: UInt64, info: ELFInfo, pageSize: UInt64) -> UInt64 {
        let mask = ~(pageSize - 1)
        if let segment = info.loads.first(where: { $0.offset & mask == offset }) {
            return start &- (segment.vaddr & mask)
        }
        return start &- ((info.linkBase ?? 0) & mask) &- offset
    }

    /// Opens a file and reads its ELF header, program headers and build-id; `.success(nil)` if not ELF.
    static func readELF(path: String) -> Result<ELFInfo?, Errno> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return .failure(Errno(errno)) }
        do {
            let elf = try ELFFile(fileDescriptor: fd, description: path, closeOnDeinit: true)
            let id = try elf.buildID()
            return .success(ELFInfo(buildID: id, loads: elf.loadSegments, linkBase: elf.linkBase))
        } catch {
            return .success(nil)
        }
    }
}

