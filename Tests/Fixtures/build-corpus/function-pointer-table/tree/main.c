#include <stdio.h>
int apply(int, int);
int main(void) { printf("%d %d\n", apply(0, 5), apply(1, 5)); return 0; }
