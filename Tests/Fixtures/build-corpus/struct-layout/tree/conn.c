#include "conn.h"

struct conn *conn_first(struct conn **list)
{
    return list[0];
}

int conn_state(const struct conn *c)
{
    return c->state;
}
