#include "limits.h"
int queue_room(int n, int cap)
{
    return room_left(n, cap) + 1;
}
int queue_len(int n)
{
    return n & 0xff;
}
