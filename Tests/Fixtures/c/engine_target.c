/* Target program for the ptrace engine tests (Tests/SuturePatchingTests/EngineTests.swift).
 *
 * Usage: engine_target MODE [N]
 *   busy N   N worker threads call compute(7) in a loop (N = 0: the main thread does, polling stdin)
 *   hot N    N worker threads call compute(7) back to back (no pause between calls, counts kept per
 *            thread and published every 1000 calls), so a stop almost always finds threads inside it
 *   idle N   N threads sleep in pause(); the main thread reads stdin
 *   loop     the main thread runs event_loop() forever (it never returns), serving stdin from inside
 *   churn    threads are created and exit every ~50 us; 4 persistent threads bump counters
 *   seccomp  install a seccomp filter that kills the process on mmap(PROT_EXEC), then like "idle 0"
 *   seccomp-allow  two filters: one answers uname() with EPERM and kills on a foreign arch, one logs
 *            nothing special (RET_ALLOW); then like "busy 1" ("u" prints the uname() result)
 *   seccomp-memfd  a filter answering memfd_create() with EPERM, then like "idle 0"
 *   parent   fork a "busy 1" child and report any stop/continue seen with WUNTRACED|WCONTINUED
 *   crowded  reserve (PROT_NONE) every free address range within 2 GiB + 64 MiB of the program's own
 *            mappings, then like "busy 1": no patch region can be placed within rel32 reach
 *   fsize    set RLIMIT_FSIZE to 4096 bytes (systemd LimitFSIZE=), then like "busy 1"
 * Every mode counts SIGRTMIN deliveries ("g" prints "signals N").
 * stdin commands (one per line): "s" prints and resets result counts, "e TOKEN" echoes TOKEN once,
 * "q" exits 0, "x" exits 3, "X" execs /bin/sleep, "v MS" makes a new thread vfork() a child that
 * writes "vchild PID" and sleeps MS milliseconds before _exit (the thread stays suspended meanwhile).
 * compute() returns 2*x + base_value; the test patch returns 3*x, so 14 = old, 21 = new. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

long base_value = 0;

/* static: the patch must find it by its offset, not by a dynamic symbol. */
static __attribute__((noinline)) long compute(long x) {
    long r = x * 2;
    r += base_value;
    return r;
}

static atomic_long n_old, n_new, n_wrong, n_signals;

static void on_rt_signal(int sig) {
    (void)sig;
    atomic_fetch_add(&n_signals, 1);
}

static void *vforker(void *arg) {
    long ms = (long)arg;
    pid_t c = vfork();
    if (c == 0) {
        char buf[64];
        int n = snprintf(buf, sizeof buf, "vchild %d\n", (int)getpid());
        write(1, buf, n);
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        syscall(SYS_nanosleep, &ts, NULL);
        _exit(0);
    }
    if (c > 0) waitpid(c, NULL, 0);
    return NULL;
}

/* Reserves every gap of this process's address space within `reach` of its own program mappings. */
static void crowd(unsigned long reach) {
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) exit(4);
    exe[n] = 0;
    unsigned long lo = ~0UL, hi = 0;
    char line[4096];
    FILE *f = fopen("/proc/self/maps", "r");
    while (fgets(line, sizeof line, f)) {
        unsigned long a, b;
        char path[4096] = "";
        if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %4095s", &a, &b, path) >= 2 && !strcmp(path, exe)) {
            if (a < lo) lo = a;
            if (b > hi) hi = b;
        }
    }
    fclose(f);
    unsigned long from = hi > reach ? hi - reach : 0x10000, to = lo + reach;
    if (from < 0x10000) from = 0x10000;
    for (int round = 0; round < 4; round++) {
        unsigned long prev = from;
        f = fopen("/proc/self/maps", "r");
        unsigned long gaps[512][2];
        int ng = 0;
        while (fgets(line, sizeof line, f) && ng < 512) {
            unsigned long a, b;
            if (sscanf(line, "%lx-%lx", &a, &b) != 2) continue;
            if (a > prev && prev < to) { gaps[ng][0] = prev; gaps[ng][1] = a < to ? a : to; ng++; }
            if (b > prev) prev = b;
        }
        fclose(f);
        if (prev < to) { gaps[ng][0] = prev; gaps[ng][1] = to; ng++; }
        if (ng == 0) return;
        for (int i = 0; i < ng; i++)
            mmap((void *)gaps[i][0], gaps[i][1] - gaps[i][0], PROT_NONE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    }
}
volatile long counters[64];
atomic_long churn_counter;

