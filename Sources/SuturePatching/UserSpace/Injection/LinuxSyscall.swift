/// The x86-64 system calls the engine injects, by number (arch/x86/entry/syscalls/syscall_64.tbl).
///
/// Only these are ever run in a target (``Injector/syscall(_:_:_:_:_:_:_:)``); a seccomp filter is asked
/// about each before anything is injected (``EngineSession/injectedSyscallShapes``).
enum LinuxSyscall: UInt64, CustomStringConvertible, Sendable {
    /// `close(fd)`.
    case close = 3
    /// `mmap(addr, length, prot, flags, fd, offset)`.
    case mmap = 9
    /// `munmap(addr, length)`.
    case munmap = 11
    /// `rt_sigreturn()`: never injected; run by the target's own `__restore_rt` only if suture dies
    /// mid-injection (``SignalReturnFrame``). Checked against seccomp filters like the injected calls.
    case rtSigreturn = 15
    /// `memfd_create(name, flags)`.
    case memfdCreate = 319

    /// The number as a seccomp filter sees it (`struct seccomp_data.nr`).
    var seccompNumber: Int32 { Int32(rawValue) }

    /// The system call's name, for messages.
    var description: String {
        switch self {
        case .close: return "close"
        case .mmap: return "mmap"
        case .munmap: return "munmap"
        case .rtSigreturn: return "rt_sigreturn"
        case .memfdCreate: return "memfd_create"
        }
    }
}

/// Flag values of the injected system calls (x86-64 Linux uapi: asm-generic/mman-common.h,
/// linux/mman.h, linux/memfd.h), as raw argument words.
enum SyscallFlag {
    /// `PROT_READ`.
    static let protRead: UInt64 = 0x1
    /// `PROT_WRITE`.
    static let protWrite: UInt64 = 0x2
    /// `PROT_EXEC`.
    static let protExec: UInt64 = 0x4
    /// `MAP_SHARED`.
    static let mapShared: UInt64 = 0x01
    /// `MAP_PRIVATE`.
    static let mapPrivate: UInt64 = 0x02
    /// `MAP_ANONYMOUS`.
    static let mapAnonymous: UInt64 = 0x20
    /// `MAP_FIXED_NOREPLACE` (Linux 4.17+): fails with EEXIST instead of replacing a mapping.
    static let mapFixedNoReplace: UInt64 = 0x100000
    /// `MFD_CLOEXEC`.
    static let mfdCloexec: UInt64 = 0x1
    /// `MFD_EXEC` (Linux 6.3+; EINVAL before): keeps `vm.memfd_noexec=1` from sealing the memfd non-executable.
    static let mfdExec: UInt64 = 0x10
    /// The fd argument of an anonymous mapping (-1).
    static let noFile: UInt64 = .max
}
