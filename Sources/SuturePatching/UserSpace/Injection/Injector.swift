#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim
import SutureCore

/// Injects raw system calls into one stopped thread by pointing `rip` at an existing `syscall`
/// instruction and single-stepping it. Writes no code and calls no function in the target.
final class Injector {
    let pid: Int32
    let tid: Int32
    let saved: user_regs_struct
    let gadget: UInt64
    let deadline: UInt64
    unowned let session: EngineSession
    /// Signals that arrived while injecting (suppressed, passed on at detach).
    var pendingSignals: [Int32] = []
    /// The thread's seccomp filters (nil: none): each injection is checked against them first.
    var seccomp: SeccompFilterSet?

    init(pid: Int32, tid: Int32, saved: user_regs_struct, gadget: UInt64, deadline: UInt64, session: EngineSession) {
        self.pid = pid
        self.tid = tid
        self.saved = saved
        self.gadget = gadget
        self.deadline = deadline
        self.session = session
    }

    /// Whether the thread's seccomp filters (if any) allow system call `nr` with these arguments from the
    /// gadget.
    func allows(_ call: LinuxSyscall, _ args: UInt64...) -> Bool {
        guard let seccomp else { return true }
        return SeccompFilterSet.allows(seccomp.action(for: SeccompData(nr: call.seccompNumber,
                                                                       instructionPointer: gadget &+ 2, args: args)))
    }

    /// Runs syscall `nr` with up to six arguments; returns the raw result (negative errno on failure).
    /// `orig_rax = -1` keeps the kernel's syscall-restart logic from rewinding `rip` when the thread was
    /// stopped inside an interrupted syscall.
    /// Test hook (debug builds only, `SUTURE_TEST_HOOKS`): `SUTURE_TEST_SIGTERM_AT_INJECTION=N` makes the tracer send itself SIGTERM right after the
    /// N-th injected system call of the process has set the thread's registers (the moment a dying tracer
    /// would leave the target to crash), so a test can prove the signal waits for the operation's end.
    nonisolated(unsafe) static var injectionsDone = 0
    #if SUTURE_TEST_HOOKS
    static let sigtermAtInjection = getenv("SUTURE_TEST_SIGTERM_AT_INJECTION").flatMap { Int(String(cString: $0)) }
    #else
    static let sigtermAtInjection: Int? = nil   // release builds carry no test hooks
    #endif

    func syscall(_ call: LinuxSyscall, _ a: UInt64 = 0, _ b: UInt64 = 0, _ c: UInt64 = 0, _ d: UInt64 = 0, _ e: UInt64 = 0,
                 _ f: UInt64 = 0) throws(UserPatchError) -> Int64 {
        if let seccomp {
            let action = seccomp.action(for: SeccompData(nr: call.seccompNumber, instructionPointer: gadget &+ 2,
                                                         args: [a, b, c, d, e, f]))
            if !SeccompFilterSet.allows(action) {
                // Checked before anything is injected (seccompFilterSet); reaching this means an address
                // argument made the difference.
                throw session.error(.seccompBlocked,
                                    "the seccomp filter of thread \(tid) answers system call \(call) (\(call.rawValue)) with \(SeccompFilterSet.describe(action)); it was not injected")
            }
        }
        var r = saved
        r.rip = gadget
        r.rax = call.rawValue
        r.orig_rax = UInt64.max
        r.rdi = a
        r.rsi = b
        r.rdx = c
        r.r10 = d
        r.r8 = e
        r.r9 = f
        do throws(PtraceFailure) {
            try Ptrace.setRegisters(tid, r)
            if let n = Injector.sigtermAtInjection {
                Injector.injectionsDone += 1
                if Injector.injectionsDone == n { kill(getpid(), SIGTERM) }
            }
            for _ in 0..<64 {
                try Ptrace.singleStep(tid)
                let report = try Ptrace.waitStop(tid, deadline: deadline)
                guard case let .stopped(sig, event) = report else { throw PtraceFailure.exited(tid: tid) }
                let now = try Ptrace.getRegisters(tid)
                // SIGXFSZ can only come from a file-size limit hit by the call we injected: never pass it on.
                if event == 0 && sig != SIGTRAP && sig != SIGXFSZ { pendingSignals.append(sig) }
                if now.rip == gadget &+ 2 { return Int64(bitPattern: now.rax) }
                if now.rip != gadget {
                    throw PtraceFailure.failed(request: "PTRACE_SINGLESTEP (unexpected pc 0x\(hex(now.rip)))", tid: tid, errno: EIO)
                }
                try Ptrace.setRegisters(tid, r)
            }
            throw PtraceFailure.timeout(tid: tid)
        } catch {
            throw session.map(error, phase: "syscall injection")
        }
    }

    /// Puts `bytes` into a private anonymous page mapped for the purpose (injected `mmap`), runs `body` with
    /// their address, and unmaps the page. Not the thread's stack: a stack allocated on the heap (coroutines,
    /// green threads) could hold live data of running threads below `rsp`, which a write-then-restore would
    /// race with.
    func withScratchBytes<T>(_ bytes: [UInt8], _ body: (UInt64) throws(UserPatchError) -> T) throws(UserPatchError) -> T {
        let page: UInt64 = 4096
        let r = try syscall(.mmap, 0, page, SyscallFlag.protRead | SyscallFlag.protWrite,
                            SyscallFlag.mapPrivate | SyscallFlag.mapAnonymous, SyscallFlag.noFile, 0)
        guard r >= 0 else { throw session.injectedFailure("mmap (scratch page)", r) }
        let addr = UInt64(r)
        defer { _ = try? syscall(.munmap, addr, page) }
        guard bytes.count <= Int(page), Ptrace.writeMemory(pid: pid, address: addr, bytes: bytes) else {
            throw session.error(.permission, "cannot write to the scratch page at 0x\(hex(addr)) of thread \(tid)")
        }
        return try body(addr)
    }
}
