#include <stdio.h>
int queue_room(int, int);
int queue_len(int);
int stack_room(int);
int main(void) { printf("%d %d %d\n", queue_room(20, 30), queue_len(3), stack_room(4)); return 0; }
