/* Target program of the tracer-death fault sweep (scripts/fault-sweep, Tests/SutureCLITests/FaultSweepTests.swift).
 *
 * Usage: sweep_target N
 *   N worker threads (default 12) call compute(x) back to back, with x changing every call, and check every
 *   result: 2*x is the original code, 3*x the patch (sweep_fix.c), anything else is counted as wrong.
 *   compute() runs a short loop, so a stopped thread is usually inside it (the engine has to step it out).
 *   The main thread blocks in read() on stdin (so it is the thread the engine borrows for injections).
 * stdin commands, one per line:
 *   "s"  prints "old=A new=B wrong=C stalled=D" and starts a new window: counts since the previous "s",
 *        D = worker threads that completed no call in the window (a thread left stopped or spinning).
 *   "c"  prints "calls C1 C2 ..." (calls completed so far by each worker thread), to check every thread moves.
 *   "q"  exits 0.
 * No fatal signal is handled: a thread killed by SIGTRAP/SIGSEGV kills the process and the parent sees it. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((noinline)) long compute(long x) {
    volatile long acc = 0;
    for (int i = 0; i < 8; i++) acc += x;
    return acc / 4;
}

#define MAX_THREADS 64
static atomic_long n_old, n_new, n_wrong;
static atomic_long calls[MAX_THREADS];

/* Aligned: its address (passed to pthread_create, left on the main thread's stack) must not be compute's end
 * address, which the engine's conservative stack scan reads as a return address into compute. */
__attribute__((aligned(64))) static void *worker(void *arg) {
    long id = (long)arg;
    long x = id * 1000003L;
    for (;;) {
        x = ((x * 1103515245L + 12345L) & 0xffffffL) | 1; /* never 0: 2*0 == 3*0 */
        long r = compute(x);
        if (r == 2 * x) atomic_fetch_add_explicit(&n_old, 1, memory_order_relaxed);
        else if (r == 3 * x) atomic_fetch_add_explicit(&n_new, 1, memory_order_relaxed);
        else atomic_fetch_add_explicit(&n_wrong, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&calls[id], 1, memory_order_relaxed);
    }
    return NULL;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 12;
    if (n < 1 || n > MAX_THREADS) return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (long i = 0; i < n; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, worker, (void *)i) != 0) return 3;
    }
    long last[MAX_THREADS] = {0};
    char line[64];
    printf("ready %d\n", n);
    while (fgets(line, sizeof line, stdin)) {
        if (line[0] == 'q') return 0;
        if (line[0] == 'c') {
            printf("calls");
            for (int i = 0; i < n; i++) printf(" %ld", atomic_load(&calls[i]));
            printf("\n");
        }
        if (line[0] == 's') {
            int stalled = 0;
            for (int i = 0; i < n; i++) {
                long c = atomic_load(&calls[i]);
                if (c == last[i]) stalled++;
                last[i] = c;
            }
            printf("old=%ld new=%ld wrong=%ld stalled=%d\n", atomic_exchange(&n_old, 0), atomic_exchange(&n_new, 0),
                   atomic_exchange(&n_wrong, 0), stalled);
        }
    }
    return 0;
}
