/*
 * data.c - the DATA encoder (see data.h). One pass: memchr finds the next CR
 * and the next LF (each position is searched once and kept until passed), the
 * bytes between are copied with memcpy, and only line ends and a '.' at the
 * start of a line are handled byte by byte.
 */
#include "data.h"

#include <stdlib.h>
#include <string.h>

void smtpkit_data_init(smtpkit_data_encoder *e, int pass_long_lines)
{
    e->line_len = 0;
    e->skip_lf = 0;
    e->pass_long = pass_long_lines ? 1 : 0;
    e->failed = 0;
    e->in_total = 0;
    e->out_total = 0;
}

/* Position of the next c in in[from..len), or len. */
static size_t find(const char *in, size_t from, size_t len, char c)
{
    const char *p = memchr(in + from, c, len - from);
    return p ? (size_t)(p - in) : len;
}

smtpkit_data_status smtpkit_data_encode(smtpkit_data_encoder *e,
                                        const char *in, size_t inlen, size_t *in_used,
                                        char *out, size_t outcap, size_t *out_used)
{
    size_t i = 0, o = 0;
    size_t crpos = 0, lfpos = 0;
    int crknown = 0, lfknown = 0;
    smtpkit_data_status st = SMTPKIT_DATA_OK;

    if (e->failed) {
        *in_used = 0;
        *out_used = 0;
        return SMTPKIT_DATA_LINE_TOO_LONG;
    }
    if (e->skip_lf && inlen > 0) {
        if (in[0] == '\n')
            i = 1;
        e->skip_lf = 0;
    }
    while (i < inlen) {
        char c = in[i];
        size_t end, n;

        if (c == '\n' || c == '\r') {
            if (outcap - o < 2)
                break;
            out[o++] = '\r';
            out[o++] = '\n';
            e->line_len = 0;
            if (c == '\r') {
                if (i + 1 < inlen) {
                    if (in[i + 1] == '\n')
                        i++;
                } else {
                    e->skip_lf = 1;
                }
            }
            i++;
            continue;
        }
        if (e->line_len == 0 && c == '.') {
            /* The stuffed dot and the line's own dot go out together. */
            if (outcap - o < 2)
                break;
            out[o++] = '.';
        }
        if (!crknown || crpos < i) {
            crpos = find(in, i, inlen, '\r');
            crknown = 1;
        }
        if (!lfknown || lfpos < i) {
            lfpos = find(in, i, inlen, '\n');
            lfknown = 1;
        }
        end = crpos < lfpos ? crpos : lfpos;
        n = end - i;
        if (!e->pass_long && e->line_len + n > SMTPKIT_DATA_MAX_LINE) {
            if (e->line_len == 0 && c == '.')
                o--;   /* take the stuffed dot back: the output ends on a line end */
            e->failed = 1;
            st = SMTPKIT_DATA_LINE_TOO_LONG;
            break;
        }
        if (n > outcap - o)
            n = outcap - o;
        if (n == 0)
            break;
        memcpy(out + o, in + i, n);
        o += n;
        i += n;
        e->line_len += n;
    }
    *in_used = i;
    *out_used = o;
    e->in_total += i;
    e->out_total += o;
    return st;
}

size_t smtpkit_data_finish(smtpkit_data_encoder *e, char *out)
{
    size_t o = 0;
    if (e->line_len > 0) {
        out[o++] = '\r';
        out[o++] = '\n';
    }
    out[o++] = '.';
    out[o++] = '\r';
    out[o++] = '\n';
    e->line_len = 0;
    e->skip_lf = 0;
    e->out_total += o;
    return o;
}

char *smtpkit_data_encode_all(const char *in, size_t inlen, int pass_long_lines,
                              int end, size_t *outlen)
{
    smtpkit_data_encoder e;
    size_t cap, used, produced;
    char *out;

    *outlen = 1;
    if (inlen > ((size_t)-1 - 16) / 2)
        return NULL;
    cap = 2 * inlen + SMTPKIT_DATA_END_MAX + 1;
    out = malloc(cap);
    if (!out)
        return NULL;
    smtpkit_data_init(&e, pass_long_lines);
    if (smtpkit_data_encode(&e, in, inlen, &used, out, cap, &produced) != SMTPKIT_DATA_OK) {
        free(out);
        *outlen = 0;
        return NULL;
    }
    if (end)
        produced += smtpkit_data_finish(&e, out + produced);
    *outlen = produced;
    return out;
}
