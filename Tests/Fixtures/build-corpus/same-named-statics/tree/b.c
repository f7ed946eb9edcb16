static int counter = 200;

static __attribute__((noinline)) int bump(int by)
{
    counter += by;
    return counter;
}

int b_step(int x) { return bump(x) + 2; }
