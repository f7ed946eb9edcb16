#if canImport(Glibc)
import Glibc
#endif
import CLibDW
import CLinuxShim

/// Unwinds the stacks of threads the engine has already seized and stopped, with elfutils libdwfl and
/// the objects' `.eh_frame` CFI.
///
/// Modules come from `dwfl_linux_proc_report` (the process's `/proc/PID/maps`); thread state comes from
/// `dwfl_linux_proc_attach(…, assume_ptrace_stopped: true)`, which reads registers with `PTRACE_GETREGS`
/// from the calling thread — the engine's ptrace thread, which is the tracer — and neither attaches nor
/// detaches. No separate debuginfo is looked up (no debuginfod, no `/usr/lib/debug` search): CFI in
/// `.eh_frame` is what every x86-64 object carries. Frames in code without CFI (the patch region itself)
/// end the unwind; the engine's conservative stack scan covers what lies beyond.
final class StackUnwinder {
    private let dwfl: OpaquePointer
    private let callbacks: UnsafeMutablePointer<Dwfl_Callbacks>
    /// Maximum frames followed per thread (guards against loops in corrupted stacks).
    static let maxFrames = 256

    /// Reports the modules of `pid`; nil when libdwfl cannot (then only the stack scan is used).
    /// Must be created and used on the ptrace thread, while the threads are seized.
    init?(pid: Int32) {
        // All fallible work happens before the stored properties are set: a failable class initializer
        // that fails after full initialization would still run deinit (and free twice).
        let cb = UnsafeMutablePointer<Dwfl_Callbacks>.allocate(capacity: 1)
        cb.initialize(to: Dwfl_Callbacks(
            find_elf: dwfl_linux_proc_find_elf,
            find_debuginfo: { _, _, _, _, _, _, _, _ in -1 },
            section_address: nil,
            debuginfo_path: nil))
        guard let d = dwfl_begin(cb) else {
            cb.deallocate()
            return nil
        }
        dwfl_report_begin(d)
        let reported = dwfl_linux_proc_report(d, pid)
        dwfl_report_end(d, nil, nil)
        if reported != 0 || dwfl_linux_proc_attach(d, pid, true) != 0 {
            dwfl_end(d)
            cb.deallocate()
            return nil
        }
        callbacks = cb
        dwfl = d
    }

    deinit {
        dwfl_end(dwfl)
        callbacks.deallocate()
    }

    private final class Frames {
        var pcs: [UInt64] = []
        var first = true
    }

    /// The return addresses of thread `tid`'s callers (frame #1 onward), innermost first; the list ends
    /// where unwinding stops. Returns nil when unwinding fails at the first frame.
    func returnAddresses(tid: Int32) -> [UInt64]? {
        let frames = Frames()
        let box = Unmanaged.passUnretained(frames).toOpaque()
        _ = dwfl_getthread_frames(dwfl, tid, { state, arg in
            guard let state, let arg else { return 1 }
            let frames = Unmanaged<Frames>.fromOpaque(arg).takeUnretainedValue()
            var pc: Dwarf_Addr = 0
            var activation = false
            guard dwfl_frame_pc(state, &pc, &activation) else { return 1 }
            if frames.first {
                frames.first = false
            } else {
                frames.pcs.append(UInt64(pc))
            }
            return frames.pcs.count >= StackUnwinder.maxFrames ? 1 : 0
        }, box)
        return frames.first ? nil : frames.pcs
    }
}
