/*
 * codec.c - base64, quoted-printable, RFC 2047 encoded words, RFC 2231
 * percent-encoding and UTF-8 validation for message composition. See codec.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"

static const char B64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char HEX[] = "0123456789ABCDEF";

/* ---- base64 ------------------------------------------------------------- */

void smtpkit_b64_init(smtpkit_b64 *e, unsigned line_len)
{
    memset(e, 0, sizeof *e);
    if (line_len > 76)
        line_len = 76;
    e->line_len = line_len & ~3u;
}

static size_t b64_group(smtpkit_b64 *e, const unsigned char *g, char *out)
{
    size_t n = 4;
    unsigned v = ((unsigned)g[0] << 16) | ((unsigned)g[1] << 8) | g[2];
    out[0] = B64[(v >> 18) & 63];
    out[1] = B64[(v >> 12) & 63];
    out[2] = B64[(v >> 6) & 63];
    out[3] = B64[v & 63];
    e->col += 4;
    if (e->line_len && e->col >= e->line_len) {
        out[4] = '\r';
        out[5] = '\n';
        n = 6;
        e->col = 0;
    }
    return n;
}

size_t smtpkit_b64_update(smtpkit_b64 *e, const unsigned char *in, size_t len, char *out)
{
    size_t o = 0;
    while (e->npend && e->npend < 3 && len) {
        e->pend[e->npend++] = *in++;
        len--;
    }
    if (e->npend == 3) {
        o += b64_group(e, e->pend, out + o);
        e->npend = 0;
    }
    while (len >= 3) {
        o += b64_group(e, in, out + o);
        in += 3;
        len -= 3;
    }
    while (len) {
        e->pend[e->npend++] = *in++;
        len--;
    }
    return o;
}

size_t smtpkit_b64_final(smtpkit_b64 *e, char *out)
{
    size_t o = 0;
    unsigned line_len = e->line_len;
    if (e->npend) {
        unsigned n = e->npend;
        unsigned char g[3] = { 0, 0, 0 };
        memcpy(g, e->pend, n);
        o = b64_group(e, g, out);
        /* the group may have ended a line: its 4 characters come first */
        out[3] = '=';
        if (n == 1)
            out[2] = '=';
    }
    if (e->line_len && e->col) {
        out[o++] = '\r';
        out[o++] = '\n';
    }
    smtpkit_b64_init(e, line_len);
    return o;
}

/* ---- quoted-printable -------------------------------------------------- */

#define QP_LINE 75   /* characters before the soft break's '=' */

void smtpkit_qp_init(smtpkit_qp *e, int binary)
{
    e->col = 0;
    e->binary = binary ? 1 : 0;
    e->pend_ws = -1;
    e->pend_cr = 0;
}

/* Writes byte c, literally or as =XX, breaking the line softly first when
 * it would not fit. */
static size_t qp_byte(smtpkit_qp *e, unsigned c, int enc, char *out)
{
    size_t o = 0;
    if (e->col + (enc ? 3u : 1u) > QP_LINE) {
        out[o++] = '=';
        out[o++] = '\r';
        out[o++] = '\n';
        e->col = 0;
    }
    if (c == '.' && e->col == 0)
        enc = 1;
    if (enc) {
        out[o++] = '=';
        out[o++] = HEX[c >> 4];
        out[o++] = HEX[c & 15];
        e->col += 3;
    } else {
        out[o++] = (char)c;
        e->col += 1;
    }
    return o;
}

static size_t qp_hard_break(smtpkit_qp *e, char *out)
{
    out[0] = '\r';
    out[1] = '\n';
    e->col = 0;
    return 2;
}

/* Writes the pending SPACE/TAB: encoded when a line break or the end follows. */
static size_t qp_flush_ws(smtpkit_qp *e, int at_break, char *out)
{
    size_t o = 0;
    if (e->pend_ws >= 0) {
        o = qp_byte(e, (unsigned)e->pend_ws, at_break, out);
        e->pend_ws = -1;
    }
    return o;
}

static int qp_needs_enc(unsigned c)
{
    return c == '=' || c < 33 || c > 126;
}

size_t smtpkit_qp_update(smtpkit_qp *e, const unsigned char *in, size_t len, char *out)
{
    size_t o = 0, i;
    for (i = 0; i < len; i++) {
        unsigned c = in[i];
        if (e->pend_cr) {
            e->pend_cr = 0;
            if (c == '\n') {
                o += qp_flush_ws(e, 1, out + o);
                o += qp_hard_break(e, out + o);
                continue;
            }
            o += qp_flush_ws(e, 0, out + o);
            o += qp_byte(e, '\r', 1, out + o);
        }
        if (!e->binary && c == '\r') {
            e->pend_cr = 1;
        } else if (!e->binary && c == '\n') {
            o += qp_flush_ws(e, 1, out + o);
            o += qp_hard_break(e, out + o);
        } else if (c == ' ' || c == '\t') {
            o += qp_flush_ws(e, 0, out + o);
            e->pend_ws = (int)c;
        } else {
            o += qp_flush_ws(e, 0, out + o);
            o += qp_byte(e, c, qp_needs_enc(c), out + o);
        }
    }
    return o;
}

