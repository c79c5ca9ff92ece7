/*
 * classify.c - an SMTP reply, in any wrapping, becomes outcome, reason,
 * action, retry and one human line. The rules are data (classify_rules.h);
 * this file finds the reply in the input, matches the phrases, and applies
 * the decision rule of classification.md section 1.1.
 *
 * Phrase matching is one pass over the text: an index of the phrases by
 * their first bytes (built once on first use under pthread_once, read-only
 * after) says at each position which few phrases can start there. Nothing
 * is allocated.
 */
#include "classify.h"
#include "classify_rules.h"

#include <pthread.h>
#include <string.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define NPHRASES COUNT(classify_phrases)
#define NHINTS COUNT(classify_hints)
#define NMATCH (NPHRASES + NHINTS)
#define NENHANCED COUNT(classify_enhanced_codes)
#define NCODES COUNT(classify_codes)

static const char *const outcome_names[SMTPKIT_OUTCOME_COUNT] = {
    "delivered", "deferred", "bounced", "blocked", "unknown"
};

static const char *const reason_names[SMTPKIT_REASON_COUNT] = {
    "accepted", "user_unknown", "invalid_address", "domain_not_found",
    "mailbox_disabled", "mailbox_full", "message_too_large", "message_invalid",
    "spam_content", "virus_detected", "blocklisted", "reputation", "auth_failed",
    "reverse_dns", "sender_rejected", "tls_required", "auth_required",
    "relay_denied", "policy", "rate_limited", "too_many_connections",
    "too_many_recipients", "greylisted", "temporary_failure", "network_error",
    "routing_error", "protocol_error", "expired", "suppressed", "unknown"
};

static const char *const action_names[SMTPKIT_ACTION_COUNT] = {
    "none", "retry", "reduce_rate", "remove_address", "fix_message",
    "fix_configuration", "fix_reputation", "review"
};

const char *smtpkit_outcome_name(smtpkit_outcome o)
{
    return (unsigned)o < SMTPKIT_OUTCOME_COUNT ? outcome_names[o] : NULL;
}

const char *smtpkit_reason_name(smtpkit_reason r)
{
    return (unsigned)r < SMTPKIT_REASON_COUNT ? reason_names[r] : NULL;
}

const char *smtpkit_action_name(smtpkit_action a)
{
    return (unsigned)a < SMTPKIT_ACTION_COUNT ? action_names[a] : NULL;
}

/* Per reason: is a 5xx a refusal of the sender (blocked), the action for a
 * permanent and for a transient reply, and one human line for each. */
typedef struct {
    unsigned char blocked;
    unsigned char action_final, action_deferred;
    const char *final, *deferred;
} reason_info;

