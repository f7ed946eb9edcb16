#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim
import SutureCore

/// Seccomp filter mode: every system call the engine injects is checked against the thread's filters
/// before anything is injected.
extension EngineSession {
    /// The system calls the engine injects, with the flag arguments it uses (addresses are checked again
    /// with their real values at each injection): memfd_create(MFD_CLOEXEC[|MFD_EXEC]),
    /// mmap(PROT_READ / PROT_READ|PROT_WRITE / PROT_READ|PROT_EXEC, MAP_SHARED|MAP_FIXED_NOREPLACE), close,
    /// munmap.
    private static let sharedFixed = SyscallFlag.mapShared | SyscallFlag.mapFixedNoReplace

    static let injectedSyscallShapes: [(name: String, call: LinuxSyscall, args: [UInt64])] = [
        ("mmap(PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS) for the memfd name", .mmap,
         [0, 4096, SyscallFlag.protRead | SyscallFlag.protWrite, SyscallFlag.mapPrivate | SyscallFlag.mapAnonymous, SyscallFlag.noFile, 0]),
        ("memfd_create(MFD_CLOEXEC)", .memfdCreate, [0, SyscallFlag.mfdCloexec]),
        ("mmap(PROT_READ, MAP_SHARED|MAP_FIXED_NOREPLACE)", .mmap, [0, 4096, SyscallFlag.protRead, sharedFixed, 3, 0]),
        ("mmap(PROT_READ|PROT_WRITE, MAP_SHARED|MAP_FIXED_NOREPLACE)", .mmap,
         [0, 4096, SyscallFlag.protRead | SyscallFlag.protWrite, sharedFixed, 3, 0]),
        ("mmap(PROT_READ|PROT_EXEC, MAP_SHARED|MAP_FIXED_NOREPLACE)", .mmap,
         [0, 4096, SyscallFlag.protRead | SyscallFlag.protExec, sharedFixed, 3, 0]),
        ("close", .close, [3]),
        ("munmap", .munmap, [0, 4096]),
    ]

    /// For a process in seccomp filter mode: reads the filters of stopped thread `tid` and checks that they
    /// allow every system call the engine injects (`injectedSyscallShapes`, run from `gadget`). Returns nil
    /// when the process has no filter.
    /// - Throws: SECCOMP_BLOCKED naming the system call and the filter's action, or when the filters cannot
    ///   be read (nothing has been injected at that point).
    func seccompFilterSet(tid: Int32, gadget: UInt64) throws(UserPatchError) -> SeccompFilterSet? {
        guard seccompFiltered else { return nil }
        if let cached = seccompFilters[tid] { return cached }
        let set: SeccompFilterSet
        do throws(SeccompFilterSet.ReadFailure) {
            set = try SeccompFilterSet.read(tid: tid)
        } catch {
            throw self.error(.seccompBlocked, "the process runs under a seccomp filter that cannot be read (\(error)); nothing was injected",
                             hint: "needs CAP_SYS_ADMIN and a kernel with CONFIG_CHECKPOINT_RESTORE to evaluate the filter")
        }
        if let blocked = EngineSession.firstBlockedInjection(by: set, gadget: gadget) {
            throw self.error(.seccompBlocked,
                             "the seccomp filter of thread \(tid) answers \(blocked.name) with \(SeccompFilterSet.describe(blocked.action)); nothing was injected",
                             hint: "Suture injects only system calls the process's filters allow; restart the service to pick up the fixed binary")
        }
        seccompFilters[tid] = set
        return set
    }

    /// The first of `injectedSyscallShapes` that `set` does not allow when run from the `syscall` at
    /// `gadget`, with the filter's action; nil when every one is allowed. `memfd_create` passes when either
    /// of its two flag sets is allowed (MFD_CLOEXEC|MFD_EXEC is tried first, MFD_CLOEXEC alone is the
    /// fallback).
    static func firstBlockedInjection(by set: SeccompFilterSet, gadget: UInt64) -> (name: String, action: UInt32)? {
        for shape in injectedSyscallShapes {
            let action = set.action(for: SeccompData(nr: shape.call.seccompNumber, instructionPointer: gadget &+ 2, args: shape.args))
            if SeccompFilterSet.allows(action) { continue }
            if shape.call == .memfdCreate {
                let withExec = set.action(for: SeccompData(nr: LinuxSyscall.memfdCreate.seccompNumber, instructionPointer: gadget &+ 2,
                                                         args: [0, SyscallFlag.mfdCloexec | SyscallFlag.mfdExec]))
                if SeccompFilterSet.allows(withExec) { continue }
            }
            return (shape.name, action)
        }
        return nil
    }
}
