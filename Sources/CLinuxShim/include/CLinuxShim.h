// Tiny C shim for Linux calls that Swift's Glibc module does not import:
// ptrace (variadic, <sys/ptrace.h> not in the umbrella), process_vm_readv/writev (_GNU_SOURCE),
// the wait-status macros, and raw syscalls for kernel module loading.
#ifndef CLINUXSHIM_H
#define CLINUXSHIM_H
#include <sys/types.h>
#include <sys/uio.h>
#include <stdint.h>

enum {
    CLS_PTRACE_PEEKDATA = 2,
    CLS_PTRACE_POKEDATA = 5,
    CLS_PTRACE_CONT = 7,
    CLS_PTRACE_SINGLESTEP = 9,
    CLS_PTRACE_GETREGS = 12,
    CLS_PTRACE_SETREGS = 13,
    CLS_PTRACE_DETACH = 17,
    CLS_PTRACE_SETOPTIONS = 0x4200,
    CLS_PTRACE_GETEVENTMSG = 0x4201,
    CLS_PTRACE_GETSIGINFO = 0x4202,
    CLS_PTRACE_SEIZE = 0x4206,
    CLS_PTRACE_INTERRUPT = 0x4207,
    CLS_PTRACE_LISTEN = 0x4208,
    CLS_PTRACE_O_TRACECLONE = 0x8,
    CLS_PTRACE_O_TRACEEXEC = 0x10,
    CLS_PTRACE_O_TRACEEXIT = 0x40,
    CLS_PTRACE_EVENT_CLONE = 3,
    CLS_PTRACE_EVENT_EXEC = 4,
    CLS_PTRACE_EVENT_EXIT = 6,
    CLS_PTRACE_EVENT_STOP = 128,
    CLS_PTRACE_GET_RSEQ_CONFIGURATION = 0x420f,
    CLS_PTRACE_SYSCALL = 24,
    CLS_PTRACE_GETREGSET = 0x4204,
    CLS_PTRACE_GETSIGMASK = 0x420a,
    CLS_PTRACE_SETSIGMASK = 0x420b,
    CLS_PTRACE_O_TRACESYSGOOD = 0x1,
    CLS_NT_X86_XSTATE = 0x202,
};

/// struct ptrace_rseq_configuration (PTRACE_GET_RSEQ_CONFIGURATION, Linux 5.13+).
struct cls_rseq_configuration {
    uint64_t rseq_abi_pointer;
    uint32_t rseq_abi_size;
    uint32_t signature;
    uint32_t flags;
    uint32_t pad;
};

/// ptrace(2) with a fixed (non-variadic) signature. Returns -1 and sets errno on failure.
long cls_ptrace(int request, pid_t pid, void *addr, void *data);
/// process_vm_readv(2) / process_vm_writev(2).
ssize_t cls_process_vm_readv(pid_t pid, const struct iovec *local, unsigned long liovcnt,
                             const struct iovec *remote, unsigned long riovcnt, unsigned long flags);
ssize_t cls_process_vm_writev(pid_t pid, const struct iovec *local, unsigned long liovcnt,
                              const struct iovec *remote, unsigned long riovcnt, unsigned long flags);

/// Wait-status decoding (the W* macros of <sys/wait.h>).
int cls_wifexited(int status);
int cls_wexitstatus(int status);
int cls_wifsignaled(int status);
int cls_wtermsig(int status);
int cls_wifstopped(int status);
int cls_wstopsig(int status);
/// The ptrace event number of a stop (status >> 16), 0 if none.
int cls_wptrace_event(int status);

/// finit_module(2) and delete_module(2) (no glibc wrappers).
long cls_finit_module(int fd, const char *params, int flags);
long cls_delete_module(const char *name, unsigned int flags);
/// memfd_create(2).
int cls_memfd_create(const char *name, unsigned int flags);
/// gettid(2).
pid_t cls_gettid(void);
/// tgkill(2).
int cls_tgkill(pid_t tgid, pid_t tid, int sig);
/// kcmp(2): 0 if the two processes share the resource `type` (KCMP_VM = 1), -1 with errno on failure.
int cls_kcmp(pid_t pid1, pid_t pid2, int type, unsigned long idx1, unsigned long idx2);
/// sched_setscheduler(2) for the calling thread (tid 0) with a priority; returns 0 or -1 with errno.
int cls_set_thread_scheduler(int policy, int priority);
/// sched_getscheduler(2) / sched_getparam(2) for the calling thread; returns the policy and sets *priority.
int cls_get_thread_scheduler(int *priority);
/// A monotonic clock in nanoseconds (CLOCK_MONOTONIC).
uint64_t cls_monotonic_ns(void);
/// Makes stdout line-buffered (setvbuf _IOLBF), whatever it is connected to.
void cls_line_buffer_stdout(void);

/// Installs handlers for SIGINT, SIGTERM, SIGHUP and SIGQUIT that terminate the process as the default
/// action would (re-raised with SIG_DFL), except while a critical section is open: then the signal is
/// remembered and re-raised when the last critical section closes.
void cls_defer_termination_signals(void);
/// Opens a critical section (nestable, any thread): termination signals wait until it closes. While any
/// section is open the process's oom_score_adj is -1000 (restored after), so the OOM killer does not
/// pick the tracer in the middle of an operation on another process.
void cls_critical_enter(void);
/// Closes a critical section; the last one to close re-raises a termination signal that arrived meanwhile.
void cls_critical_leave(void);

#endif
