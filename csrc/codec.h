/*
 * codec.h - the encoders that message composition needs (RFC 2045, 2047,
 * 2231): base64 and quoted-printable bodies, streamed in chunks with the
 * state carried across calls; RFC 2047 encoded words and RFC 2231 parameter
 * values, cut between whole UTF-8 characters; UTF-8 validation.
 *
 * Does no allocation and no I/O (except smtpkit_random_bytes, which reads
 * /dev/urandom). Every encoder writes into a buffer the caller owns, whose
 * size the matching *_bound() macro or function gives; encoder states are
 * plain structs the caller owns (nothing to free).
 */
#ifndef SMTPKIT_CODEC_H
#define SMTPKIT_CODEC_H

#include <stddef.h>

/* ---- base64 (RFC 2045 section 6.8) ---------------------------------------
 * Lines of line_len characters (a multiple of 4, at most 76; 0 = one line)
 * each followed by CRLF, the last line included when the output is not empty.
 * Feed any number of chunks of any size: the output is the same as for one
 * chunk. For whole lines per chunk, feed multiples of 57 input bytes. */
typedef struct smtpkit_b64 {
    unsigned char pend[3];  /* input bytes waiting for a full group of 3 */
    unsigned npend;
    unsigned col;           /* characters on the current output line */
    unsigned line_len;
} smtpkit_b64;

/* Output bytes one update of len input bytes may write, at most. */
#define SMTPKIT_B64_BOUND(len) (((len) / 3 + 2) * 4 + ((len) / 3 + 2) * 4 / 2 + 4)

void smtpkit_b64_init(smtpkit_b64 *e, unsigned line_len);
/* Encodes len bytes into out (SMTPKIT_B64_BOUND(len) bytes); returns the
 * number of bytes written. */
size_t smtpkit_b64_update(smtpkit_b64 *e, const unsigned char *in, size_t len, char *out);
/* Flushes the last 1 or 2 pending bytes with '=' padding and ends the last
 * line with CRLF; out needs 8 bytes. Returns bytes written. e is reset to its
 * initial state (same line length) afterwards. */
size_t smtpkit_b64_final(smtpkit_b64 *e, char *out);

/* ---- quoted-printable (RFC 2045 section 6.7) -------------------------------
 * Text mode: CRLF and bare LF become CRLF hard line breaks; a bare CR is
 * encoded as =0D (a CR at the end of one chunk waits for the next). Binary
 * mode: CR and LF are encoded (=0D, =0A), so bytes come back exactly.
 * Encoded: '=', every byte outside 33..126 except SPACE and TAB inside a line,
 * SPACE/TAB before a line break or the end, and a '.' that starts a line (so
 * no SMTP dot-stuffing is ever needed, and no relay mangles it). Lines are at
 * most 76 characters, soft breaks ("=" CRLF) included. */
typedef struct smtpkit_qp {
    unsigned col;          /* characters on the current output line */
    int binary;
    int pend_ws;           /* a SPACE or TAB not yet written, or -1 */
    int pend_cr;           /* a CR not yet written (text mode) */
} smtpkit_qp;

/* Output bytes one update of len input bytes may write, at most. */
#define SMTPKIT_QP_BOUND(len) ((len) * 3 + ((len) * 3 / 72 + 2) * 3 + 16)

void smtpkit_qp_init(smtpkit_qp *e, int binary);
size_t smtpkit_qp_update(smtpkit_qp *e, const unsigned char *in, size_t len, char *out);
/* Flushes pending whitespace/CR; out needs 16 bytes. Does not add a final
 * line break (the input decides). Resets e. */
size_t smtpkit_qp_final(smtpkit_qp *e, char *out);

/* ---- UTF-8 ----------------------------------------------------------------
 * Returns len when s is valid UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF), else the offset of the first bad byte. */
size_t smtpkit_utf8_check(const unsigned char *s, size_t len);

/* ---- RFC 2047 encoded words ------------------------------------------------
 * "=?UTF-8?B?...?=" or "=?UTF-8?Q?...?=". The Q form uses only the characters
 * RFC 2047 section 5 (3) allows in a phrase (letters, digits, ! * + - /), so
 * the words are valid in Subject and in display names alike. s must be valid
 * UTF-8 (check first). */
#define SMTPKIT_EW_MAX 75        /* RFC 2047 section 2: an encoded word's cap */
#define SMTPKIT_EW_OVERHEAD 12   /* "=?UTF-8?B?" and "?=" */

/* 'B' or 'Q': the one whose encoding of all of s is shorter (Q on a tie). */
int smtpkit_ew_choose(const unsigned char *s, size_t len);
/* Writes into out (room bytes at least) one encoded word (enc 'B' or 'Q') of
 * at most room characters (room <= SMTPKIT_EW_MAX), holding as many whole
 * characters from the start of s as fit. *used gets the bytes of s taken.
 * Returns the word's length, or 0 when not even one character fits in room
 * (or len is 0). */
size_t smtpkit_ew_word(const unsigned char *s, size_t len, int enc, size_t room,
                       char *out, size_t *used);

/* ---- RFC 2231 parameter values ---------------------------------------------
 * Percent-encodes whole UTF-8 characters from the start of s into out, at
 * most room bytes; *used gets the bytes of s taken. Characters outside
 * RFC 2231 attribute-char (and '%') are written %XX. Returns the bytes
 * written (0 when not one character fits). */
size_t smtpkit_pct_encode(const unsigned char *s, size_t len, size_t room,
                          char *out, size_t *used);

/* ---- randomness ------------------------------------------------------------
 * Fills buf with n bytes from /dev/urandom. Returns 0, or -1 (errno set). */
int smtpkit_random_bytes(unsigned char *buf, size_t n);

#endif
