int hits(int x)
{
    static int calls;
    calls += x;
    return calls;
}

int misses(int x)
{
    static int calls = 50;
    calls -= x;
    return calls;
}
