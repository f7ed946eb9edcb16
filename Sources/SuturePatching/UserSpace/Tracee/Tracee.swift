#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim

/// The engine's view of one traced process: its memory, the registers of its seized threads, its
/// threads and its mappings. The engine's decisions (readback, the activeness check, the existing-region
/// check) read the process only through this seam, so they are unit-tested against a fake tracee (a byte
/// array memory and register sets) as well as against live processes. ``LiveTracee`` is the real one.
protocol Tracee {
    /// The process id.
    var pid: Int32 { get }
    /// `count` bytes at `address`, or nil when any of them is unmapped or unreadable (no stop needed).
    func readMemory(at address: UInt64, count: Int) -> [UInt8]?
    /// The general-purpose registers of stopped thread `tid`.
    /// - Throws: `PtraceFailure` (`.exited` when the thread is gone).
    func registers(of tid: Int32) throws(PtraceFailure) -> user_regs_struct
    /// The mappings (`/proc/PID/maps`), nil when the process is gone.
    func mappings() -> [ProcMapping]?
    /// The thread ids (`/proc/PID/task`), empty when the process is gone.
    func threadIDs() -> [Int32]
}

/// The tracee's text as writable during a stopped window: writes reach read-only, executable mappings
/// (copy-on-write of the private file mapping). ``ProcMem`` (`/proc/PID/mem`, FOLL_FORCE) is the real one.
protocol TraceeText {
    /// `count` bytes at `address`, nil when unreadable.
    func read(_ count: Int, at address: UInt64) -> [UInt8]?
    /// Writes `bytes` at `address`; false when any byte could not be written.
    func write(_ bytes: [UInt8], at address: UInt64) -> Bool
}

extension ProcMem: TraceeText {}

/// The live process: process_vm_readv, `PTRACE_GETREGS` (from the ``PtraceThread`` that seized the
/// thread), `/proc/PID/maps` and `/proc/PID/task`.
struct LiveTracee: Tracee {
    /// The process id.
    let pid: Int32

    func readMemory(at address: UInt64, count: Int) -> [UInt8]? {
        Ptrace.readMemory(pid: pid, address: address, count: count)
    }

    func registers(of tid: Int32) throws(PtraceFailure) -> user_regs_struct {
        try Ptrace.getRegisters(tid)
    }

    func mappings() -> [ProcMapping]? { ProcMapping.read(pid: pid) }

    func threadIDs() -> [Int32] { ProcFiles.tids(pid) }
}
