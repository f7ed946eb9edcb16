#include <stdio.h>
#include "conn.h"
int main(void)
{
    struct conn c = {3, 1, 10};
    struct conn *list[1] = {&c};
    printf("%d\n", conn_state(conn_first(list)));
    return 0;
}
