#include <stdio.h>
#include <stdlib.h>
#include "table.h"

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        printf("%s\n", lookup(atoi(argv[i])));
    return 0;
}