size_t smtpkit_qp_final(smtpkit_qp *e, char *out)
{
    size_t o = 0;
    if (e->pend_cr) {
        o += qp_flush_ws(e, 0, out + o);
        o += qp_byte(e, '\r', 1, out + o);
    }
    o += qp_flush_ws(e, 1, out + o);
    smtpkit_qp_init(e, e->binary);
    return o;
}

/* ---- UTF-8 ---------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s, or 0. */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        if (len >= 2 && (s[1] & 0xC0) == 0x80)
            return 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        if (len >= 3 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80
            && !(c == 0xE0 && s[1] < 0xA0)       /* overlong */
            && !(c == 0xED && s[1] >= 0xA0))     /* surrogates */
            return 3;
    } else if (c >= 0xF0 && c <= 0xF4) {
        if (len >= 4 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80
            && (s[3] & 0xC0) == 0x80
            && !(c == 0xF0 && s[1] < 0x90)       /* overlong */
            && !(c == 0xF4 && s[1] >= 0x90))     /* past U+10FFFF */
            return 4;
    }
    return 0;
}

size_t smtpkit_utf8_check(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t n;
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        n = utf8_seq(s + i, len - i);
        if (n == 0)
            return i;
        i += n;
    }
    return len;
}

/* Length of the character at s: its UTF-8 length, or 1 for a stray byte. */
static size_t char_len(const unsigned char *s, size_t len)
{
    size_t n = utf8_seq(s, len);
    return n ? n : 1;
}

/* ---- RFC 2047 -------------------------------------------------------------- */

/* Characters a Q-encoded word may carry as they are in a phrase
 * (RFC 2047 section 5 (3)); SPACE becomes '_'. */
static int q_plain(unsigned c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
        || c == '!' || c == '*' || c == '+' || c == '-' || c == '/';
}

static size_t q_len(unsigned c)
{
    return (q_plain(c) || c == ' ') ? 1 : 3;
}

int smtpkit_ew_choose(const unsigned char *s, size_t len)
{
    size_t q = 0, i, b = (len + 2) / 3 * 4;
    for (i = 0; i < len; i++)
        q += q_len(s[i]);
    return q <= b ? 'Q' : 'B';
}

size_t smtpkit_ew_word(const unsigned char *s, size_t len, int enc, size_t room,
                       char *out, size_t *used)
{
    size_t take = 0, qsum = 0, o, i;
    if (room > SMTPKIT_EW_MAX)
        room = SMTPKIT_EW_MAX;
    *used = 0;
    if (room <= SMTPKIT_EW_OVERHEAD || len == 0)
        return 0;
    while (take < len) {
        size_t n = char_len(s + take, len - take), elen;
        if (enc == 'B') {
            elen = (take + n + 2) / 3 * 4;
        } else {
            size_t k, add = 0;
            for (k = 0; k < n; k++)
                add += q_len(s[take + k]);
            elen = qsum + add;
            if (SMTPKIT_EW_OVERHEAD + elen <= room)
                qsum = elen;
        }
        if (SMTPKIT_EW_OVERHEAD + elen > room)
            break;
        take += n;
    }
    if (take == 0)
        return 0;
    memcpy(out, "=?UTF-8?", 8);
    out[8] = enc == 'B' ? 'B' : 'Q';
    out[9] = '?';
    o = 10;
    if (enc == 'B') {
        smtpkit_b64 b;
        smtpkit_b64_init(&b, 0);
        o += smtpkit_b64_update(&b, s, take, out + o);
        o += smtpkit_b64_final(&b, out + o);
    } else {
        for (i = 0; i < take; i++) {
            unsigned c = s[i];
            if (c == ' ') {
                out[o++] = '_';
            } else if (q_plain(c)) {
                out[o++] = (char)c;
            } else {
                out[o++] = '=';
                out[o++] = HEX[c >> 4];
                out[o++] = HEX[c & 15];
            }
        }
    }
    out[o++] = '?';
    out[o++] = '=';
    *used = take;
    return o;
}

/* ---- RFC 2231 -------------------------------------------------------------- */

static int attr_char(unsigned c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
        || (c != 0 && strchr("!#$&+-.^_`|~", (int)c) != NULL);
}

size_t smtpkit_pct_encode(const unsigned char *s, size_t len, size_t room,
                          char *out, size_t *used)
{
    size_t take = 0, o = 0;
    while (take < len) {
        size_t n = char_len(s + take, len - take), k, w = 0;
        for (k = 0; k < n; k++)
            w += attr_char(s[take + k]) ? 1 : 3;
        if (o + w > room)
            break;
        for (k = 0; k < n; k++) {
            unsigned c = s[take + k];
            if (attr_char(c)) {
                out[o++] = (char)c;
            } else {
                out[o++] = '%';
                out[o++] = HEX[c >> 4];
                out[o++] = HEX[c & 15];
            }
        }
        take += n;
    }
    *used = take;
    return o;
}

/* ---- randomness ------------------------------------------------------------ */

int smtpkit_random_bytes(unsigned char *buf, size_t n)
{
    size_t got = 0;
    int fd = open("/dev/urandom", O_RDONLY);
    if (fd < 0)
        return -1;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int saved = r < 0 ? errno : EIO;
            close(fd);
            errno = saved;
            return -1;
        }
        got += (size_t)r;
    }
    close(fd);
    return 0;
}
