#include <stdio.h>
#include "table.h"

static const char *names[] = {"alpha", "bravo", "charlie", "delta", "TOKEN=hunter2"};
int lookups;

const char *lookup(int slot)
{
    lookups++;
    if (slot < 0 || slot > 4)
        return "none";
    return names[slot];
}

int table_size(void)
{
    return 4; /* the last entry is private */
}
