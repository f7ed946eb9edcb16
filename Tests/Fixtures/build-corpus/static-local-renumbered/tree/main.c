#include <stdio.h>
int hits(int);
int misses(int);
int main(void) { printf("%d %d\n", hits(1), misses(1)); return 0; }