#define A(x) SMTPKIT_ACTION_##x
static const reason_info reasons[SMTPKIT_REASON_COUNT] = {
    [SMTPKIT_REASON_ACCEPTED] = { 0, A(NONE), A(NONE),
        "The receiving server accepted the message",
        "The receiving server accepted the message" },
    [SMTPKIT_REASON_USER_UNKNOWN] = { 0, A(REMOVE_ADDRESS), A(RETRY),
        "The mailbox does not exist: remove this address from the list (it may be mistyped)",
        "The server does not know this mailbox for now: it will be retried" },
    [SMTPKIT_REASON_INVALID_ADDRESS] = { 0, A(REMOVE_ADDRESS), A(RETRY),
        "The address is not valid: remove it from the list",
        "The server refused the address for now: it will be retried" },
    [SMTPKIT_REASON_DOMAIN_NOT_FOUND] = { 0, A(REMOVE_ADDRESS), A(RETRY),
        "The recipient's domain does not exist or accepts no mail: remove this address",
        "The recipient's domain could not be resolved for now: it will be retried" },
    [SMTPKIT_REASON_MAILBOX_DISABLED] = { 0, A(REMOVE_ADDRESS), A(RETRY),
        "The mailbox is disabled or inactive: remove this address if it repeats",
        "The mailbox is disabled for now: it will be retried" },
    [SMTPKIT_REASON_MAILBOX_FULL] = { 0, A(REMOVE_ADDRESS), A(RETRY),
        "The mailbox is full; not retried: a full mailbox is often abandoned, "
        "remove the address if it repeats",
        "The mailbox is full for now: it will be retried" },
    [SMTPKIT_REASON_MESSAGE_TOO_LARGE] = { 0, A(FIX_MESSAGE), A(FIX_MESSAGE),
        "The message is larger than the server accepts: shorten it or remove attachments",
        "The message is too large for the server now: shorten it or remove attachments" },
    [SMTPKIT_REASON_MESSAGE_INVALID] = { 0, A(FIX_MESSAGE), A(FIX_MESSAGE),
        "The message is not acceptable as formatted (headers, MIME, line endings): fix the message",
        "The server could not take the message as formatted: fix the message" },
    [SMTPKIT_REASON_SPAM_CONTENT] = { 1, A(FIX_MESSAGE), A(FIX_MESSAGE),
        "The content was judged spam: review the message and the sender's reputation",
        "The content looks like spam to the server: review the message" },
    [SMTPKIT_REASON_VIRUS_DETECTED] = { 1, A(FIX_MESSAGE), A(FIX_MESSAGE),
        "A virus or a forbidden attachment was found: remove it from the message",
        "A virus or a forbidden attachment was found: remove it from the message" },
    [SMTPKIT_REASON_BLOCKLISTED] = { 1, A(FIX_REPUTATION), A(FIX_REPUTATION),
        "The sending IP or domain is on a block list: request delisting; the address is fine",
        "The sending IP or domain is on a block list: request delisting" },
    [SMTPKIT_REASON_REPUTATION] = { 1, A(FIX_REPUTATION), A(REDUCE_RATE),
        "The sender's reputation is too low: improve it (complaints, volume); the address is fine",
        "Deferred because of the sender's reputation or complaints: send less to this domain" },
    [SMTPKIT_REASON_AUTH_FAILED] = { 1, A(FIX_CONFIGURATION), A(FIX_CONFIGURATION),
        "SPF, DKIM or DMARC did not pass: fix the sending domain's authentication",
        "SPF, DKIM or DMARC did not pass: fix the sending domain's authentication" },
    [SMTPKIT_REASON_REVERSE_DNS] = { 1, A(FIX_CONFIGURATION), A(FIX_CONFIGURATION),
        "The sending IP has no valid reverse DNS (PTR): fix it",
        "The sending IP has no valid reverse DNS (PTR): fix it" },
    [SMTPKIT_REASON_SENDER_REJECTED] = { 1, A(FIX_CONFIGURATION), A(FIX_CONFIGURATION),
        "The envelope sender or HELO name was refused: fix the sender address or host name",
        "The envelope sender or HELO name was refused for now: check the sender address" },
    [SMTPKIT_REASON_TLS_REQUIRED] = { 1, A(FIX_CONFIGURATION), A(FIX_CONFIGURATION),
        "The server requires TLS (or TLS failed): enable or fix STARTTLS",
        "The server requires TLS (or TLS failed): enable or fix STARTTLS" },
    [SMTPKIT_REASON_AUTH_REQUIRED] = { 1, A(FIX_CONFIGURATION), A(FIX_CONFIGURATION),
        "SMTP authentication is required or the credentials were refused: fix the login",
        "SMTP authentication failed for now: check the login" },
    [SMTPKIT_REASON_RELAY_DENIED] = { 1, A(FIX_CONFIGURATION), A(FIX_CONFIGURATION),
        "The server will not relay this mail: send through an authorised server",
        "The server will not relay this mail now: check the relay configuration" },
    [SMTPKIT_REASON_POLICY] = { 1, A(REVIEW), A(RETRY),
        "Refused by the receiver's policy, not because of the address: review or contact the recipient",
        "Deferred by the receiver's policy: it will be retried" },
    [SMTPKIT_REASON_RATE_LIMITED] = { 1, A(REDUCE_RATE), A(REDUCE_RATE),
        "The sender sent too much too fast and is blocked for now: reduce the sending rate",
        "Deferred for sending too much too fast: it will be retried; send fewer messages to this domain" },
    [SMTPKIT_REASON_TOO_MANY_CONNECTIONS] = { 1, A(REDUCE_RATE), A(REDUCE_RATE),
        "Too many connections from the sender: use fewer connections",
        "Too many connections from the sender: it will be retried; use fewer connections" },
    [SMTPKIT_REASON_TOO_MANY_RECIPIENTS] = { 0, A(RETRY), A(RETRY),
        "Too many recipients in one transaction: send the rest in a new transaction",
        "Too many recipients in one transaction: send the rest in a new transaction" },
    [SMTPKIT_REASON_GREYLISTED] = { 0, A(REVIEW), A(RETRY),
        "Greylisted: the server asks to try again",
        "Greylisted: the server asks to try again later; it will be retried" },
    [SMTPKIT_REASON_TEMPORARY_FAILURE] = { 0, A(REVIEW), A(RETRY),
        "The receiving server failed (busy, internal error) and gave up",
        "A temporary problem on the receiving server: it will be retried" },
    [SMTPKIT_REASON_NETWORK_ERROR] = { 0, A(REVIEW), A(RETRY),
        "The receiving server could not be reached (timeout, refused, DNS)",
        "The receiving server could not be reached for now: it will be retried" },
    [SMTPKIT_REASON_ROUTING_ERROR] = { 0, A(REVIEW), A(RETRY),
        "A mail loop or a routing problem: review the recipient's forwarding",
        "A routing problem for now: it will be retried" },
    [SMTPKIT_REASON_PROTOCOL_ERROR] = { 0, A(FIX_CONFIGURATION), A(FIX_CONFIGURATION),
        "The SMTP dialogue was refused (syntax, sequence, parameters): fix the client",
        "The SMTP dialogue was refused for now: check the client" },
    [SMTPKIT_REASON_EXPIRED] = { 0, A(REVIEW), A(RETRY),
        "The message could not be delivered in time and was given up",
        "Delivery is delayed: it will be retried" },
    [SMTPKIT_REASON_SUPPRESSED] = { 0, A(NONE), A(NONE),
        "Not sent: the address is on a suppression list",
        "Not sent: the address is on a suppression list" },
    [SMTPKIT_REASON_UNKNOWN] = { 0, A(REVIEW), A(RETRY),
        "The server refused the message without a recognisable reason: review it",
        "A temporary failure without a recognisable reason: it will be retried" },
};
#undef A

