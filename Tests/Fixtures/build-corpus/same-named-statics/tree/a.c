static int counter = 100;

static __attribute__((noinline)) int bump(int by)
{
    counter += by;
    return counter;
}

int a_step(int x) { return bump(x) + 1; }
