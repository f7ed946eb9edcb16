/* Shared definitions of the demo record server (server.c) and its live fix (fix.c). */
#ifndef DEMO_H
#define DEMO_H

#define NSLOTS 4
#define SLOT_SIZE 32

/* The server's record table. The admin token sits right after the last slot. */
struct record_table {
    char slots[NSLOTS][SLOT_SIZE];
    char admin_token[SLOT_SIZE];
};

#endif
