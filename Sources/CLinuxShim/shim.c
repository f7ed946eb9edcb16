#define _GNU_SOURCE
#include "CLinuxShim.h"
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <unistd.h>
#include <sched.h>
#include <time.h>

_Static_assert(CLS_PTRACE_PEEKDATA == PTRACE_PEEKDATA, "PEEKDATA");
_Static_assert(CLS_PTRACE_POKEDATA == PTRACE_POKEDATA, "POKEDATA");
_Static_assert(CLS_PTRACE_CONT == PTRACE_CONT, "CONT");
_Static_assert(CLS_PTRACE_SINGLESTEP == PTRACE_SINGLESTEP, "SINGLESTEP");
_Static_assert(CLS_PTRACE_GETREGS == PTRACE_GETREGS, "GETREGS");
_Static_assert(CLS_PTRACE_SETREGS == PTRACE_SETREGS, "SETREGS");
_Static_assert(CLS_PTRACE_DETACH == PTRACE_DETACH, "DETACH");
_Static_assert(CLS_PTRACE_SETOPTIONS == PTRACE_SETOPTIONS, "SETOPTIONS");
_Static_assert(CLS_PTRACE_GETEVENTMSG == PTRACE_GETEVENTMSG, "GETEVENTMSG");
_Static_assert(CLS_PTRACE_GETSIGINFO == PTRACE_GETSIGINFO, "GETSIGINFO");
_Static_assert(CLS_PTRACE_SEIZE == PTRACE_SEIZE, "SEIZE");
_Static_assert(CLS_PTRACE_INTERRUPT == PTRACE_INTERRUPT, "INTERRUPT");
_Static_assert(CLS_PTRACE_LISTEN == PTRACE_LISTEN, "LISTEN");
_Static_assert(CLS_PTRACE_O_TRACECLONE == PTRACE_O_TRACECLONE, "O_TRACECLONE");
_Static_assert(CLS_PTRACE_O_TRACEEXEC == PTRACE_O_TRACEEXEC, "O_TRACEEXEC");
_Static_assert(CLS_PTRACE_O_TRACEEXIT == PTRACE_O_TRACEEXIT, "O_TRACEEXIT");
_Static_assert(CLS_PTRACE_EVENT_CLONE == PTRACE_EVENT_CLONE, "EVENT_CLONE");
_Static_assert(CLS_PTRACE_EVENT_EXEC == PTRACE_EVENT_EXEC, "EVENT_EXEC");
_Static_assert(CLS_PTRACE_EVENT_EXIT == PTRACE_EVENT_EXIT, "EVENT_EXIT");
_Static_assert(CLS_PTRACE_EVENT_STOP == PTRACE_EVENT_STOP, "EVENT_STOP");
_Static_assert(CLS_PTRACE_GET_RSEQ_CONFIGURATION == 0x420f, "GET_RSEQ_CONFIGURATION");

long cls_ptrace(int request, pid_t pid, void *addr, void *data) {
    return ptrace((enum __ptrace_request)request, pid, addr, data);
}
ssize_t cls_process_vm_readv(pid_t pid, const struct iovec *l, unsigned long lc,
                             const struct iovec *r, unsigned long rc, unsigned long flags) {
    return process_vm_readv(pid, l, lc, r, rc, flags);
}
ssize_t cls_process_vm_writev(pid_t pid, const struct iovec *l, unsigned long lc,
                              const struct iovec *r, unsigned long rc, unsigned long flags) {
    return process_vm_writev(pid, l, lc, r, rc, flags);
}
int cls_wifexited(int s) { return WIFEXITED(s); }
int cls_wexitstatus(int s) { return WEXITSTATUS(s); }
int cls_wifsignaled(int s) { return WIFSIGNALED(s); }
int cls_wtermsig(int s) { return WTERMSIG(s); }
int cls_wifstopped(int s) { return WIFSTOPPED(s); }
int cls_wstopsig(int s) { return WSTOPSIG(s); }
int cls_wptrace_event(int s) { return (s >> 16) & 0xff; }
long cls_finit_module(int fd, const char *params, int flags) { return syscall(SYS_finit_module, fd, params, flags); }
long cls_delete_module(const char *name, unsigned int flags) { return syscall(SYS_delete_module, name, flags); }
int cls_memfd_create(const char *name, unsigned int flags) { return (int)syscall(SYS_memfd_create, name, flags); }
pid_t cls_gettid(void) { return (pid_t)syscall(SYS_gettid); }
int cls_tgkill(pid_t tgid, pid_t tid, int sig) { return (int)syscall(SYS_tgkill, tgid, tid, sig); }
int cls_kcmp(pid_t pid1, pid_t pid2, int type, unsigned long idx1, unsigned long idx2) {
    return (int)syscall(SYS_kcmp, pid1, pid2, type, idx1, idx2);
}
int cls_set_thread_scheduler(int policy, int priority) {
    struct sched_param p = { .sched_priority = priority };
    return sched_setscheduler(0, policy, &p);
}
int cls_get_thread_scheduler(int *priority) {
    struct sched_param p = { 0 };
    int policy = sched_getscheduler(0);
    if (policy >= 0 && sched_getparam(0, &p) == 0 && priority) *priority = p.sched_priority;
    return policy;
}
uint64_t cls_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#include <stdio.h>
void cls_line_buffer_stdout(void) { setvbuf(stdout, NULL, _IOLBF, 0); }

#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>

static atomic_int cls_critical_depth = 0;
static volatile sig_atomic_t cls_pending_termination = 0;
static int cls_saved_oom_adj = 0;
static atomic_int cls_oom_saved = 0;

static void cls_termination_handler(int sig) {
    if (atomic_load(&cls_critical_depth) > 0) {
        cls_pending_termination = sig;
        return;
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

void cls_defer_termination_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = cls_termination_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
}

static int cls_read_oom_adj(void) {
    char buf[32] = {0};
    int fd = open("/proc/self/oom_score_adj", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    return n > 0 ? atoi(buf) : 0;
}

static void cls_write_oom_adj(int v) {
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%d", v);
    int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (fd < 0) return;
    (void)!write(fd, buf, n);
    close(fd);
}

void cls_critical_enter(void) {
    if (atomic_fetch_add(&cls_critical_depth, 1) == 0) {
        cls_saved_oom_adj = cls_read_oom_adj();
        atomic_store(&cls_oom_saved, 1);
        cls_write_oom_adj(-1000);
    }
}

void cls_critical_leave(void) {
    if (atomic_fetch_sub(&cls_critical_depth, 1) == 1) {
        if (atomic_exchange(&cls_oom_saved, 0)) cls_write_oom_adj(cls_saved_oom_adj);
        int sig = cls_pending_termination;
        if (sig) {
            signal(sig, SIG_DFL);
            raise(sig);
        }
    }
}
