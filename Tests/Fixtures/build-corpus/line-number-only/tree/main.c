#include <stdio.h>
int parse(int);
int check(int);
int audit(int);
int main(void) { printf("%d %d %d\n", parse(3), check(200), audit(1)); return 0; }
