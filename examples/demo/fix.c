/*
 * The live fix for demo-server's lookup_slot(): the same function with the bound corrected, compiled on
 * its own (`make fix.o`). It uses the server's own data: `table` and `rejected_requests` are declared
 * extern here and resolved to the server's symbols by `suture bundle create`; fprintf/stderr come from
 * the process's libc at activation.
 */
#include <stdio.h>

#include "demo.h"

extern struct record_table table;
extern unsigned long rejected_requests;

const char *lookup_slot(long slot)
{
    if (slot < 0 || slot >= NSLOTS) {
        __atomic_fetch_add(&rejected_requests, 1, __ATOMIC_RELAXED);
        fprintf(stderr, "demo-server: rejected out-of-range slot %ld (live fix)\n", slot);
        return NULL;
    }
    return table.slots[slot];
}
