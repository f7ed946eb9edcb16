#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim
import SutureCore

/// Injects raw system calls into one stopped thread, tracer-death-safe: the thread's registers point at
/// an existing `syscall; ret` sequence with `rsp` at a ``SignalReturnFrame`` written below its red zone,
/// whose return address is the target's own `__restore_rt`. The tracer runs the call with `PTRACE_SYSCALL`
/// (syscall-entry and syscall-exit stops, never the trap flag) and reads the result at the exit stop. Had
/// the tracer died at any instant, the thread would finish the call, return into `rt_sigreturn` and resume
/// its own context with its own signal mask and FPU state. Signals are blocked (`PTRACE_SETSIGMASK`) while
/// the thread runs injected registers, so they stay pending, with their `siginfo`, until the thread is
/// released. Writes no code and calls no function in the target.
final class Injector {
    let pid: Int32
    let tid: Int32
    /// The thread's registers at the stop, restored exactly at the end (`finish`).
    let saved: user_regs_struct
    /// The thread's blocked-signal mask at the stop.
    let savedMask: UInt64
    let gadgets: SafeInjectionGadgets
    let frame: SignalReturnFrame
    let deadline: UInt64
    unowned let session: EngineSession
    /// Signals that stopped the thread although blocked (synchronous ones), passed on at detach.
    var pendingSignals: [Int32] = []
    /// The thread's seccomp filters (nil: none): each injection is checked against them first.
    var seccomp: SeccompFilterSet?
    /// Whether the thread's registers were changed (and so must be restored through a signal-path stop).
    private(set) var injected = false

    /// The `syscall` instruction the injected calls run from (a seccomp filter sees `gadget + 2`).
    var gadget: UInt64 { gadgets.syscallReturn }

    init(pid: Int32, tid: Int32, saved: user_regs_struct, savedMask: UInt64, gadgets: SafeInjectionGadgets,
         frame: SignalReturnFrame, deadline: UInt64, session: EngineSession) {
        self.pid = pid
        self.tid = tid
        self.saved = saved
        self.savedMask = savedMask
        self.gadgets = gadgets
        self.frame = frame
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
    /// Test hooks (debug builds only, `SUTURE_TEST_HOOKS`): `SUTURE_TEST_SIGTERM_AT_INJECTION=N` makes the tracer send itself SIGTERM right after the
    /// N-th injected system call of the process has set the thread's registers, so a test can prove the
    /// signal waits for the operation's end; `SUTURE_TEST_SIGKILL_AT` (``TracerDeathHook``) kills it there.
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
        r.rip = gadgets.syscallReturn
        r.rsp = frame.frameAddress
        r.rax = call.rawValue
        r.orig_rax = UInt64.max
        r.rdi = a
        r.rsi = b
        r.rdx = c
        r.r10 = d
        r.r8 = e
        r.r9 = f
        do throws(PtraceFailure) {
            // Registers first (from here on, a vanished tracer leaves the thread running the call and then
            // rt_sigreturn with its own mask), then block every signal for the rest of the injection.
            try Ptrace.setRegisters(tid, r)
            if !injected {
                injected = true
                try Ptrace.setSignalMask(tid, UInt64.max)
            }
            TracerDeathHook.at("inject-regs")
            if let n = Injector.sigtermAtInjection {
                Injector.injectionsDone += 1
                if Injector.injectionsDone == n { kill(getpid(), SIGTERM) }
            }
            var entered = false
            for _ in 0..<64 {
                try Ptrace.resumeToSyscall(tid)
                let report = try Ptrace.waitStop(tid, deadline: deadline)
                guard case let .stopped(sig, event) = report else { throw PtraceFailure.exited(tid: tid) }
                if event == 0 && sig == SIGTRAP | 0x80 {
                    let now = try Ptrace.getRegisters(tid)
                    if !entered {
                        guard now.rip == gadget &+ 2, now.orig_rax == call.rawValue else {
                            throw PtraceFailure.failed(request: "PTRACE_SYSCALL (unexpected stop at pc 0x\(hex(now.rip)))", tid: tid, errno: EIO)
                        }
                        entered = true
                        TracerDeathHook.at("inject-entry")
                        continue
                    }
                    TracerDeathHook.at("inject-exit")
                    return Int64(bitPattern: now.rax)
                }
                // A signal-delivery-stop although every signal is blocked: a synchronous signal. SIGXFSZ can
                // only come from a file-size limit hit by the call we injected: never pass it on.
                if event == 0 && sig != SIGXFSZ { pendingSignals.append(sig) }
            }
            throw PtraceFailure.timeout(tid: tid)
        } catch {
            throw session.map(error, phase: "syscall injection")
        }
    }

    /// Returns the thread to its own context and releases it. After an injection the thread sits at a
    /// syscall-exit stop, where restored registers would not restart an interrupted call; so it is
    /// interrupted and resumed first, reaching the signal path (`PTRACE_EVENT_STOP`) before it returns to
    /// user mode, and there gets its mask and then its exact registers (an `-ERESTART…` `rax` included)
    /// back. At every instant in between, a vanished tracer leaves a correct thread: before the register
    /// restore it returns through the frame. Returns false if the registers could not be restored.
    func finish() -> Bool {
        var restored = true
        if injected {
            do throws(PtraceFailure) {
                try Ptrace.interrupt(tid)
                try Ptrace.cont(tid)
                while true {
                    guard case let .stopped(sig, event) = try Ptrace.waitStop(tid, deadline: deadline) else {
                        throw PtraceFailure.exited(tid: tid)
                    }
                    if event != 0 { break }
                    if sig != SIGXFSZ { pendingSignals.append(sig) }
                    try Ptrace.cont(tid)
                }
                TracerDeathHook.at("restore")
                try Ptrace.setSignalMask(tid, savedMask)
                TracerDeathHook.at("restore-mask")
                try Ptrace.setRegisters(tid, saved)
            } catch {
                restored = false
            }
        }
        // The thread is at an event stop, where PTRACE_DETACH's signal argument is ignored: re-raise.
        Ptrace.detach(tid)
        for s in pendingSignals { _ = cls_tgkill(pid, tid, s) }
        return restored
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
