static inline int room_left(int used, int capacity)
{
    int room = capacity - used;
    if (room < 0)
        return 0;
    return room > 16 ? 16 : room;
}
