/*
 * data.h - the DATA encoder: a message body becomes the bytes that follow
 * "DATA" (RFC 5321 section 4.5.2), streaming, in bounded memory.
 *
 *  - every line ending (bare LF, bare CR, CRLF) becomes CRLF;
 *  - a line that starts with '.' gets one more '.' (dot-stuffing);
 *  - the end writes a CRLF when the body does not end with one, then ".CRLF";
 *  - a line longer than SMTPKIT_DATA_MAX_LINE octets (CRLF not counted) is an
 *    error, unless the encoder was told to pass long lines as they are.
 *
 * No input can end DATA early or smuggle a command (the SMTP smuggling class,
 * CVE-2023-51764): a "." alone on a line can only come from
 * smtpkit_data_finish, since every CR and LF of the input is normalised and
 * every line that starts with '.' is stuffed, whatever the chunk boundaries.
 *
 * The encoder is a plain struct the caller owns: no allocation, nothing to
 * free. State carries across calls: a CR at the end of one chunk and an LF at
 * the start of the next are one line end; a '.' at the start of a chunk after
 * a line end is stuffed.
 */
#ifndef SMTPKIT_DATA_H
#define SMTPKIT_DATA_H

#include <stddef.h>

#define SMTPKIT_DATA_MAX_LINE 998   /* RFC 5321 4.5.3.1.6: 1000 with CRLF */
#define SMTPKIT_DATA_END_MAX  5     /* bytes smtpkit_data_finish may write */

typedef struct smtpkit_data_encoder {
    size_t line_len;     /* octets of the current line written so far */
    int skip_lf;         /* the last input byte was a CR (its CRLF is out): an LF
                          * starting the next chunk belongs to it */
    int pass_long;       /* 1: lines over SMTPKIT_DATA_MAX_LINE pass as they are */
    int failed;          /* 1 after an error; sticky until init */
    unsigned long long in_total;    /* input octets consumed */
    unsigned long long out_total;   /* output octets produced (finish included) */
} smtpkit_data_encoder;

typedef enum {
    SMTPKIT_DATA_OK = 0,          /* consumed what fitted (see *in_used) */
    SMTPKIT_DATA_LINE_TOO_LONG = -1
} smtpkit_data_status;

/* Prepares e for a new body. pass_long_lines: 1 to let lines longer than
 * SMTPKIT_DATA_MAX_LINE through (the caller knows the peer takes them). */
void smtpkit_data_init(smtpkit_data_encoder *e, int pass_long_lines);

/* Encodes in[0..inlen) into out[0..outcap). Consumes as much input as fits:
 * *in_used and *out_used say how much was consumed and written (never more
 * than outcap). Every input byte needs at most 2 output bytes, so outcap >= 2
 * always makes progress while input remains. Returns SMTPKIT_DATA_OK, or
 * SMTPKIT_DATA_LINE_TOO_LONG (the output written before the long line stays
 * valid in out[0..*out_used); the encoder is then failed). */
smtpkit_data_status smtpkit_data_encode(smtpkit_data_encoder *e,
                                        const char *in, size_t inlen, size_t *in_used,
                                        char *out, size_t outcap, size_t *out_used);

/* Ends the body: writes the missing CRLF (if any) and ".\r\n" into out, which
 * must have SMTPKIT_DATA_END_MAX bytes. Returns the number of bytes written. */
size_t smtpkit_data_finish(smtpkit_data_encoder *e, char *out);

/* Encodes a whole body in one call into a buffer the function allocates with
 * malloc (the caller frees it); *outlen gets its length. end: 1 to append the
 * end of data too. Returns NULL when a line is too long (*outlen = 0) or
 * memory runs out (*outlen = 1). For tests and small bodies. */
char *smtpkit_data_encode_all(const char *in, size_t inlen, int pass_long_lines,
                              int end, size_t *outlen);

#endif
