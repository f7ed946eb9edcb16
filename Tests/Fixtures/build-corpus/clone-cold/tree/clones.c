#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rec { int id; int len; char name[32]; double weight; };

/* .isra: only one field of the struct is used */
static __attribute__((noinline)) int rec_cost(struct rec *r)
{
    return r->len * 3 + 1;
}

/* .constprop: always called with k == 7 */
static __attribute__((noinline)) int scale(int x, int k)
{
    int r = 0;
    for (int i = 0; i < k; i++)
        r += x ^ i;
    return r;
}

/* .part: cheap early exit inlined, the rest split off */
static int checksum(const char *s)
{
    if (!s)
        return 0;
    unsigned h = 5381;
    for (; *s; s++) {
        h = h * 33 + (unsigned char)*s;
        h ^= h >> 7;
        h += (h << 3) ^ 0x9e3779b9u;
        h ^= h >> 11;
        h = h * 7 + 3;
        h ^= h >> 5;
    }
    return (int)(h % 1000);
}

int parse_level(const char *s);

int use(struct rec *r, const char *s, const char *t)
{
    return rec_cost(r) + scale(r->id, 7) + scale(r->len, 7) + checksum(s) + checksum(t) + parse_level(s);
}
