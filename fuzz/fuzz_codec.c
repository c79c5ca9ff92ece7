/*
 * fuzz_codec.c - libFuzzer target for the encoders of csrc/codec.c. They
 * encode our own callers' input, not outside bytes, but any byte string may
 * reach them (a subject, a file): this checks that, for every input, chunked
 * encoding equals one-shot encoding, the output is ASCII with CRLF line ends
 * and lines within their caps, and encoded words and RFC 2231 pieces respect
 * their room and never cut a UTF-8 character.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

#define MAXIN 4096

static void check_lines(const char *s, size_t n, size_t cap)
{
    size_t i, col = 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c > 126 || (c < 32 && c != '\r' && c != '\n' && c != '\t'))
            abort();
        if (c == '\r') {
            if (i + 1 >= n || s[i + 1] != '\n')
                abort();
            if (col > cap)
                abort();
            col = 0;
            i++;
            continue;
        }
        if (c == '\n')
            abort();
        col++;
    }
    if (col > cap)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char a[SMTPKIT_QP_BOUND(MAXIN) + 64], b[SMTPKIT_QP_BOUND(MAXIN) + 64];
    size_t step, na = 0, nb = 0, i, used, at;
    int mode;
    smtpkit_b64 e;
    smtpkit_qp q;

    if (size < 2 || size > MAXIN + 2)
        return 0;
    mode = data[0] % 3;           /* 0 base64, 1 qp text, 2 qp binary */
    step = (size_t)data[1] + 1;
    data += 2;
    size -= 2;

    if (mode == 0) {
        smtpkit_b64_init(&e, 76);
        na = smtpkit_b64_update(&e, data, size, a);
        na += smtpkit_b64_final(&e, a + na);
        smtpkit_b64_init(&e, 76);
        for (i = 0; i < size; i += step)
            nb += smtpkit_b64_update(&e, data + i, size - i < step ? size - i : step, b + nb);
        nb += smtpkit_b64_final(&e, b + nb);
        check_lines(a, na, 76);
    } else {
        smtpkit_qp_init(&q, mode == 2);
        na = smtpkit_qp_update(&q, data, size, a);
        na += smtpkit_qp_final(&q, a + na);
        smtpkit_qp_init(&q, mode == 2);
        for (i = 0; i < size; i += step)
            nb += smtpkit_qp_update(&q, data + i, size - i < step ? size - i : step, b + nb);
        nb += smtpkit_qp_final(&q, b + nb);
        check_lines(a, na, 76);
        if (na > SMTPKIT_QP_BOUND(size) + 16)
            abort();
    }
    if (na != nb || memcmp(a, b, na) != 0)
        abort();

    /* encoded words and RFC 2231 pieces over the valid UTF-8 prefix */
    size = smtpkit_utf8_check(data, size);
    for (at = 0; at < size; at += used) {
        size_t room = 24 + step % 52, w;
        int enc = (step & 1) ? 'B' : 'Q';
        w = smtpkit_ew_word(data + at, size - at, enc, room, a, &used);
        if (w == 0 || w > room || used == 0)
            abort();
        if (at + used < size && (data[at + used] & 0xC0) == 0x80)
            abort();
        check_lines(a, w, SMTPKIT_EW_MAX);
    }
    for (at = 0; at < size; at += used) {
        size_t w = smtpkit_pct_encode(data + at, size - at, 12 + step % 40, a, &used);
        if (w == 0 || w > 12 + step % 40 || used == 0)
            abort();
        if (at + used < size && (data[at + used] & 0xC0) == 0x80)
            abort();
    }
    return 0;
}
