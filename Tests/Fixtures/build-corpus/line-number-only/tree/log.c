#include <stdio.h>

#define LOG(msg) log_at(__LINE__, msg)

void log_at(int line, const char *msg)
{
    fprintf(stderr, "line %d: %s\n", line, msg);
}

int parse(int x)
{
    if (x < 0)
        return -1;
    return x * 2;
}

int check(int x)
{
    if (x > 100) {
        LOG("too big");
        return 0;
    }
    return 1;
}

int audit(int x)
{
    LOG("audit");
    return x + 1;
}
