/* C unit test of the encoders (csrc/codec.c), run under valgrind by `make ctest`. */
#include <stdio.h>
#include <string.h>

#include "codec.h"

static int failures;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: CHECK(%s)\n", __FILE__, __LINE__, #c); failures++; } } while (0)

static size_t b64_all(const char *in, size_t len, unsigned line_len, size_t step, char *out)
{
    smtpkit_b64 e;
    size_t o = 0, i;
    smtpkit_b64_init(&e, line_len);
    for (i = 0; i < len; i += step)
        o += smtpkit_b64_update(&e, (const unsigned char *)in + i, len - i < step ? len - i : step, out + o);
    o += smtpkit_b64_final(&e, out + o);
    out[o] = 0;
    return o;
}

static size_t qp_all(const char *in, size_t len, int binary, size_t step, char *out)
{
    smtpkit_qp e;
    size_t o = 0, i;
    smtpkit_qp_init(&e, binary);
    for (i = 0; i < len; i += step)
        o += smtpkit_qp_update(&e, (const unsigned char *)in + i, len - i < step ? len - i : step, out + o);
    o += smtpkit_qp_final(&e, out + o);
    out[o] = 0;
    return o;
}

int main(void)
{
    static char out[65536], ref[65536];
    static unsigned char bin[3000];
    size_t i, n, used, step;
    const char *qp_in = "a \r\nb\t\r\rc=d  \n.e\r";

    CHECK(b64_all("foobar", 6, 0, 6, out) == 8 && strcmp(out, "Zm9vYmFy") == 0);
    CHECK(b64_all("fooba", 5, 0, 1, out) == 8 && strcmp(out, "Zm9vYmE=") == 0);
    CHECK(b64_all("f", 1, 76, 1, out) == 6 && strcmp(out, "Zg==\r\n") == 0);
    CHECK(b64_all("", 0, 76, 1, out) == 0);

    for (i = 0; i < sizeof bin; i++)
        bin[i] = (unsigned char)(i * 7 + i / 256);
    n = b64_all((const char *)bin, sizeof bin, 76, sizeof bin, ref);
    CHECK(n <= SMTPKIT_B64_BOUND(sizeof bin) + 8);
    CHECK(strlen(ref) == n);
    for (step = 1; step < 200; step += 13) {
        b64_all((const char *)bin, sizeof bin, 76, step, out);
        CHECK(strcmp(out, ref) == 0);
    }
    CHECK(ref[76] == '\r' && ref[77] == '\n');

    n = qp_all(qp_in, strlen(qp_in), 0, 1000, ref);
    CHECK(strcmp(ref, "a=20\r\nb\t=0D=0Dc=3Dd =20\r\n=2Ee=0D") == 0);
    for (step = 1; step < 6; step++) {
        qp_all(qp_in, strlen(qp_in), 0, step, out);
        CHECK(strcmp(out, ref) == 0);
    }
    n = qp_all((const char *)bin, sizeof bin, 1, 7, out);
    CHECK(n <= SMTPKIT_QP_BOUND(sizeof bin) + 16);
    for (i = 0; i < n; i++)
        CHECK(out[i] != '\n' || (i > 0 && out[i - 1] == '\r'));

    CHECK(smtpkit_utf8_check((const unsigned char *)"\xe8\xab\x8b", 3) == 3);
    CHECK(smtpkit_utf8_check((const unsigned char *)"a\xed\xa0\x80", 4) == 1);

    n = smtpkit_ew_word((const unsigned char *)"\xe8\xab\x8b\xe6\xb1\x82", 6, 'B', 75, out, &used);
    CHECK(used == 6 && n == 20 && memcmp(out, "=?UTF-8?B?6KuL5rGC?=", 20) == 0);
    /* 20 characters of room hold one 3-byte character in B (4 + 12), not two */
    n = smtpkit_ew_word((const unsigned char *)"\xe8\xab\x8b\xe6\xb1\x82", 6, 'B', 19, out, &used);
    CHECK(used == 3 && n == 16);
    n = smtpkit_ew_word((const unsigned char *)"a b_c", 5, 'Q', 75, out, &used);
    CHECK(used == 5 && n == 19 && memcmp(out, "=?UTF-8?Q?a_b=5Fc?=", 19) == 0);
    CHECK(smtpkit_ew_word((const unsigned char *)"\xe8\xab\x8b", 3, 'Q', 20, out, &used) == 0 && used == 0);
    CHECK(smtpkit_ew_choose((const unsigned char *)"abc", 3) == 'Q');

    n = smtpkit_pct_encode((const unsigned char *)"a b\xc3\xa9", 5, 7, out, &used);
    CHECK(n == 5 && used == 3 && memcmp(out, "a%20b", 5) == 0);

    CHECK(smtpkit_random_bytes(bin, 32) == 0);

    if (failures)
        return 1;
    puts("test_codec: ok");
    return 0;
}
