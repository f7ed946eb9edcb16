#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim

/// Why a ptrace-level operation failed, before the engine adds process context.
enum PtraceFailure: Error {
    /// The thread (or the whole process) is gone: ESRCH, ECHILD or an exit/kill status.
    case exited(tid: Int32)
    /// The process called execve: `PTRACE_EVENT_EXEC`.
    case exec(tid: Int32)
    /// EPERM on seize: traced by someone else, or not allowed.
    case permission(tid: Int32, errno: Int32)
    /// No stop before the deadline.
    case timeout(tid: Int32)
    /// Any other errno from a ptrace request.
    case failed(request: String, tid: Int32, errno: Int32)
}

/// How a tracee stopped, decoded from a `waitpid` status (ptrace(2) "Stopped states").
enum StopReport: Equatable {
    /// A ptrace-stop: `signal` = WSTOPSIG, `event` = status >> 16 (`PTRACE_EVENT_*`, 0 for signal-delivery).
    case stopped(signal: Int32, event: Int32)
    /// The thread exited or was killed.
    case gone

    /// A signal-delivery-stop for a signal other than our own SIGTRAP: the signal must be passed on.
    var deliverableSignal: Int32? {
        if case let .stopped(sig, event) = self, event == 0, sig != SIGTRAP { return sig }
        return nil
    }
}

/// Thin, typed wrappers over the ptrace requests the engine uses. Every function must run on the
/// ``PtraceThread`` that seized the tracee.
enum Ptrace {
    /// PTRACE_SEIZE with options; never PTRACE_O_EXITKILL (a crashing tracer must not kill its target).
    static func seize(_ tid: Int32, options: Int) throws(PtraceFailure) {
        let r = cls_ptrace(Int32(CLS_PTRACE_SEIZE), tid, nil, UnsafeMutableRawPointer(bitPattern: options))
        if r != 0 {
            let e = errno
            if e == ESRCH { throw .exited(tid: tid) }
            if e == EPERM { throw .permission(tid: tid, errno: e) }
            throw .failed(request: "PTRACE_SEIZE", tid: tid, errno: e)
        }
    }

    /// PTRACE_INTERRUPT: stop a seized thread (reported as `PTRACE_EVENT_STOP`).
    static func interrupt(_ tid: Int32) throws(PtraceFailure) {
        if cls_ptrace(Int32(CLS_PTRACE_INTERRUPT), tid, nil, nil) != 0 {
            let e = errno
            if e == ESRCH { throw .exited(tid: tid) }
            throw .failed(request: "PTRACE_INTERRUPT", tid: tid, errno: e)
        }
    }

    /// PTRACE_DETACH, injecting `signal` if the thread is in a signal-delivery-stop (0 = none).
    /// ESRCH (thread gone meanwhile) is not an error.
    @discardableResult
    static func detach(_ tid: Int32, signal: Int32 = 0) -> Bool {
        cls_ptrace(Int32(CLS_PTRACE_DETACH), tid, nil, UnsafeMutableRawPointer(bitPattern: Int(signal))) == 0
    }

    /// PTRACE_CONT with a signal.
    static func cont(_ tid: Int32, signal: Int32 = 0) throws(PtraceFailure) {
        if cls_ptrace(Int32(CLS_PTRACE_CONT), tid, nil, UnsafeMutableRawPointer(bitPattern: Int(signal))) != 0 {
            let e = errno
            if e == ESRCH { throw .exited(tid: tid) }
            throw .failed(request: "PTRACE_CONT", tid: tid, errno: e)
        }
    }

    /// PTRACE_SYSCALL: resume until the next system-call entry or exit (reported as SIGTRAP|0x80 with
    /// `PTRACE_O_TRACESYSGOOD`). Clears single-stepping like PTRACE_CONT.
    static func resumeToSyscall(_ tid: Int32, signal: Int32 = 0) throws(PtraceFailure) {
        if cls_ptrace(Int32(CLS_PTRACE_SYSCALL), tid, nil, UnsafeMutableRawPointer(bitPattern: Int(signal))) != 0 {
            let e = errno
            if e == ESRCH { throw .exited(tid: tid) }
            throw .failed(request: "PTRACE_SYSCALL", tid: tid, errno: e)
        }
    }

