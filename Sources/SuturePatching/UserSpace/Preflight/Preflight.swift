#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim
import SutureCore

/// Pre-flight: refuses a process that cannot be patched before anything is seized.
extension EngineSession {
    // MARK: - Pre-flight

    func preflight(startTime: UInt64?) throws(UserPatchError) {
        guard let st = ProcFiles.stat(pid), st.state != "Z", st.state != "X" else {
            throw error(.targetExited, "the process does not exist (or is a zombie)")
        }
        if let startTime, startTime != st.startTime {
            throw error(.targetExited, "the process started at tick \(startTime) is gone; pid \(pid) now belongs to another process")
        }
        if pid == getpid() {
            throw error(.permission, "refusing to patch the running suture process itself")
        }
        guard let status = ProcFiles.status("/proc/\(pid)/status") else {
            throw error(.targetExited, "the process exited before pre-flight")
        }
        if let tracer = status["TracerPid"].flatMap({ Int32($0) }), tracer != 0 {
            throw error(.permission, "already traced by pid \(tracer) (\(ProcFiles.comm(tracer)))",
                        hint: "detach the debugger or tracer (gdb, strace) first")
        }
        if let scope = ProcFiles.text("/proc/sys/kernel/yama/ptrace_scope")?.sutureTrim("\n "), scope == "3" {
            throw error(.permission, "Yama ptrace_scope is 3: no process may be traced",
                        hint: "ptrace_scope 3 cannot be lowered without a reboot")
        }
        if let mode = status["Seccomp"], mode == "1" {
            throw error(.seccompBlocked, "the process runs under seccomp strict mode: only read, write, _exit and sigreturn are allowed",
                        hint: "Suture cannot inject the memfd_create/mmap it needs; restart the service to pick up the fixed binary")
        }
        // Filter mode: the filters of the injecting thread are read and evaluated once it is stopped
        // (seccompFilterSet), so only system calls they allow are injected.
        seccompFiltered = status["Seccomp"] == "2"
    }
}
