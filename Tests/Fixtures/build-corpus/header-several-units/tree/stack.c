#include "limits.h"
int stack_room(int n)
{
    return room_left(n, 64) * 8;
}
