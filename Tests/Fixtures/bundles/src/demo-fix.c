/* Replacement for parse_request() in the demo service: rejects over-long input (the "CVE" fix).
 * Compiled to a relocatable object (ET_REL) that is the payload of the user-demo fixture bundle. */
#include <stddef.h>

int parse_request_patched(const char *buf, size_t len)
{
    if (buf == NULL || len > 256)
        return -1;
    int sum = 0;
    for (size_t i = 0; i < len; i++)
        sum += (unsigned char)buf[i];
    return sum & 0x7fff;
}
