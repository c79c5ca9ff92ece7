/* C unit test of the classifier, run under valgrind by `make ctest`: the C
 * API without Lua (seed rows, parsed replies, the rule enumeration, the
 * first use from two threads at once). */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "classify.h"
#include "reply.h"

static int failures;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: CHECK(%s)\n", __FILE__, __LINE__, #c); failures++; } } while (0)

static smtpkit_verdict classify(const char *s)
{
    smtpkit_verdict v;
    smtpkit_classify(s, strlen(s), &v);
    return v;
}

static void *worker(void *arg)
{
    int i, *ok = arg;
    for (i = 0; i < 200; i++) {
        smtpkit_verdict v = classify("550 5.1.1 <a@example.org>: Recipient address rejected: "
                                     "User unknown in local recipient table");
        if (v.reason != SMTPKIT_REASON_USER_UNKNOWN)
            *ok = 0;
    }
    return NULL;
}

int main(void)
{
    static smtpkit_reply_parser p;
    const char *gmail = "550-5.1.1 The email account that you tried to reach does not exist.\r\n"
                        "550 5.1.1 https://support.google.com/mail/?p=NoSuchUser gsmtp\r\n";
    smtpkit_verdict v;
    pthread_t t1, t2;
    int ok1 = 1, ok2 = 1;
    size_t i, n;

    /* First use from two threads: the phrase index is built exactly once. */
    CHECK(pthread_create(&t1, NULL, worker, &ok1) == 0);
    CHECK(pthread_create(&t2, NULL, worker, &ok2) == 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    CHECK(ok1 && ok2);

    v = classify("250 Queued mail for delivery");
    CHECK(v.code == 250 && v.outcome == SMTPKIT_OUTCOME_DELIVERED && !v.retry);
    CHECK(v.text_len == 24 && memcmp(v.text, "Queued mail for delivery", 24) == 0);
    v = classify("421 Message from (192.0.2.7) temporarily deferred");
    CHECK(v.outcome == SMTPKIT_OUTCOME_DEFERRED && v.retry && v.action == SMTPKIT_ACTION_REDUCE_RATE);
    v = classify("550 You are temporarily blocked from sending emails due to repeated bad requests.");
    CHECK(v.outcome == SMTPKIT_OUTCOME_BLOCKED && v.reason == SMTPKIT_REASON_RATE_LIMITED && !v.retry);
    v = classify("554 ERROR: Mail refused");
    CHECK(v.outcome == SMTPKIT_OUTCOME_BOUNCED && v.action == SMTPKIT_ACTION_REMOVE_ADDRESS);
    v = classify("");
    CHECK(v.outcome == SMTPKIT_OUTCOME_UNKNOWN && v.code == 0 && v.enhanced[0] == '\0');
    CHECK(strcmp(v.explanation, "Delayed Bounce - Unable to Parse Server Reason") == 0);
    smtpkit_classify(NULL, 0, &v);
    CHECK(v.outcome == SMTPKIT_OUTCOME_UNKNOWN);

    v = classify("host mx.example.com[192.0.2.1] said: 552 5.2.2 Over quota (in reply to RCPT TO command)");
    CHECK(v.code == 552 && strcmp(v.enhanced, "5.2.2") == 0 && v.reason == SMTPKIT_REASON_MAILBOX_FULL);
    CHECK(v.text_len == 10 && memcmp(v.text, "Over quota", 10) == 0);

    /* A parsed reply. */
    smtpkit_reply_parser_init(&p);
    CHECK(smtpkit_reply_parser_feed(&p, gmail, strlen(gmail), NULL) == SMTPKIT_REPLY_DONE);
    smtpkit_classify_reply(&p.reply, &v);
    CHECK(v.code == 550 && strcmp(v.enhanced, "5.1.1") == 0);
    CHECK(v.outcome == SMTPKIT_OUTCOME_BOUNCED && v.reason == SMTPKIT_REASON_USER_UNKNOWN);
    CHECK(v.text_len > 0 && strncmp(v.text, "The email account", 17) == 0);

    /* Parts whose classes disagree: the enhanced code is dropped. */
    smtpkit_classify_parts(550, "4.2.2", "mailbox full", 12, &v);
    CHECK(v.enhanced[0] == '\0' && v.outcome == SMTPKIT_OUTCOME_BOUNCED);
    smtpkit_classify_parts(452, "4.5.3", "4.5.3 Too many recipients", 25, &v);
    CHECK(v.outcome == SMTPKIT_OUTCOME_DEFERRED && v.reason == SMTPKIT_REASON_TOO_MANY_RECIPIENTS);
    CHECK(v.text_len == 19);

    /* Names. */
    CHECK(strcmp(smtpkit_outcome_name(SMTPKIT_OUTCOME_BLOCKED), "blocked") == 0);
    CHECK(strcmp(smtpkit_reason_name(SMTPKIT_REASON_GREYLISTED), "greylisted") == 0);
    CHECK(strcmp(smtpkit_action_name(SMTPKIT_ACTION_FIX_REPUTATION), "fix_reputation") == 0);
    CHECK(smtpkit_outcome_name(SMTPKIT_OUTCOME_COUNT) == NULL);
    CHECK(smtpkit_reason_name((smtpkit_reason)-1) == NULL);
    CHECK(smtpkit_action_name(SMTPKIT_ACTION_COUNT) == NULL);

    /* The rules. */
    n = smtpkit_classify_rule_count();
    CHECK(n > 400);
    for (i = 0; i < n; i++) {
        smtpkit_rule_info info;
        CHECK(smtpkit_classify_rule(i, &info));
        CHECK(info.match && info.match[0] && smtpkit_reason_name(info.reason));
        if (smtpkit_classify_rule_verdict(i, 5, &v)) {
            CHECK(smtpkit_outcome_name(v.outcome) && smtpkit_action_name(v.action));
            CHECK(v.explanation != NULL);
        }
    }
    {
        smtpkit_rule_info info;
        CHECK(!smtpkit_classify_rule(n, &info));
        CHECK(!smtpkit_classify_rule_verdict(n, 5, &v));
    }

    if (failures)
        return 1;
    puts("test_classify: ok");
    return 0;
}