    /// PTRACE_GETSIGMASK: the stopped thread's blocked-signal mask (bit n-1 = signal n).
    static func signalMask(_ tid: Int32) throws(PtraceFailure) -> UInt64 {
        var mask: UInt64 = 0
        if cls_ptrace(Int32(CLS_PTRACE_GETSIGMASK), tid, UnsafeMutableRawPointer(bitPattern: 8), &mask) != 0 {
            let e = errno
            if e == ESRCH { throw .exited(tid: tid) }
            throw .failed(request: "PTRACE_GETSIGMASK", tid: tid, errno: e)
        }
        return mask
    }

    /// PTRACE_SETSIGMASK (SIGKILL and SIGSTOP are never blocked by the kernel).
    static func setSignalMask(_ tid: Int32, _ mask: UInt64) throws(PtraceFailure) {
        var copy = mask
        if cls_ptrace(Int32(CLS_PTRACE_SETSIGMASK), tid, UnsafeMutableRawPointer(bitPattern: 8), &copy) != 0 {
            let e = errno
            if e == ESRCH { throw .exited(tid: tid) }
            throw .failed(request: "PTRACE_SETSIGMASK", tid: tid, errno: e)
        }
    }

    /// PTRACE_GETREGSET NT_X86_XSTATE: the thread's XSAVE area in the standard (uncompacted) format; the
    /// kernel puts the user XCR0 into its software-reserved bytes 464–471.
    static func xstate(_ tid: Int32) throws(PtraceFailure) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 16384)
        let (r, n) = buffer.withUnsafeMutableBytes { raw -> (Int, Int) in
            var v = iovec(iov_base: raw.baseAddress, iov_len: raw.count)
            let r = cls_ptrace(Int32(CLS_PTRACE_GETREGSET), tid, UnsafeMutableRawPointer(bitPattern: Int(CLS_NT_X86_XSTATE)), &v)
            return (r, v.iov_len)
        }
        if r != 0 {
            let e = errno
            if e == ESRCH { throw .exited(tid: tid) }
            throw .failed(request: "PTRACE_GETREGSET NT_X86_XSTATE", tid: tid, errno: e)
        }
        return Array(buffer[0..<n])
    }

    /// PTRACE_GETREGS.
    static func getRegisters(_ tid: Int32) throws(PtraceFailure) -> user_regs_struct {
        var regs = user_regs_struct()
        if cls_ptrace(Int32(CLS_PTRACE_GETREGS), tid, nil, &regs) != 0 {
            let e = errno
            if e == ESRCH { throw .exited(tid: tid) }
            throw .failed(request: "PTRACE_GETREGS", tid: tid, errno: e)
        }
        return regs
    }

    /// PTRACE_SETREGS.
    static func setRegisters(_ tid: Int32, _ regs: user_regs_struct) throws(PtraceFailure) {
        var copy = regs
        if cls_ptrace(Int32(CLS_PTRACE_SETREGS), tid, nil, &copy) != 0 {
            let e = errno
            if e == ESRCH { throw .exited(tid: tid) }
            throw .failed(request: "PTRACE_SETREGS", tid: tid, errno: e)
        }
    }

    /// PTRACE_GETEVENTMSG (the new TID after `PTRACE_EVENT_CLONE`).
    static func eventMessage(_ tid: Int32) -> UInt {
        var msg: UInt = 0
        _ = cls_ptrace(Int32(CLS_PTRACE_GETEVENTMSG), tid, nil, &msg)
        return msg
    }

    /// PTRACE_GET_RSEQ_CONFIGURATION (Linux 5.13+): the thread's registered `struct rseq` address, or nil.
    static func rseqArea(_ tid: Int32) -> UInt64? {
        var conf = cls_rseq_configuration()
        let r = cls_ptrace(Int32(CLS_PTRACE_GET_RSEQ_CONFIGURATION), tid,
                           UnsafeMutableRawPointer(bitPattern: MemoryLayout<cls_rseq_configuration>.size), &conf)
        if r <= 0 || conf.rseq_abi_pointer == 0 { return nil }
        return conf.rseq_abi_pointer
    }

    /// Waits for `tid` to report a stop or its end, polling `waitpid(tid, __WALL|WNOHANG)` with a growing
    /// sleep (2 µs … 500 µs) until `deadline` (monotonic ns). Polling keeps every wait bounded: a blocking
    /// waitpid could hang on a thread in D state.
    static func waitStop(_ tid: Int32, deadline: UInt64) throws(PtraceFailure) -> StopReport {
        var sleepNs: UInt64 = 2_000
        while true {
            var status: Int32 = 0
            let r = waitpid(tid, &status, __WALL | WNOHANG)
            if r == tid {
                if cls_wifexited(status) != 0 || cls_wifsignaled(status) != 0 { return .gone }
                if cls_wifstopped(status) != 0 {
                    let event = cls_wptrace_event(status)
                    if event == Int32(CLS_PTRACE_EVENT_EXEC) { throw .exec(tid: tid) }
                    return .stopped(signal: cls_wstopsig(status), event: event)
                }
                continue
            }
            if r < 0 {
                if errno == EINTR { continue }
                return .gone // ECHILD: not (or no longer) our tracee
            }
            let now = cls_monotonic_ns()
            if now >= deadline { throw .timeout(tid: tid) }
            var ts = timespec(tv_sec: 0, tv_nsec: Int(min(sleepNs, deadline - now)))
            nanosleep(&ts, nil)
            sleepNs = min(sleepNs * 2, 500_000)
        }
    }

    /// Reads `count` bytes at `address` in `pid` with process_vm_readv (works on any readable mapping,
    /// including r-x text; no stop needed). Returns nil on failure or a short read.
    static func readMemory(pid: Int32, address: UInt64, count: Int) -> [UInt8]? {
        if count == 0 { return [] }
        var buffer = [UInt8](repeating: 0, count: count)
        let n = buffer.withUnsafeMutableBytes { raw -> Int in
            var local = iovec(iov_base: raw.baseAddress, iov_len: count)
            var remote = iovec(iov_base: UnsafeMutableRawPointer(bitPattern: UInt(address)), iov_len: count)
            return cls_process_vm_readv(pid, &local, 1, &remote, 1, 0)
        }
        return n == count ? buffer : nil
    }

    /// Writes bytes into writable memory of `pid` with process_vm_writev (fails with EFAULT on r-x text).
    static func writeMemory(pid: Int32, address: UInt64, bytes: [UInt8]) -> Bool {
        if bytes.isEmpty { return true }
        var copy = bytes
        let n = copy.withUnsafeMutableBytes { raw -> Int in
            var local = iovec(iov_base: raw.baseAddress, iov_len: raw.count)
            var remote = iovec(iov_base: UnsafeMutableRawPointer(bitPattern: UInt(address)), iov_len: raw.count)
            return cls_process_vm_writev(pid, &local, 1, &remote, 1, 0)
        }
        return n == bytes.count
    }
}

/// `/proc/PID/mem` opened read-write by the tracer: writes use FOLL_FORCE, so they reach r-x text
/// (copy-on-write of the private file mapping), which process_vm_writev cannot.
final class ProcMem {
    let fd: Int32

    init?(pid: Int32) {
        fd = open("/proc/\(pid)/mem", O_RDWR | O_CLOEXEC)
        if fd < 0 { return nil }
    }

    deinit { close(fd) }

    func write(_ bytes: [UInt8], at address: UInt64) -> Bool {
        bytes.withUnsafeBytes { raw in
            pwrite(fd, raw.baseAddress, raw.count, off_t(Int64(bitPattern: address))) == raw.count
        }
    }

    func read(_ count: Int, at address: UInt64) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: count)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(Int64(bitPattern: address))) }
        return n == count ? buffer : nil
    }
}
