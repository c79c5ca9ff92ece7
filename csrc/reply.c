/*
 * reply.c - the SMTP reply parser. One pass over the bytes, each copied once
 * (into the reply's text), with the code and separator checked as they come
 * so that garbage is refused at its first byte.
 */
#include "reply.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static smtpkit_reply_status fail(smtpkit_reply_parser *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->error, sizeof p->error, fmt, ap);
    va_end(ap);
    return SMTPKIT_REPLY_ERROR;
}

void smtpkit_reply_parser_init(smtpkit_reply_parser *p)
{
    p->reply.code = 0;
    p->reply.enhanced[0] = '\0';
    p->reply.nlines = 0;
    p->reply.text_len = 0;
    p->reply.text[0] = '\0';
    p->col = 0;
    p->line_code = 0;
    p->sep = 0;
    p->saw_cr = 0;
    p->done = 0;
    p->error[0] = '\0';
}

const char *smtpkit_reply_parser_error(const smtpkit_reply_parser *p)
{
    return p->error;
}

int smtpkit_reply_parser_pending(const smtpkit_reply_parser *p)
{
    return !p->done && !p->error[0] && (p->col > 0 || p->reply.nlines > 0);
}

static int isdig(char c) { return c >= '0' && c <= '9'; }

size_t smtpkit_enhanced_scan(const char *s, size_t len, int klass, char *out)
{
    size_t i = 0, start;
    int field, digits;

    while (i < len && s[i] == ' ')
        i++;
    if (i < len && s[i] == '#')
        i++;
    start = i;
    if (i >= len || !(s[i] == '2' || s[i] == '4' || s[i] == '5'))
        return 0;
    if (klass && s[i] - '0' != klass)
        return 0;
    i++;
    for (field = 0; field < 2; field++) {
        if (i >= len || s[i] != '.')
            return 0;
        i++;
        for (digits = 0; i < len && isdig(s[i]); i++)
            if (++digits > 3)
                return 0;
        if (digits == 0)
            return 0;
    }
    /* "5.1.1" must stand alone: "5.1.1.2" or "5.1.1x" is something else. */
    if (i < len && s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n'
        && s[i] != ',' && s[i] != ';' && s[i] != ')' && s[i] != ':')
        return 0;
    if (out) {
        memcpy(out, s + start, i - start);
        out[i - start] = '\0';
    }
    return i;
}

/* A line is complete: check it and decide whether the reply is. */
static smtpkit_reply_status end_line(smtpkit_reply_parser *p)
{
    smtpkit_reply *r = &p->reply;
    unsigned n = r->nlines;
    unsigned off = r->line_off[n];

    if (p->col < 3)
        return fail(p, "reply line too short: a reply line starts with a 3-digit code");
    if (n == 0)
        r->code = p->line_code;
    else if (p->line_code != r->code)
        return fail(p, "inconsistent reply codes: line %u has %d, the reply began with %d",
                    n + 1, p->line_code, r->code);
    r->line_len[n] = (unsigned)(r->text_len - off);
    r->nlines = n + 1;

    if (p->sep == '-') {
        if (r->nlines == SMTPKIT_REPLY_MAX_LINES)
            return fail(p, "reply has more than %d lines", SMTPKIT_REPLY_MAX_LINES);
        r->text[r->text_len++] = '\n';
        r->line_off[r->nlines] = (unsigned)r->text_len;
        p->col = 0;
        p->sep = 0;
        p->line_code = 0;
        return SMTPKIT_REPLY_MORE;
    }
    r->text[r->text_len] = '\0';
    /* RFC 2034 puts the enhanced code on every line; some servers put it on
     * the last line only. */
    if (!smtpkit_enhanced_scan(r->text + r->line_off[0], r->line_len[0], r->code / 100,
                               r->enhanced))
        smtpkit_enhanced_scan(r->text + r->line_off[n], r->line_len[n], r->code / 100,
                              r->enhanced);
    p->done = 1;
    return SMTPKIT_REPLY_DONE;
}

smtpkit_reply_status smtpkit_reply_parser_feed(smtpkit_reply_parser *p,
                                               const char *buf, size_t len,
                                               size_t *used)
{
    size_t i;
    smtpkit_reply_status st = SMTPKIT_REPLY_MORE;

    if (p->error[0]) {
        if (used)
            *used = 0;
        return SMTPKIT_REPLY_ERROR;
    }
    if (p->done)
        smtpkit_reply_parser_init(p);

    for (i = 0; i < len && st == SMTPKIT_REPLY_MORE; i++) {
        char c = buf[i];
        smtpkit_reply *r = &p->reply;

        if (p->saw_cr) {
            if (c != '\n')
                st = fail(p, "bare CR in reply line %u (lines end with CRLF)", r->nlines + 1);
            else {
                p->saw_cr = 0;
                st = end_line(p);
            }
            continue;
        }
        if (c == '\r') {
            p->saw_cr = 1;
            continue;
        }
        if (c == '\n') {
            st = fail(p, "reply line %u ends with a bare LF (lines end with CRLF)",
                      r->nlines + 1);
            continue;
        }
        if (p->col < 3) {
            /* RFC 5321 4.2: first digit 2-5, second 0-5, third 0-9. */
            int ok = isdig(c) && (p->col != 0 || (c >= '2' && c <= '5'))
                     && (p->col != 1 || c <= '5');
            if (!ok)
                st = fail(p, "malformed reply code in line %u: byte 0x%02x at column %u",
                          r->nlines + 1, (unsigned char)c, p->col + 1);
            else {
                p->line_code = p->line_code * 10 + (c - '0');
                if (r->nlines == 0 && p->col == 0)
                    r->line_off[0] = 0;
            }
        } else if (p->col == 3) {
            if (c != '-' && c != ' ')
                st = fail(p, "reply code in line %u is followed by 0x%02x, not ' ' or '-'",
                          r->nlines + 1, (unsigned char)c);
            else
                p->sep = c;
        } else {
            if (p->col + 2 >= SMTPKIT_REPLY_MAX_LINE)
                st = fail(p, "reply line %u is longer than %d octets", r->nlines + 1,
                          SMTPKIT_REPLY_MAX_LINE);
            else if (r->text_len >= SMTPKIT_REPLY_MAX_TEXT)
                st = fail(p, "reply is longer than %d octets of text", SMTPKIT_REPLY_MAX_TEXT);
            else
                r->text[r->text_len++] = c;
        }
        p->col++;
    }
    if (used)
        *used = i;
    return st;
}
