#include <stdio.h>
#include <string.h>
struct rec { int id; int len; char name[32]; double weight; };
int use(struct rec *r, const char *s, const char *t);
int parse_level(const char *s);
extern int total;
int main(int argc, char **argv)
{
    struct rec r = {1, 2, "x", 0.5};
    printf("%d %d %d\n", use(&r, argc > 1 ? argv[1] : "3", "abc"), parse_level("4"), total);
    return 0;
}
