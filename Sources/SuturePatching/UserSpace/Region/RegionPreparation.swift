#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim
import SutureCore
import SystemPackage

/// Prepare (one thread stopped): memfd + mmap of the region by injected system calls, contents written
/// from the tracer; cleanup of a region that was never committed.
extension EngineSession {
    // MARK: - Prepare (one thread stopped)

    enum PrepareFailure: Error {
        case addressTaken
        case engine(UserPatchError)
    }

    struct PreparedRegion {
        var base: UInt64
        var size: Int
        /// Tracer-side descriptor of the memfd (`/proc/PID/fd/N` reopened), for header updates.
        var file: Int32
    }

    func prepare(uuid: String, base: UInt64, total: Int,
                 image: [(offset: Int, bytes: [UInt8], size: Int, prot: RegionProtection)],
                 orphan: UserPatchRegion?) throws(PrepareFailure) -> PreparedRegion {
        var taken = false
        let result: PreparedRegion?
        do {
            result = try withInjectionThread(phase: "prepare") { (inj) throws(UserPatchError) -> PreparedRegion? in
                if let orphan {
                    _ = try inj.syscall(.munmap, orphan.address, orphan.end - orphan.address)
                }
                // memfd_create(name, MFD_CLOEXEC | MFD_EXEC); MFD_EXEC (6.3+) keeps vm.memfd_noexec=1 from
                // sealing it non-executable; older kernels reject the flag with EINVAL.
                let name = Array(PatchRegionMarker.memfdName(for: uuid).utf8) + [0]
                let fdRaw = try inj.withScratchBytes(name) { (addr) throws(UserPatchError) -> Int64 in
                    // MFD_CLOEXEC|MFD_EXEC (Linux 6.3+; EINVAL before), else MFD_CLOEXEC alone; a seccomp
                    // filter that allows only the latter gets only the latter.
                    let both = SyscallFlag.mfdCloexec | SyscallFlag.mfdExec
                    var r = inj.allows(.memfdCreate, addr, both) ? try inj.syscall(.memfdCreate, addr, both) : -Int64(EINVAL)
                    if r == -Int64(EINVAL) { r = try inj.syscall(.memfdCreate, addr, SyscallFlag.mfdCloexec) }
                    return r
                }
                guard fdRaw >= 0 else {
                    throw self.injectedFailure("memfd_create", fdRaw,
                                               hint: fdRaw == -Int64(EACCES) ? "vm.memfd_noexec=2 forbids executable memfds" : "")
                }
                let fd = UInt64(fdRaw)
                var mapped: [(UInt64, UInt64)] = []
                func undo() {
                    for (a, l) in mapped { _ = try? inj.syscall(.munmap, a, l) }
                    _ = try? inj.syscall(.close, fd)
                }
                // The tracer opens the memfd through /proc/PID/fd and sizes and fills it itself: the size is
                // checked against the tracer's RLIMIT_FSIZE, not the target's (an injected ftruncate past a
                // service's `LimitFSIZE=` failed with EFBIG and queued SIGXFSZ, which kills by default), and
                // no writable+executable mapping ever exists in the target.
                let file = open("/proc/\(self.pid)/fd/\(fd)", O_RDWR | O_CLOEXEC)
                if file < 0 {
                    let e = errno
                    undo()
                    throw self.error(.permission, "cannot open the patch memfd via /proc/\(self.pid)/fd/\(fd): \(Errno(rawValue: e).description)")
                }
                if ftruncate(file, off_t(total)) != 0 {
                    let e = errno
                    close(file)
                    undo()
                    throw self.error(.permission, "sizing the patch memfd to \(total) bytes failed: \(Errno(rawValue: e).description)",
                                     hint: "out of memory, or suture's own RLIMIT_FSIZE is too small")
                }
                // Contents (header with state PREPARED first of all) before any mapping: should suture die
                // between two of the mmaps below, the marker lines it leaves carry a readable PREPARED header,
                // which the next activation removes as an orphan.
                for seg in image where !seg.bytes.isEmpty {
                    let ok = seg.bytes.withUnsafeBytes { pwrite(file, $0.baseAddress, $0.count, off_t(seg.offset)) == $0.count }
                    if !ok {
                        close(file)
                        undo()
                        throw self.error(.permission, "writing the patch image into the memfd failed")
                    }
                }
                for seg in image {
                    let addr = base + UInt64(seg.offset)
                    // mmap(addr, len, prot, MAP_SHARED | MAP_FIXED_NOREPLACE, fd, offset)
                    let r = try inj.syscall(.mmap, addr, UInt64(seg.size), UInt64(seg.prot.mmapBits),
                                            SyscallFlag.mapShared | SyscallFlag.mapFixedNoReplace, fd,
                                            UInt64(seg.offset))
                    if r == -Int64(EEXIST) || (r >= 0 && UInt64(r) != addr) {
                        if r >= 0 { _ = try? inj.syscall(.munmap, UInt64(r), UInt64(seg.size)) }
                        close(file)
                        undo()
                        taken = true
                        return nil
                    }
                    if r < 0 { close(file); undo(); throw self.injectedFailure("mmap", r) }
                    mapped.append((addr, UInt64(seg.size)))
                }
                let cr = try inj.syscall(.close, fd)
                if cr < 0 { close(file); undo(); throw self.injectedFailure("close", cr) }
                return PreparedRegion(base: base, size: total, file: file)
            }
        } catch {
            throw .engine(error)
        }
        if taken { throw .addressTaken }
        guard let result else { throw .engine(self.error(.inconsistent, "prepare produced no region")) }
        return result
    }

    /// Removes a prepared (inert) region after a failed commit; best effort.
    func cleanupPreparedRegion(_ region: PreparedRegion) {
        close(region.file)
        _ = try? withInjectionThread(phase: "cleanup") { (inj) throws(UserPatchError) in
            _ = try inj.syscall(.munmap, region.base, UInt64(region.size))
        }
    }
}