static void account(long v) {
    if (v == 14) atomic_fetch_add(&n_old, 1);
    else if (v == 21) atomic_fetch_add(&n_new, 1);
    else {
        atomic_fetch_add(&n_wrong, 1);
        fprintf(stderr, "WRONG %ld\n", v);
    }
}

static int handle_line(char *line) {
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
    if (!strcmp(line, "s")) {
        printf("old=%ld new=%ld wrong=%ld\n", atomic_exchange(&n_old, 0), atomic_exchange(&n_new, 0),
               atomic_load(&n_wrong));
    } else if (!strncmp(line, "e ", 2)) {
        printf("echo %s\n", line + 2);
    } else if (!strcmp(line, "u")) {
        struct utsname u;
        int r = uname(&u);
        printf("uname %d %d\n", r, r ? errno : 0);
    } else if (!strcmp(line, "g")) {
        printf("signals %ld\n", atomic_load(&n_signals));
    } else if (!strcmp(line, "X")) {
        execl("/bin/sleep", "sleep", "1000", (char *)NULL);
        printf("exec failed %d\n", errno);
    } else if (!strncmp(line, "v ", 2)) {
        pthread_t t;
        pthread_create(&t, NULL, vforker, (void *)atol(line + 2));
    } else if (!strcmp(line, "q")) {
        exit(0);
    } else if (!strcmp(line, "x")) {
        _exit(3);
    }
    return 0;
}

static void serve_stdin_forever(void) {
    char line[256];
    while (fgets(line, sizeof line, stdin)) handle_line(line);
    exit(0);
}

static void *worker(void *arg) {
    long idx = (long)arg;
    for (;;) {
        account(compute(7));
        counters[idx]++;
        /* Most of the time outside compute(), so a stop usually finds no thread inside it. */
        for (volatile int i = 0; i < 2000; i++) {
        }
    }
    return NULL;
}

static void *hot_worker(void *arg) {
    (void)arg;
    for (;;) {
        long o = 0, nw = 0;
        for (int i = 0; i < 1000; i++) {
            long v = compute(7);
            if (v == 14) o++;
            else if (v == 21) nw++;
            else account(v);
        }
        atomic_fetch_add(&n_old, o);
        atomic_fetch_add(&n_new, nw);
    }
    return NULL;
}

static void *sleeper(void *arg) {
    (void)arg;
    for (;;) pause();
    return NULL;
}

/* Never returns: the test tries to replace it and must get BUSY. */
__attribute__((noinline)) void event_loop(void) {
    char line[256];
    struct pollfd p = {.fd = 0, .events = POLLIN};
    for (;;) {
        if (poll(&p, 1, 1) > 0) {
            if (!fgets(line, sizeof line, stdin)) exit(0);
            handle_line(line);
        }
        account(compute(7));
    }
}

static void *churn_child(void *arg) {
    (void)arg;
    for (int i = 0; i < 10; i++) atomic_fetch_add(&churn_counter, 1);
    return NULL;
}

static void *churn_spawner(void *arg) {
    (void)arg;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&a, 64 * 1024);
    for (;;) {
        pthread_t t;
        if (pthread_create(&t, &a, churn_child, NULL) != 0) usleep(1000);
        usleep(50);
    }
    return NULL;
}

