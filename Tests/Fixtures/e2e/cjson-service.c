/*
 * A long-running service using the system's libcjson build under test (Tests/SutureBuildTests/EndToEnd).
 *
 *   cjson-service PORT
 *
 * Four load threads call cJSON_SetValuestring, cJSON_Parse, cJSON_Print and cJSON_InsertItemInArray in a
 * loop and check every result. Clients connect to 127.0.0.1:PORT and send one line:
 *   SETNULL  -> cJSON_SetValuestring(string_item, NULL): "CRASH" when it faults (CVE-2024-31755, the
 *               vulnerable build dereferences NULL in strlen), "NULL" when it refuses (the fixed build)
 *   STATS    -> "OK loops=N errors=E steps=…" (errors: load-thread results that were wrong, by step)
 * A fault inside SETNULL is caught (SIGSEGV handler + siglongjmp on that thread) so the service survives
 * to show the bug again; a fault anywhere else kills it.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cJSON.h"

static __thread sigjmp_buf *guard;
static unsigned long loops, errors, failed_step[6];

static void on_segv(int sig)
{
    if (guard)
        siglongjmp(*guard, 1);
    signal(sig, SIG_DFL);
    raise(sig);
}

static const char *set_null(void)
{
    static const char *answer;
    sigjmp_buf here;
    cJSON *item = cJSON_CreateString("value");
    if (sigsetjmp(here, 1) == 0) {
        guard = &here;
        char *r = cJSON_SetValuestring(item, NULL);
        guard = NULL;
        answer = r == NULL ? "NULL" : "SET";
    } else {
        guard = NULL;
        answer = "CRASH";
    }
    cJSON_Delete(item);
    return answer;
}

static void *load(void *arg)
{
    (void)arg;
    for (;;) {
        int step = 0;
        cJSON *root = cJSON_Parse("{\"name\":\"suture\",\"list\":[1,2,3],\"nested\":{\"k\":\"v\"}}");
        cJSON *name = cJSON_GetObjectItem(root, "name");
        if (root == NULL || name == NULL)
            step = 1;
        if (!step && cJSON_SetValuestring(name, "a-longer-value-than-before") == NULL)
            step = 2;
        if (!step && strcmp(cJSON_GetStringValue(name), "a-longer-value-than-before") != 0)
            step = 3;
        if (!step && cJSON_SetValuestring(name, "short") == NULL)
            step = 4;
        cJSON *list = cJSON_GetObjectItem(root, "list");
        if (!step && !cJSON_InsertItemInArray(list, 0, cJSON_CreateNumber(9)))
            step = 5;
        char *text = !step ? cJSON_PrintUnformatted(root) : NULL;
        if (!step && (text == NULL || strcmp(text, "{\"name\":\"short\",\"list\":[9,1,2,3],\"nested\":{\"k\":\"v\"}}") != 0))
            step = 6;
        free(text);
        cJSON_Delete(root);
        int ok = step == 0;
        if (!ok)
            __atomic_fetch_add(&failed_step[step - 1], 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(ok ? &loops : &errors, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: cjson-service PORT\n");
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_segv;
    sa.sa_flags = SA_NODEFER;
    sigaction(SIGSEGV, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[1]))};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 16) != 0) {
        perror("cjson-service: bind/listen");
        return 1;
    }
    for (int i = 0; i < 4; i++) {
        pthread_t t;
        pthread_create(&t, NULL, load, NULL);
    }
    printf("cjson-service pid %d listening on 127.0.0.1:%s\n", (int)getpid(), argv[1]);
    fflush(stdout);
    for (;;) {
        int c = accept(fd, NULL, NULL);
        if (c < 0)
            continue;
        char line[64] = {0};
        ssize_t n = read(c, line, sizeof line - 1);
        char out[128];
        if (n > 0 && strncmp(line, "SETNULL", 7) == 0)
            snprintf(out, sizeof out, "%s\n", set_null());
        else if (n > 0 && strncmp(line, "STATS", 5) == 0)
            snprintf(out, sizeof out, "OK loops=%lu errors=%lu steps=%lu,%lu,%lu,%lu,%lu,%lu\n",
                     __atomic_load_n(&loops, __ATOMIC_RELAXED), __atomic_load_n(&errors, __ATOMIC_RELAXED),
                     failed_step[0], failed_step[1], failed_step[2], failed_step[3], failed_step[4], failed_step[5]);
        else
            snprintf(out, sizeof out, "ERR unknown request\n");
        if (write(c, out, strlen(out)) < 0) {
        }
        close(c);
    }
}