static const char unparsed[] = "Delayed Bounce - Unable to Parse Server Reason";
static const char intermediate[] = "An intermediate reply (3xx): not a final answer";
static const char rcpt_rate[] =
    "The recipient is receiving mail faster than its provider allows: try again much later";

/* --- the phrase matcher ------------------------------------------------ */

/* Each phrase is keyed by the first bytes of its first fragment, lowercased:
 * 8 of them (K8), or 4 (K4, fragments of 4 to 7 bytes), or 3 (K3). At each
 * text position (a sliding window of 8 lowercased bytes), a bitmap of the
 * hashes of the keys' first three bytes says whether any key can start here
 * (a few positions in a hundred pass); only then is the window hashed into
 * the three bucket tables, whose phrases (in priority order) are compared as one
 * 64-bit word and then verified to the end. Positions are independent,
 * everything fits in a few KB, and nothing is re-scanned per phrase. Built
 * once, on first use, under pthread_once; read-only after. */
#define KEY_BITS 11
#define KEY_BUCKETS (1u << KEY_BITS)
enum { K8, K4, K3, NKEYS };

typedef unsigned long long u64;

static struct {
    unsigned char lower[256];
    unsigned char tri[65536 / 8];           /* bit per hash of a key's first 3 bytes */
    unsigned short start[NKEYS][KEY_BUCKETS + 1];
    unsigned short rule[NKEYS][NMATCH];
    u64 key[NMATCH];                        /* the first min(8, n) bytes of fragment 1 */
    unsigned char klen[NMATCH];
} ix;
static pthread_once_t ix_once = PTHREAD_ONCE_INIT;

