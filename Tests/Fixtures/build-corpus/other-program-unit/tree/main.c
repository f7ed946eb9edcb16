#include <stdio.h>
#include <stdlib.h>
#include "table.h"

int main(void)
{
    char line[64];
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("ready\n");
    while (fgets(line, sizeof line, stdin)) {
        int slot = atoi(line);
        const char *n = slot <= table_size() ? lookup(slot) : "out";
        printf("result %s %d\n", n ? n : "(null)", lookups);
    }
    return 0;
}
