/* The patch of the fault sweep (sweep_target.c): the same loop, result 3*x instead of 2*x. */
long compute(long x) {
    volatile long acc = 0;
    for (int i = 0; i < 8; i++) acc += x;
    return acc * 3 / 8;
}
