/* C unit test of the reply parser, run under valgrind by `make ctest`. */
#include <stdio.h>
#include <string.h>

#include "reply.h"

static int failures;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: CHECK(%s)\n", __FILE__, __LINE__, #c); failures++; } } while (0)

int main(void)
{
    static smtpkit_reply_parser p;
    const char *s = "250-a\r\n250-b\r\n250 2.0.0 c\r\n220 x\r\n";
    size_t used, len = strlen(s), i;
    int done = 0;

    smtpkit_reply_parser_init(&p);
    CHECK(smtpkit_reply_parser_feed(&p, s, len, &used) == SMTPKIT_REPLY_DONE);
    CHECK(used == len - 7);
    CHECK(p.reply.code == 250 && p.reply.nlines == 3);
    CHECK(strcmp(p.reply.enhanced, "2.0.0") == 0);
    CHECK(strcmp(p.reply.text, "a\nb\n2.0.0 c") == 0);
    CHECK(smtpkit_reply_parser_feed(&p, s + used, len - used, &used) == SMTPKIT_REPLY_DONE);
    CHECK(p.reply.code == 220);

    /* One byte at a time. */
    smtpkit_reply_parser_init(&p);
    for (i = 0; i < len; i++)
        if (smtpkit_reply_parser_feed(&p, s + i, 1, &used) == SMTPKIT_REPLY_DONE)
            done++;
    CHECK(done == 2);

    smtpkit_reply_parser_init(&p);
    CHECK(smtpkit_reply_parser_feed(&p, "550 x\n", 6, NULL) == SMTPKIT_REPLY_ERROR);
    CHECK(strstr(smtpkit_reply_parser_error(&p), "bare LF") != NULL);

    if (failures)
        return 1;
    puts("test_reply: ok");
    return 0;
}
