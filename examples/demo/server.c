/*
 * demo-server: a tiny line-oriented record server on 127.0.0.1:PORT with a pool of worker threads.
 *
 *   GET <slot>    -> "OK <record>" or "ERR no such slot"
 *   STATS         -> "OK requests=<n> rejected=<n>"
 *   QUIT          -> closes the connection
 *
 * Bug (think CVE): lookup_slot() checks the slot number with `>` instead of `>=`, so "GET 4" reads one
 * slot past the end of the table and returns the admin token.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "demo.h"

#define WORKERS 4

struct record_table table = {
    .slots = {"alpha", "bravo", "charlie", "delta"},
    .admin_token = "TOKEN=hunter2-do-not-leak",
};
unsigned long total_requests;
unsigned long rejected_requests;
static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;

/* Kept out of line (noinline, noclone) so it stays a function of its own that can be live-patched:
 * code inlined into a caller can only be replaced by replacing the caller. */
static __attribute__((noinline, noclone)) const char *lookup_slot(long slot)
{
    if (slot < 0 || slot > NSLOTS)
        return NULL;
    return table.slots[slot];
}

static void reply(int fd, const char *text)
{
    size_t len = strlen(text);
    while (len > 0) {
        ssize_t n = write(fd, text, len);
        if (n <= 0)
            return;
        text += n;
        len -= (size_t)n;
    }
}

static int handle_line(int fd, char *line)
{
    char out[128];
    pthread_mutex_lock(&stats_lock);
    total_requests++;
    pthread_mutex_unlock(&stats_lock);
    if (strncmp(line, "GET ", 4) == 0) {
        const char *record = lookup_slot(strtol(line + 4, NULL, 10));
        if (record)
            snprintf(out, sizeof out, "OK %s\n", record);
        else
            snprintf(out, sizeof out, "ERR no such slot\n");
    } else if (strcmp(line, "STATS") == 0) {
        pthread_mutex_lock(&stats_lock);
        snprintf(out, sizeof out, "OK requests=%lu rejected=%lu\n", total_requests, rejected_requests);
        pthread_mutex_unlock(&stats_lock);
    } else if (strcmp(line, "QUIT") == 0) {
        return 0;
    } else {
        snprintf(out, sizeof out, "ERR unknown command\n");
    }
    reply(fd, out);
    return 1;
}

static void serve_client(int fd)
{
    char buf[512];
    size_t used = 0;
    for (;;) {
        ssize_t n = read(fd, buf + used, sizeof buf - 1 - used);
        if (n <= 0)
            return;
        used += (size_t)n;
        buf[used] = '\0';
        char *nl;
        while ((nl = strchr(buf, '\n')) != NULL) {
            *nl = '\0';
            if (nl > buf && nl[-1] == '\r')
                nl[-1] = '\0';
            if (!handle_line(fd, buf))
                return;
            used -= (size_t)(nl + 1 - buf);
            memmove(buf, nl + 1, used + 1);
        }
        if (used == sizeof buf - 1)
            used = 0; /* line too long: drop it */
    }
}

static void *worker(void *arg)
{
    int listener = *(int *)arg;
    for (;;) {
        int fd = accept(listener, NULL, NULL);
        if (fd < 0)
            continue;
        serve_client(fd);
        close(fd);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 7878;
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listener, 64) != 0) {
        perror("demo-server: bind/listen");
        return 1;
    }
    printf("demo-server pid %d listening on 127.0.0.1:%d with %d workers\n", (int)getpid(), port, WORKERS);
    fflush(stdout);
    pthread_t threads[WORKERS];
    for (int i = 0; i < WORKERS; i++)
        pthread_create(&threads[i], NULL, worker, &listener);
    for (int i = 0; i < WORKERS; i++)
        pthread_join(threads[i], NULL);
    return 0;
}
