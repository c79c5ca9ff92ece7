/* libFuzzer target: the DATA encoder. Random bodies cut at random places
 * (the first byte seeds the cuts) must give the same bytes as one call, and
 * the output must end DATA exactly once, at its end, with no bare CR or LF. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    smtpkit_data_encoder e;
    size_t whole_len, i = 0, o = 0, k;
    char *whole, *out;
    unsigned seed;
    int long_ok;

    if (size < 1)
        return 0;
    seed = data[0];
    long_ok = seed & 1;
    data++;
    size--;
    whole = smtpkit_data_encode_all((const char *)data, size, long_ok, 1, &whole_len);
    if (!whole)
        return 0;   /* a long line */
    out = malloc(2 * size + 16);
    smtpkit_data_init(&e, long_ok);
    while (i < size) {
        size_t n = 1 + (seed = seed * 1103515245u + 12345u) % 13, used, produced;
        size_t cap = 2 + seed % 7;
        if (n > size - i)
            n = size - i;
        if (smtpkit_data_encode(&e, (const char *)data + i, n, &used, out + o, cap, &produced)
            != SMTPKIT_DATA_OK)
            abort();
        if (produced > cap)
            abort();
        i += used;
        o += produced;
    }
    o += smtpkit_data_finish(&e, out + o);
    if (o != whole_len || memcmp(out, whole, o) != 0)
        abort();
    /* exactly one end of data, at the end; no bare CR/LF */
    for (k = 0; k < o; k++) {
        if (out[k] == '\r' && (k + 1 >= o || out[k + 1] != '\n'))
            abort();
        if (out[k] == '\n' && (k == 0 || out[k - 1] != '\r'))
            abort();
        if (out[k] == '.' && (k == 0 || out[k - 1] == '\n') && k + 2 < o
            && out[k + 1] == '\r' && k + 3 != o)
            abort();
    }
    free(whole);
    free(out);
    return 0;
}
