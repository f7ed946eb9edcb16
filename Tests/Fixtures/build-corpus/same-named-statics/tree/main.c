#include <stdio.h>
int a_step(int);
int b_step(int);
int main(void) { printf("%d %d\n", a_step(1), b_step(1)); return 0; }