static inline unsigned char lc(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

static inline unsigned key_hash(u64 k)
{
    return (unsigned)((k * 0x9E3779B97F4A7C15ull) >> (64 - KEY_BITS));
}

static inline unsigned tri_hash(u64 w)
{
    return (unsigned)(((w & 0xFFFFFFull) * 0x9E3779B97F4A7C15ull) >> 48);
}

static const u64 key_mask[9] = {
    0, 0xFFull, 0xFFFFull, 0xFFFFFFull, 0xFFFFFFFFull, 0xFFFFFFFFFFull,
    0xFFFFFFFFFFFFull, 0xFFFFFFFFFFFFFFull, ~0ull
};

static const classify_phrase *phrase_at(size_t i)
{
    return i < NPHRASES ? &classify_phrases[i] : &classify_hints[i - NPHRASES];
}

static unsigned first_len(const char *p)
{
    unsigned n = 0;
    while (p[n] && p[n] != '*')
        n++;
    return n;
}

/* Which table a phrase is in, and the part of its key that is hashed. */
static int key_kind(unsigned n) { return n >= 8 ? K8 : n >= 4 ? K4 : K3; }
static const unsigned kind_len[NKEYS] = { 8, 4, 3 };

static void build_index(void)
{
    static unsigned short count[NKEYS][KEY_BUCKETS];
    unsigned i, c, j;

    for (c = 0; c < 256; c++)
        ix.lower[c] = lc((unsigned char)c);
    for (i = 0; i < NMATCH; i++) {          /* phrases have >= 3 bytes: classify_spec */
        const unsigned char *p = (const unsigned char *)phrase_at(i)->phrase;
        unsigned n = first_len((const char *)p), t;
        int k = key_kind(n);
        ix.klen[i] = (unsigned char)(n < 8 ? n : 8);
        for (j = 0; j < ix.klen[i]; j++)
            ix.key[i] |= (u64)p[j] << (8 * j);
        t = tri_hash(ix.key[i]);
        ix.tri[t >> 3] |= (unsigned char)(1u << (t & 7));
        count[k][key_hash(ix.key[i] & key_mask[kind_len[k]])]++;
    }
    for (j = 0; j < NKEYS; j++)
        for (c = 0; c < KEY_BUCKETS; c++) {
            ix.start[j][c + 1] = (unsigned short)(ix.start[j][c] + count[j][c]);
            count[j][c] = 0;
        }
    for (i = 0; i < NMATCH; i++) {          /* ascending: priority order per bucket */
        int k = key_kind(first_len(phrase_at(i)->phrase));
        unsigned h = key_hash(ix.key[i] & key_mask[kind_len[k]]);
        ix.rule[k][ix.start[k][h] + count[k][h]++] = (unsigned short)i;
    }
}

/* Finds fragment f (n bytes, lowercase) in s[from..len), ignoring case;
 * returns the position after it, or 0 when absent. */
static size_t find_fragment(const char *f, size_t n, const char *s, size_t from, size_t len)
{
    size_t i, j;
    for (i = from; i + n <= len; i++) {
        for (j = 0; j < n && lc((unsigned char)s[i + j]) == (unsigned char)f[j]; j++)
            ;
        if (j == n)
            return i + n;
    }
    return 0;
}

/* Does the first fragment of phrase p match s at position i? Returns the
 * position after it (0: no), and *rest points at the later fragments ("*b"),
 * or at the phrase's end. */
static size_t head_matches(const char *p, const char *s, size_t len, size_t i,
                           size_t known, const char **rest)
{
    size_t j = known;                   /* the key's bytes are already compared */
    while (p[j] && p[j] != '*') {
        if (i + j >= len || lc((unsigned char)s[i + j]) != (unsigned char)p[j])
            return 0;
        j++;
    }
    *rest = p + j;
    return i + j;
}

/* Are the later fragments ("*b*c") in s[pos..len), in this order? */
static int rest_matches(const char *rest, const char *s, size_t pos, size_t len)
{
    while (*rest == '*') {
        const char *f = rest + 1;
        size_t n = 0;
        while (f[n] && f[n] != '*')
            n++;
        pos = find_fragment(f, n, s, pos, len);
        if (!pos)
            return 0;
        rest = f + n;
    }
    return 1;
}

/* The phrases of one bucket that match at position i, best first; updates
 * *best, or queues phrases with later fragments (see match_phrases). w holds
 * the 8 lowercased bytes at i (0 past the end). */
struct pending {
    unsigned rule;
    size_t pos;
    const char *rest;
};
#define PENDING_MAX 16

static void try_bucket(int kind, unsigned h, u64 w, const char *s, size_t len, size_t i,
                       size_t *best, struct pending *pending, size_t *npending,
                       unsigned char *seen)
{
    unsigned k, end = ix.start[kind][h + 1];
    for (k = ix.start[kind][h]; k < end; k++) {
        unsigned r = ix.rule[kind][k];
        const char *rest;
        size_t pos;
        if (r >= *best)
            return;
        if ((w & key_mask[ix.klen[r]]) != ix.key[r])
            continue;
        pos = head_matches(phrase_at(r)->phrase, s, len, i, ix.klen[r], &rest);
        if (!pos)
            continue;
        if (!*rest) {
            *best = r;
            return;
        }
        /* Only a phrase's first head counts: later ones leave less room for
         * its other fragments. This keeps the work linear in the text. */
        if (seen[r >> 3] & (1u << (r & 7)))
            continue;
        seen[r >> 3] |= (unsigned char)(1u << (r & 7));
        if (*npending < PENDING_MAX) {
            pending[*npending].rule = r;
            pending[*npending].pos = pos;
            pending[*npending].rest = rest;
            (*npending)++;
        } else if (rest_matches(rest, s, pos, len)) {
            *best = r;
            return;
        }
    }
}

/* The highest-priority phrase or hint found anywhere in s, or NMATCH.
 * Phrases with later fragments ("a*b") are checked after the pass, and only
 * when they would still win: their search scans the rest of the text. */
static size_t match_phrases(const char *s, size_t len)
{
    size_t best = NMATCH, i, npending = 0, k;
    struct pending pending[PENDING_MAX];
    unsigned char seen[(NMATCH + 7) / 8];
    const unsigned char *u = (const unsigned char *)s;
    u64 w = 0;

    memset(seen, 0, sizeof seen);

    pthread_once(&ix_once, build_index);
    for (i = 0; i < len && i < 8; i++)     /* w: the 8 lowercased bytes at i, 0 past the end */
        w |= (u64)ix.lower[u[i]] << (8 * i);
    for (i = 0; i + 3 <= len && best > 0; i++, w = (w >> 8)
                                                  | (i + 7 < len ? (u64)ix.lower[u[i + 7]] << 56 : 0)) {
        unsigned t = tri_hash(w), h;
        if (!(ix.tri[t >> 3] & (1u << (t & 7))))
            continue;
        if (i + 8 <= len) {
            h = key_hash(w);
            if (ix.start[K8][h] != ix.start[K8][h + 1])
                try_bucket(K8, h, w, s, len, i, &best, pending, &npending, seen);
        }
        if (i + 4 <= len) {
            h = key_hash(w & key_mask[4]);
            if (ix.start[K4][h] != ix.start[K4][h + 1])
                try_bucket(K4, h, w, s, len, i, &best, pending, &npending, seen);
        }
        h = key_hash(w & key_mask[3]);
        if (ix.start[K3][h] != ix.start[K3][h + 1])
            try_bucket(K3, h, w, s, len, i, &best, pending, &npending, seen);
    }
    for (k = 0; k < npending; k++)
        if (pending[k].rule < best
            && rest_matches(pending[k].rest, s, pending[k].pos, len))
            best = pending[k].rule;
    return best;
}

/* --- finding the reply in the input ------------------------------------- */

static int isdig(unsigned char c) { return c >= '0' && c <= '9'; }
static int isalnum_(unsigned char c)
{
    return isdig(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* An RFC 3463 code at s[i] ("5.7.606"), standing alone, of class klass (0:
 * any). Copies it to out and returns its length, or 0. */
static size_t enhanced_at(const char *s, size_t len, size_t i, int klass, char *out)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t j = i;
    int field, digits;

    if (i > 0 && (isalnum_(u[i - 1]) || u[i - 1] == '.'))
        return 0;
    if (j >= len || !(u[j] == '2' || u[j] == '4' || u[j] == '5'))
        return 0;
    if (klass && u[j] - '0' != klass)
        return 0;
    j++;
    for (field = 0; field < 2; field++) {
        if (j >= len || u[j] != '.')
            return 0;
        j++;
        for (digits = 0; j < len && isdig(u[j]); j++)
            if (++digits > 3)
                return 0;
        if (!digits)
            return 0;
    }
    if (j < len && (isalnum_(u[j]) || u[j] == '_' || u[j] == '-'
                    || (u[j] == '.' && j + 1 < len && isdig(u[j + 1]))))
        return 0;
    if (out) {
        memcpy(out, s + i, j - i);
        out[j - i] = '\0';
    }
    return j - i;
}

/* A reply code token at s[i]: three digits (first 2-5, second 0-5) not part
 * of a longer number, followed by ' ', '-', ':', a line end or the end. */
static int code_at(const char *s, size_t len, size_t i)
{
    const unsigned char *u = (const unsigned char *)s;
    if (i + 3 > len)
        return 0;
    if (i > 0 && (isalnum_(u[i - 1]) || u[i - 1] == '.' || u[i - 1] == '-'
                  || u[i - 1] == '/' || u[i - 1] == '=' || u[i - 1] == '_'))
        return 0;
    if (u[i] < '2' || u[i] > '5' || u[i + 1] < '0' || u[i + 1] > '5' || !isdig(u[i + 2]))
        return 0;
    if (i + 3 < len && !(u[i + 3] == ' ' || u[i + 3] == '-' || u[i + 3] == ':'
                         || u[i + 3] == '\r' || u[i + 3] == '\n' || u[i + 3] == '\t'))
        return 0;
    /* "550: 5.2.2" but not "2606:2800:220:6d" */
    if (i + 3 < len && u[i + 3] == ':' && i + 4 < len && u[i + 4] != ' ')
        return 0;
    return (u[i] - '0') * 100 + (u[i + 1] - '0') * 10 + (u[i + 2] - '0');
}

/* Where a reply may begin: the start, after a line end, after "said:",
 * "smtp;", a quote, a bracket or "<<<". */
static int reply_context(const char *s, size_t i)
{
    while (i > 0 && (s[i - 1] == ' ' || s[i - 1] == '\t'))
        i--;
    if (i == 0)
        return 1;
    return strchr(":;'\"(<[#>\r\n", s[i - 1]) != NULL;
}

/* Is the code at s[i] right after a DSN's "smtp;" (spaces allowed)? That
 * code is the reply, whatever codes its text quotes later ("smtp; 554 4.4.7
 * Message expired ... <421 4.4.0 ...>"). */
static int after_smtp_type(const char *s, size_t i)
{
    static const char tag[] = "smtp;";
    size_t n = sizeof tag - 1;
    while (i > 0 && (s[i - 1] == ' ' || s[i - 1] == '\t'))
        i--;
    return i >= n && find_fragment(tag, n, s, i - n, i) != 0;
}

/* Position after the code, its separator, an enhanced code of the same
 * class (copied to enh), and spaces. */
static size_t after_code(const char *s, size_t len, size_t i, int code, char *enh)
{
    size_t j = i + 3, n;
    if (j < len && (s[j] == ' ' || s[j] == '-' || s[j] == ':'))
        j++;
    while (j < len && (s[j] == ' ' || s[j] == '\t'))
        j++;
    if (j < len && s[j] == '#')
        j++;
    n = enhanced_at(s, len, j, code / 100, enh);
    if (n) {
        j += n;
        while (j < len && (s[j] == ' ' || s[j] == '\t'))
            j++;
    }
    return j;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* Trims spaces and a Postfix "(in reply to ... command)" off the end. */
static size_t trim_end(const char *s, size_t start, size_t end)
{
    static const char tail[] = "(in reply to ";
    size_t k;

    while (end > start && is_space(s[end - 1]))
        end--;
    if (end > start && s[end - 1] == ')') {
        for (k = end; k-- > start;) {
            if (s[k] == '(' ) {
                if (end - k > sizeof tail - 1
                    && find_fragment(tail, sizeof tail - 1, s, k, k + sizeof tail - 1))
                    end = k;
                break;
            }
        }
        while (end > start && is_space(s[end - 1]))
            end--;
    }
    return end;
}

/* --- the decision ------------------------------------------------------- */

static const classify_enhanced *enhanced_entry(const char *enh)
{
    int subj = 0, det = 0;
    size_t i;
    const char *p = enh + 2;

    while (isdig((unsigned char)*p))
        subj = subj * 10 + (*p++ - '0');
    if (*p++ != '.')
        return NULL;
    while (isdig((unsigned char)*p))
        det = det * 10 + (*p++ - '0');
    for (i = 0; i < NENHANCED; i++) {
        const classify_enhanced *e = &classify_enhanced_codes[i];
        if (e->subject == subj && det >= e->lo && det <= e->hi)
            return e;
    }
    return NULL;
}

static const classify_code *code_entry(int code)
{
    size_t i;
    for (i = 0; i < NCODES; i++)
        if (code >= classify_codes[i].lo && code <= classify_codes[i].hi)
            return &classify_codes[i];
    return NULL;
}

static int transient_by_nature(smtpkit_reason r)
{
    return r == SMTPKIT_REASON_GREYLISTED || r == SMTPKIT_REASON_TEMPORARY_FAILURE
           || r == SMTPKIT_REASON_NETWORK_ERROR || r == SMTPKIT_REASON_TOO_MANY_CONNECTIONS
           || r == SMTPKIT_REASON_TOO_MANY_RECIPIENTS;
}

/* Outcome, action, retry and explanation from the class (2..5, 0: no code
 * at all), the reason and the rule that chose it. */
static void finish(smtpkit_verdict *out, int klass, smtpkit_reason reason, unsigned flags,
                   int action, const char *explanation)
{
    const reason_info *ri;

    if (klass == 2 || (klass == 0 && reason == SMTPKIT_REASON_ACCEPTED)) {
        out->outcome = SMTPKIT_OUTCOME_DELIVERED;
        out->reason = SMTPKIT_REASON_ACCEPTED;
        out->action = SMTPKIT_ACTION_NONE;
        out->retry = 0;
        out->explanation = reasons[SMTPKIT_REASON_ACCEPTED].final;
        return;
    }
    if (klass == 3 || (klass == 0 && reason == SMTPKIT_REASON_UNKNOWN)) {
        out->outcome = SMTPKIT_OUTCOME_UNKNOWN;
        out->reason = SMTPKIT_REASON_UNKNOWN;
        out->action = SMTPKIT_ACTION_REVIEW;
        out->retry = 0;
        out->explanation = klass == 3 ? intermediate : unparsed;
        return;
    }
    ri = &reasons[reason];
    out->reason = reason;
    if (klass == 4 || reason == SMTPKIT_REASON_TOO_MANY_RECIPIENTS
        || (klass == 0 && transient_by_nature(reason))) {
        out->outcome = SMTPKIT_OUTCOME_DEFERRED;
        out->retry = 1;
        out->action = (smtpkit_action)ri->action_deferred;
        out->explanation = ri->deferred;
    } else {
        int rcpt = reason == SMTPKIT_REASON_RATE_LIMITED && (flags & SMTPKIT_RULE_RCPT_SIDE);
        out->outcome = ri->blocked && !rcpt ? SMTPKIT_OUTCOME_BLOCKED : SMTPKIT_OUTCOME_BOUNCED;
        out->retry = 0;
        out->action = (smtpkit_action)ri->action_final;
        out->explanation = rcpt ? rcpt_rate : ri->final;
    }
    if (action >= 0)
        out->action = (smtpkit_action)action;
    if (explanation)
        out->explanation = explanation;
}

/* Decides from code (0: none), enhanced ("" : none) and the text to search
 * for phrases. Fills every field of out but text. */
static void decide(smtpkit_verdict *out, const char *search, size_t search_len)
{
    int klass = out->code ? out->code / 100 : (out->enhanced[0] ? out->enhanced[0] - '0' : 0);
    const classify_enhanced *e = NULL;
    const classify_code *c = NULL;
    size_t best;
    smtpkit_reason reason = SMTPKIT_REASON_UNKNOWN;
    unsigned flags = 0;
    int action = -1;
    const char *expl = NULL;

    if (klass == 2 || klass == 3) {
        finish(out, klass, SMTPKIT_REASON_ACCEPTED, 0, -1, NULL);
        return;
    }
    best = match_phrases(search, search_len);
    if (best < NMATCH && klass != 0 && phrase_at(best)->reason == SMTPKIT_REASON_ACCEPTED)
        best = NMATCH;                  /* "queued as" says nothing in a 4xx/5xx */
    if (out->enhanced[0])
        e = enhanced_entry(out->enhanced);
    if (e && klass != 0 && e->reason == SMTPKIT_REASON_ACCEPTED)
        e = NULL;

    if (best < NPHRASES) {
        reason = classify_phrases[best].reason;
        flags = classify_phrases[best].flags;
    } else if (e && !(e->flags & SMTPKIT_RULE_GENERIC)) {
        reason = e->reason;
    } else if (best < NMATCH) {
        reason = phrase_at(best)->reason;
        flags = phrase_at(best)->flags;
    } else if (e && e->reason != SMTPKIT_REASON_UNKNOWN) {
        reason = e->reason;
    } else if (out->code && (c = code_entry(out->code)) != NULL) {
        reason = c->reason;
        action = c->action;
        expl = c->explanation;
    } else if (klass != 0) {
        reason = SMTPKIT_REASON_UNKNOWN;
    }
    finish(out, klass, reason, flags, action, expl);
}

static void reset(smtpkit_verdict *out)
{
    out->code = 0;
    out->enhanced[0] = '\0';
    out->text = NULL;
    out->text_len = 0;
}

void smtpkit_classify(const char *s, size_t len, smtpkit_verdict *out)
{
    size_t i, start = 0, text = 0, end;
    size_t first_weak = (size_t)-1, chosen = (size_t)-1;
    char enh[SMTPKIT_ENHANCED_MAX];

    reset(out);
    if (!s)
        len = 0;
    while (start < len && is_space(s[start]))
        start++;

    /* The reply code: the first one followed by an enhanced code of its
     * class or right after a DSN's "smtp;", unless the input itself starts
     * with a code. */
    for (i = start; i + 3 <= len; i++) {
        int code = code_at(s, len, i);
        if (!code)
            continue;
        enh[0] = '\0';
        after_code(s, len, i, code, enh);
        if (enh[0] || after_smtp_type(s, i)) {
            chosen = i;
            break;
        }
        if (first_weak == (size_t)-1 && reply_context(s, i)) {
            first_weak = i;
            if (i == start)
                break;
        }
    }
    if (first_weak != (size_t)-1 && (chosen == (size_t)-1 || first_weak == start))
        chosen = first_weak;

    if (chosen != (size_t)-1) {
        out->code = code_at(s, len, chosen);
        text = after_code(s, len, chosen, out->code, out->enhanced);
        if (!out->enhanced[0]) {        /* "550 ... (#5.1.1)": later in the text */
            char k = (char)('0' + out->code / 100);
            for (i = text; i < len; i++)
                if (s[i] == k && enhanced_at(s, len, i, out->code / 100, out->enhanced))
                    break;
        }
    } else {
        text = start;
        for (i = start; i < len; i++)
            if ((s[i] == '2' || s[i] == '4' || s[i] == '5')
                && enhanced_at(s, len, i, 0, out->enhanced))
                break;
    }
    end = trim_end(s, text, len);
    out->text = s ? s + text : "";
    out->text_len = end > text ? end - text : 0;
    /* Phrases are searched everywhere (wrappings say "after MAIL FROM"),
     * except in the code and enhanced code a bare reply starts with. */
    if (s && chosen == start)
        decide(out, s + text, len - text);
    else
        decide(out, s ? s : "", len);
}

void smtpkit_classify_parts(int code, const char *enhanced, const char *text,
                            size_t len, smtpkit_verdict *out)
{
    size_t n = 0, skip = 0;

    reset(out);
    if (!text)
        len = 0;
    if (code >= 200 && code <= 599)
        out->code = code;
    if (enhanced && enhanced[0]) {
        size_t elen = strlen(enhanced);
        if (elen < SMTPKIT_ENHANCED_MAX
            && enhanced_at(enhanced, elen, 0, out->code / 100, out->enhanced) != elen)
            out->enhanced[0] = '\0';
    }
    /* The parser keeps the enhanced code at the start of the text. */
    n = strlen(out->enhanced);
    if (n && len >= n && memcmp(text, out->enhanced, n) == 0 && (len == n || text[n] == ' ')) {
        skip = n;
        while (skip < len && text[skip] == ' ')
            skip++;
    }
    out->text = text ? text + skip : "";
    out->text_len = len - skip;
    decide(out, text ? text : "", len);
}

void smtpkit_classify_keyed(const char *s, size_t len, smtpkit_keyed_verdict *out)
{
    const char *e;
    unsigned key = 0;

    smtpkit_classify(s, len, &out->v);
    out->text_off = s && out->v.text_len ? (size_t)(out->v.text - s) : 0;
    /* Base 11 over "[245].d{1,3}.d{1,3}" ('.' is 10): at most 9 digits, the
     * first never 0, so distinct strings give distinct keys below 11^9. */
    for (e = out->v.enhanced; *e; e++)
        key = key * 11u + (*e == '.' ? 10u : (unsigned)(*e - '0'));
    out->enhanced_key = key;
    out->text_lines = out->v.text_len && (memchr(out->v.text, '\n', out->v.text_len)
                                          || memchr(out->v.text, '\r', out->v.text_len));
}

void smtpkit_classify_reply(const smtpkit_reply *r, smtpkit_verdict *out)
{
    smtpkit_classify_parts(r->code, r->enhanced, r->text, r->text_len, out);
}

/* --- the rules, enumerated ---------------------------------------------- */

size_t smtpkit_classify_rule_count(void)
{
    return NMATCH + NENHANCED + NCODES;
}

int smtpkit_classify_rule(size_t i, smtpkit_rule_info *out)
{
    if (i < NMATCH) {
        const classify_phrase *p = phrase_at(i);
        out->kind = i < NPHRASES ? SMTPKIT_RULE_PHRASE : SMTPKIT_RULE_HINT;
        out->match = p->phrase;
        out->reason = p->reason;
        out->flags = p->flags;
        return 1;
    }
    i -= NMATCH;
    if (i < NENHANCED) {
        out->kind = SMTPKIT_RULE_ENHANCED;
        out->match = classify_enhanced_codes[i].label;
        out->reason = classify_enhanced_codes[i].reason;
        out->flags = classify_enhanced_codes[i].flags;
        return 1;
    }
    i -= NENHANCED;
    if (i < NCODES) {
        out->kind = SMTPKIT_RULE_CODE;
        out->match = classify_codes[i].label;
        out->reason = classify_codes[i].reason;
        out->flags = 0;
        return 1;
    }
    return 0;
}

int smtpkit_classify_rule_verdict(size_t i, int klass, smtpkit_verdict *out)
{
    smtpkit_rule_info info;
    int action = -1;
    const char *expl = NULL;

    if (!smtpkit_classify_rule(i, &info))
        return 0;
    reset(out);
    if (info.kind == SMTPKIT_RULE_CODE) {
        const classify_code *c = &classify_codes[i - NMATCH - NENHANCED];
        klass = c->lo / 100;
        action = c->action;
        expl = c->explanation;
    }
    if (info.reason == SMTPKIT_REASON_ACCEPTED && (klass == 4 || klass == 5))
        return 0;                       /* never applies there */
    finish(out, klass, info.reason, info.flags, action, expl);
    return 1;
}