static void start_threads(int n, void *(*fn)(void *)) {
    for (long i = 0; i < n; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, fn, (void *)i) != 0) {
            perror("pthread_create");
            exit(1);
        }
    }
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGRTMIN, on_rt_signal);
    const char *mode = argc > 1 ? argv[1] : "busy";
    int n = argc > 2 ? atoi(argv[2]) : 1;
    if (!strcmp(mode, "busy")) {
        if (n > 0) {
            start_threads(n, worker);
            printf("ready %d\n", getpid());
            serve_stdin_forever();
        }
        printf("ready %d\n", getpid());
        char line[256];
        struct pollfd p = {.fd = 0, .events = POLLIN};
        for (;;) {
            for (int i = 0; i < 200; i++) {
                account(compute(7));
                for (volatile int j = 0; j < 2000; j++) {
                }
            }
            if (poll(&p, 1, 0) > 0) {
                if (!fgets(line, sizeof line, stdin)) exit(0);
                handle_line(line);
            }
        }
    } else if (!strcmp(mode, "hot")) {
        start_threads(n, hot_worker);
        printf("ready %d\n", getpid());
        serve_stdin_forever();
    } else if (!strcmp(mode, "idle")) {
        start_threads(n, sleeper);
        printf("ready %d\n", getpid());
        serve_stdin_forever();
    } else if (!strcmp(mode, "loop")) {
        printf("ready %d\n", getpid());
        event_loop();
    } else if (!strcmp(mode, "churn")) {
        start_threads(4, worker);
        pthread_t t;
        pthread_create(&t, NULL, churn_spawner, NULL);
        pthread_create(&t, NULL, churn_spawner, NULL);
        printf("counters %p %p\n", (void *)counters, (void *)&churn_counter);
        printf("ready %d\n", getpid());
        serve_stdin_forever();
    } else if (!strcmp(mode, "seccomp")) {
        struct sock_filter f[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_mmap, 0, 3),
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2])),
            BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, PROT_EXEC, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
            perror("seccomp");
            return 1;
        }
        printf("ready %d\n", getpid());
        serve_stdin_forever();
    } else if (!strcmp(mode, "seccomp-allow") || !strcmp(mode, "seccomp-memfd")) {
        int deny = !strcmp(mode, "seccomp-allow") ? __NR_uname : __NR_memfd_create;
        struct sock_filter f[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0xC000003E /* AUDIT_ARCH_X86_64 */, 1, 0),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, deny, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_filter g[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
        struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
        struct sock_fprog prog2 = {.len = 1, .filter = g};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) ||
            prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog2)) {
            perror("seccomp");
            return 1;
        }
        if (deny == __NR_uname) start_threads(1, worker);
        printf("ready %d\n", getpid());
        serve_stdin_forever();
    } else if (!strcmp(mode, "fsize")) {
        struct rlimit rl = {4096, 4096};
        if (setrlimit(RLIMIT_FSIZE, &rl)) {
            perror("setrlimit");
            return 1;
        }
        start_threads(1, worker);
        printf("ready %d\n", getpid());
        serve_stdin_forever();
    } else if (!strcmp(mode, "crowded")) {
        crowd((1UL << 31) + (64UL << 20));
        start_threads(1, worker);
        printf("ready %d\n", getpid());
        serve_stdin_forever();
    } else if (!strcmp(mode, "parent")) {
        pid_t child = fork();
        if (child == 0) {
            start_threads(1, worker);
            serve_stdin_forever();
        }
        printf("child %d\n", child);
        printf("ready %d\n", getpid());
        for (;;) {
            int st;
            pid_t r = waitpid(child, &st, WUNTRACED | WCONTINUED);
            if (r < 0) {
                if (errno == EINTR) continue;
                break;
            }
            if (WIFSTOPPED(st)) printf("PARENT saw stop %d\n", WSTOPSIG(st));
            else if (WIFCONTINUED(st)) printf("PARENT saw continue\n");
            else {
                printf("PARENT saw exit\n");
                break;
            }
        }
        return 0;
    }
    return 2;
}
