#include <stdio.h>
int add_scaled(int, int);
int sub_scaled(int, int);
int unrelated(int);
int main(void) { printf("%d %d %d\n", add_scaled(1, 2), sub_scaled(5, 1), unrelated(3)); return 0; }
