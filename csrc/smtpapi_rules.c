/*
 * smtpapi_rules.c - the X-SMTPAPI rules, checked on the cJSON tree the
 * scanner (smtpapi.c) built: types of every documented key, limits, the
 * send_at/send_each_at/to/sub relations, filters and their settings,
 * unknown keys with a suggestion. Facts and sources:
 * ../shared/reference/smtpapi.md sections 1.2, 2 and 5.1.
 */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "smtpapi_int.h"

#define MAX_TO 10000
#define WARN_TO 1000
#define MAX_CATEGORIES 10
#define MAX_UNIQUE_ARGS 10000
#define MAX_ASM_DISPLAY 25
#define MAX_SCHEDULE_AHEAD (72LL * 3600)
#define MS_THRESHOLD 1e11   /* seconds past this are year 5138: milliseconds */

/* ---- rules (section 1.2, 2, 5.1) --------------------------------------- */

typedef struct {
    ctx *c;
    pathbuf p;
} rules;

static void rprob(rules *r, smtpkit_smtpapi_severity sev, const cJSON *at,
                  const char *fmt, ...)
{
    char msg[480];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    smtpkit_smtpapi_problem_at(r->c, sev, r->p.b, at ? (size_t)at->valueint : (size_t)-1, 0, "%s", msg);
}

#define ERR SMTPKIT_SMTPAPI_ERROR
#define WARN SMTPKIT_SMTPAPI_WARNING

static const char *type_name(const cJSON *x)
{
    switch (x->type & 0xFF) {
    case cJSON_Object: return "an object";
    case cJSON_Array: return "an array";
    case cJSON_String: return "a string";
    case cJSON_Number: return "a number";
    case cJSON_True: case cJSON_False: return "a boolean";
    case cJSON_NULL: return "null";
    default: return "an unknown value";
    }
}

static int is_integer(const cJSON *x)
{
    return cJSON_IsNumber(x) && !(x->type & NONINT_FLAG) && fabs(x->valuedouble) < 9007199254740992.0;
}

static size_t count_children(const cJSON *x)
{
    size_t n = 0;
    const cJSON *e;
    for (e = x->child; e; e = e->next)
        n++;
    return n;
}

/* Levenshtein distance, case-insensitive, capped inputs. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), i, j;
    size_t row[65];
    if (la > 64 || lb > 64)
        return 99;
    for (j = 0; j <= lb; j++)
        row[j] = j;
    for (i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            size_t best = diag + cost;
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static const char *suggest(const char *word, const char *const *cands)
{
    size_t best = 99, len = strlen(word), limit = len / 3 > 1 ? len / 3 : 1;
    const char *pick = NULL;
    for (; *cands; cands++) {
        size_t d = edit_distance(word, *cands);
        if (d < best) {
            best = d;
            pick = *cands;
        }
    }
    return best <= limit ? pick : NULL;
}

static void unknown_key(rules *r, const cJSON *at, const char *what, const char *key,
                        const char *const *cands)
{
    /* past the problem cap nothing is kept: skip the edit distances */
    const char *s = r->c->res->count < SMTPKIT_SMTPAPI_MAX_PROBLEMS ? suggest(key, cands) : NULL;
    if (s)
        rprob(r, WARN, at, "unknown %s \"%s\": did you mean \"%s\"? It is ignored as written",
              what, key, s);
    else
        rprob(r, WARN, at, "unknown %s \"%s\": it is ignored", what, key);
}

static int has_upper(const char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            return 1;
    return 0;
}

static int non_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return 1;
    return 0;
}

/* Bytes this string takes as JSON text written by smtpkit's encoder. */
static size_t escaped_len(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 2;
    while (*p) {
        unsigned char ch = *p;
        if (ch >= 0x20 && ch < 0x7f) {
            n += (ch == '"' || ch == '\\') ? 2 : 1;
            p++;
        } else if (ch < 0x80) {
            n += (ch == '\b' || ch == '\f' || ch == '\n' || ch == '\r' || ch == '\t') ? 2 : 6;
            p++;
        } else {
            unsigned long cp;
            size_t k = smtpkit_smtpapi_utf8_len(p, 4, &cp);
            n += k == 4 ? 12 : 6;
            p += k ? k : 1;
        }
    }
    return n;
}

static size_t pmark(rules *r)
{
    return r->p.n;
}

static void prestore(rules *r, size_t n)
{
    r->p.n = n;
    r->p.b[n] = 0;
}

static void pkey(rules *r, const char *k)
{
    smtpkit_smtpapi_path_key(&r->p, k, strlen(k));
}

static void pidx(rules *r, size_t i)
{
    smtpkit_smtpapi_path_index(&r->p, i);
}

static void strings_array(rules *r, const cJSON *x, const char *what)
{
    const cJSON *e;
    size_t i = 0, m = pmark(r);
    for (e = x->child; e; e = e->next, i++) {
        if (cJSON_IsString(e))
            continue;
        pidx(r, i);
        rprob(r, ERR, e, "must be a string (%s), not %s", what, type_name(e));
        prestore(r, m);
    }
}

static void strings_object(rules *r, const cJSON *x, const char *what)
{
    const cJSON *e;
    size_t m = pmark(r);
    for (e = x->child; e; e = e->next) {
        if (cJSON_IsString(e))
            continue;
        pkey(r, e->string);
        rprob(r, ERR, e, "must be a string (%s), not %s", what, type_name(e));
        prestore(r, m);
    }
}

/* A C0 control character or DEL (the string is NUL-terminated: \u0000
 * was refused by the scanner). */
static int has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

static void check_to(rules *r, const cJSON *to, long *nto)
{
    const cJSON *e;
    size_t i = 0, n, m = pmark(r);
    if (!cJSON_IsArray(to)) {
        rprob(r, ERR, to, "must be an array of addresses such as [\"a@example.com\"], not %s",
              type_name(to));
        return;
    }
    n = count_children(to);
    *nto = (long)n;
    if (n == 0)
        rprob(r, ERR, to, "is empty: give at least one address, or leave \"to\" out");
    else if (n > MAX_TO)
        rprob(r, ERR, to, "has %zu addresses: SendGrid accepts at most 10,000", n);
    else if (n > WARN_TO)
        rprob(r, WARN, to, "has %zu addresses: SendGrid advises at most 1,000 per message", n);
    for (e = to->child; e; e = e->next, i++) {
        if (cJSON_IsString(e) && e->valuestring[0] && strchr(e->valuestring, '@')
            && !has_control(e->valuestring))
            continue;
        pidx(r, i);
        if (!cJSON_IsString(e))
            rprob(r, ERR, e, "must be a string (an address), not %s", type_name(e));
        else if (!e->valuestring[0])
            rprob(r, ERR, e, "is an empty address");
        else if (has_control(e->valuestring))
            rprob(r, ERR, e, "contains a control character (such as CR or LF): SendGrid "
                  "writes each address into the To header of its copy");
        else if (!strchr(e->valuestring, '@'))
            rprob(r, WARN, e, "does not look like an email address (no '@')");
        prestore(r, m);
    }
}

static void check_sub(rules *r, const cJSON *sub, long nto)
{
    const cJSON *e;
    size_t m = pmark(r);
    long first_len = -1;
    const char *first_tag = "";
    if (!cJSON_IsObject(sub)) {
        rprob(r, ERR, sub, "must be an object mapping each tag to an array of strings, "
              "one per \"to\" address, not %s", type_name(sub));
        return;
    }
    for (e = sub->child; e; e = e->next) {
        pkey(r, e->string);
        if (!cJSON_IsArray(e)) {
            rprob(r, ERR, e, "must be an array of strings (one per \"to\" address), not %s",
                  type_name(e));
        } else {
            size_t n = count_children(e);
            strings_array(r, e, "substitution value");
            if (nto >= 0 && (long)n != nto)
                rprob(r, ERR, e, "has %zu values but \"to\" has %ld addresses: values are "
                      "matched to addresses by position, so there must be one per address",
                      n, nto);
            else if (nto < 0 && first_len >= 0 && (long)n != first_len)
                rprob(r, WARN, e, "has %zu values but \"%s\" has %ld: each tag needs one "
                      "value per recipient", n, first_tag, first_len);
            if (first_len < 0) {
                first_len = (long)n;
                first_tag = e->string;
            }
        }
        if (strchr(e->string, ' '))
            rprob(r, WARN, e, "the tag contains a space: SendGrid does not replace tags "
                  "with spaces");
        prestore(r, m);
    }
}

static void check_timestamp(rules *r, const cJSON *x, long long now)
{
    if (!cJSON_IsNumber(x)) {
        rprob(r, ERR, x, "must be a UNIX time in seconds (an integer), not %s", type_name(x));
        return;
    }
    if (x->type & NONINT_FLAG) {
        rprob(r, ERR, x, "must be written as an integer number of seconds (no fraction or "
              "exponent)");
        return;
    }
    if (x->valuedouble < 0) {
        rprob(r, ERR, x, "must not be negative");
        return;
    }
    if (x->valuedouble >= MS_THRESHOLD) {
        rprob(r, ERR, x, "%.0f looks like milliseconds: UNIX times here are in seconds "
              "(divide by 1000)", x->valuedouble);
        return;
    }
    if (x->valuedouble > (double)(now + MAX_SCHEDULE_AHEAD))
        rprob(r, ERR, x, "is %.1f hours from now: SendGrid schedules at most 72 hours ahead",
              (x->valuedouble - (double)now) / 3600.0);
}

static void check_category(rules *r, const cJSON *x)
{
    const cJSON *e;
    size_t i = 0, m = pmark(r), n;
    if (cJSON_IsString(x)) {
        if (non_ascii(x->valuestring))
            rprob(r, WARN, x, "categories must be 7-bit US-ASCII (SendGrid documents it)");
        return;
    }
    if (!cJSON_IsArray(x)) {
        rprob(r, ERR, x, "must be a string or an array of strings, not %s", type_name(x));
        return;
    }
    n = count_children(x);
    if (n > MAX_CATEGORIES)
        rprob(r, ERR, x, "has %zu categories: SendGrid allows at most 10 per message", n);
    else if (n == 0)
        rprob(r, WARN, x, "is empty: leave \"category\" out instead");
    for (e = x->child; e; e = e->next, i++) {
        pidx(r, i);
        if (!cJSON_IsString(e))
            rprob(r, ERR, e, "must be a string (a category name), not %s", type_name(e));
        else if (non_ascii(e->valuestring))
            rprob(r, WARN, e, "categories must be 7-bit US-ASCII (SendGrid documents it)");
        prestore(r, m);
    }
}

static void check_unique_args(rules *r, const cJSON *x)
{
    const cJSON *e;
    size_t size = 2, n = 0;
    if (!cJSON_IsObject(x)) {
        rprob(r, ERR, x, "must be an object mapping names to strings, not %s", type_name(x));
        return;
    }
    strings_object(r, x, "unique argument value");
    for (e = x->child; e; e = e->next, n++) {
        size += escaped_len(e->string) + 1 + (n ? 1 : 0);
        size += cJSON_IsString(e) ? escaped_len(e->valuestring) : 8;
    }
    if (size > MAX_UNIQUE_ARGS)
        rprob(r, ERR, x, "is %zu bytes as JSON: SendGrid accepts at most 10,000 bytes of "
              "unique arguments", size);
}

/* filters (section 2) */
enum { K_ENABLE, K_BOOL, K_STRING, K_SCORE, K_TEMPLATE_ID, K_HTML_BODY, K_FORBIDDEN };
enum { F_CURRENT, F_REMOVED, F_LEGACY, F_V3 };

typedef struct {
    const char *name;
    int kind;
} setting_spec;

typedef struct {
    const char *name;
    int status;
    const setting_spec *settings;
} filter_spec;

static const setting_spec s_enable[] = {{"enable", K_ENABLE}, {NULL, 0}};
static const setting_spec s_email[] = {{"enable", K_ENABLE}, {"email", K_STRING}, {NULL, 0}};
static const setting_spec s_clicktrack[] = {{"enable", K_ENABLE}, {"enable_text", K_BOOL},
                                            {NULL, 0}};
static const setting_spec s_dkim[] = {{"domain", K_STRING}, {"use_from", K_ENABLE}, {NULL, 0}};
static const setting_spec s_domainkeys[] = {{"enable", K_ENABLE}, {"domain", K_STRING},
                                            {"sender", K_ENABLE}, {NULL, 0}};
static const setting_spec s_footer[] = {{"enable", K_ENABLE}, {"text/html", K_STRING},
                                        {"text/plain", K_STRING}, {NULL, 0}};
static const setting_spec s_ganalytics[] = {
    {"enable", K_ENABLE}, {"utm_source", K_STRING}, {"utm_medium", K_STRING},
    {"utm_term", K_STRING}, {"utm_content", K_STRING}, {"utm_campaign", K_STRING}, {NULL, 0}};
static const setting_spec s_opentrack[] = {{"enable", K_ENABLE}, {"replace", K_STRING},
                                           {NULL, 0}};
static const setting_spec s_spamcheck[] = {{"enable", K_ENABLE}, {"maxscore", K_SCORE},
                                           {"url", K_STRING}, {NULL, 0}};
static const setting_spec s_subscriptiontrack[] = {
    {"enable", K_ENABLE}, {"text/html", K_STRING}, {"text/plain", K_STRING},
    {"replace", K_STRING}, {"landing", K_FORBIDDEN}, {NULL, 0}};
static const setting_spec s_templates[] = {{"enable", K_ENABLE}, {"template_id", K_TEMPLATE_ID},
                                           {NULL, 0}};
static const setting_spec s_template[] = {{"enable", K_ENABLE}, {"text/html", K_HTML_BODY},
                                          {NULL, 0}};

static const filter_spec filter_specs[] = {
    {"bcc", F_REMOVED, s_email},
    {"bypass_list_management", F_CURRENT, s_enable},
    {"bypass_spam_management", F_V3, s_enable},
    {"bypass_bounce_management", F_V3, s_enable},
    {"bypass_unsubscribe_management", F_V3, s_enable},
    {"clicktrack", F_CURRENT, s_clicktrack},
    {"dkim", F_CURRENT, s_dkim},
    {"domainkeys", F_REMOVED, s_domainkeys},
    {"footer", F_CURRENT, s_footer},
    {"forwardspam", F_REMOVED, s_email},
    {"ganalytics", F_CURRENT, s_ganalytics},
    {"gravatar", F_REMOVED, s_enable},
    {"opentrack", F_CURRENT, s_opentrack},
    {"spamcheck", F_REMOVED, s_spamcheck},
    {"subscriptiontrack", F_CURRENT, s_subscriptiontrack},
    {"templates", F_CURRENT, s_templates},
    {"template", F_LEGACY, s_template},
    {NULL, 0, NULL}
};

static const char *const filter_names[] = {
    "bypass_list_management", "clicktrack", "dkim", "footer", "ganalytics", "opentrack",
    "subscriptiontrack", "templates", "bcc", "bypass_spam_management",
    "bypass_bounce_management", "bypass_unsubscribe_management", "domainkeys",
    "forwardspam", "gravatar", "spamcheck", "template", NULL
};

static void check_setting(rules *r, const cJSON *v, int kind)
{
    switch (kind) {
    case K_ENABLE:
        if (is_integer(v) && (v->valuedouble == 0 || v->valuedouble == 1))
            return;
        if (cJSON_IsBool(v))
            rprob(r, WARN, v, "is a boolean: SendGrid documents the integer %d here",
                  cJSON_IsTrue(v) ? 1 : 0);
        else if (cJSON_IsString(v) && (!strcmp(v->valuestring, "0") || !strcmp(v->valuestring, "1")))
            rprob(r, WARN, v, "is the string \"%s\": SendGrid documents the integer %s here",
                  v->valuestring, v->valuestring);
        else
            rprob(r, ERR, v, "must be 0 or 1");
        return;
    case K_BOOL:
        if (cJSON_IsBool(v))
            return;
        if (is_integer(v) && (v->valuedouble == 0 || v->valuedouble == 1))
            rprob(r, WARN, v, "is a number: SendGrid documents true or false here");
        else
            rprob(r, ERR, v, "must be true or false, not %s", type_name(v));
        return;
    case K_STRING:
    case K_TEMPLATE_ID:
    case K_HTML_BODY:
        if (!cJSON_IsString(v)) {
            rprob(r, ERR, v, "must be a string, not %s", type_name(v));
            return;
        }
        if (kind == K_TEMPLATE_ID && (v->valuestring[0] == 'd' && v->valuestring[1] == '-'))
            rprob(r, ERR, v, "\"%.40s\" is a dynamic template id: X-SMTPAPI supports only "
                  "legacy transactional templates, and SendGrid drops the message",
                  v->valuestring);
        if (kind == K_HTML_BODY && !strstr(v->valuestring, "<% body %>"))
            rprob(r, WARN, v, "should contain \"<%% body %%>\", where the message body goes");
        return;
    case K_SCORE:
        if (!cJSON_IsNumber(v))
            rprob(r, ERR, v, "must be a number from 1 to 10, not %s", type_name(v));
        else if (v->valuedouble < 1 || v->valuedouble > 10)
            rprob(r, WARN, v, "should be from 1 to 10");
        return;
    case K_FORBIDDEN:
        rprob(r, WARN, v, "cannot be used in X-SMTPAPI: SendGrid ignores it");
        return;
    default:
        return;
    }
}

static void check_filter(rules *r, const cJSON *f)
{
    const filter_spec *spec = NULL;
    const cJSON *settings = NULL, *e;
    const char *names[12] = {NULL};
    size_t m, i;
    int k;

    for (k = 0; filter_specs[k].name; k++)
        if (!strcmp(filter_specs[k].name, f->string))
            spec = &filter_specs[k];
    if (!spec && has_upper(f->string)) {
        const char *s = suggest(f->string, filter_names);
        rprob(r, ERR, f, "filter names must be lowercase%s%s%s", s ? " (did you mean \"" : "",
              s ? s : "", s ? "\"?)" : "");
    } else if (!spec) {
        unknown_key(r, f, "filter", f->string, filter_names);
    } else if (spec->status == F_REMOVED) {
        rprob(r, WARN, f, "the \"%s\" filter was removed by SendGrid: it is ignored", spec->name);
    } else if (spec->status == F_LEGACY) {
        rprob(r, WARN, f, "the \"template\" filter is the legacy Email Template app; use "
              "\"templates\" with a template_id");
    } else if (spec->status == F_V3) {
        rprob(r, WARN, f, "\"%s\" is documented for the v3 Mail Send API only, not for "
              "X-SMTPAPI; \"bypass_list_management\" is", spec->name);
    }
    if (!cJSON_IsObject(f)) {
        rprob(r, ERR, f, "must be an object {\"settings\": {...}}, not %s", type_name(f));
        return;
    }
    m = pmark(r);
    for (e = f->child; e; e = e->next) {
        static const char *const fkeys[] = {"settings", NULL};
        if (!strcmp(e->string, "settings")) {
            if (!settings)
                settings = e;
            continue;
        }
        pkey(r, e->string);
        unknown_key(r, e, "key", e->string, fkeys);
        prestore(r, m);
    }
    if (!settings) {
        rprob(r, ERR, f, "has no \"settings\" object: write {\"settings\": {...}}");
        return;
    }
    pkey(r, "settings");
    if (!cJSON_IsObject(settings)) {
        rprob(r, ERR, settings, "must be an object of settings, not %s", type_name(settings));
        prestore(r, m);
        return;
    }
    if (spec) {
        for (i = 0; spec->settings[i].name && i < 11; i++)
            names[i] = spec->settings[i].name;
        names[i] = NULL;
    }
    {
        size_t m2 = pmark(r);
        for (e = settings->child; e; e = e->next) {
            pkey(r, e->string);
            if (spec) {
                int kind = -1;
                for (i = 0; spec->settings[i].name; i++)
                    if (!strcmp(spec->settings[i].name, e->string))
                        kind = spec->settings[i].kind;
                if (kind >= 0)
                    check_setting(r, e, kind);
                else if (has_upper(e->string))
                    rprob(r, ERR, e, "setting names must be lowercase");
                else
                    unknown_key(r, e, "setting", e->string, names);
            } else if (has_upper(e->string)) {
                rprob(r, ERR, e, "setting names must be lowercase");
            } else if (cJSON_IsObject(e) || cJSON_IsArray(e) || cJSON_IsNull(e)) {
                rprob(r, WARN, e, "filter settings are strings, numbers or booleans, not %s",
                      type_name(e));
            }
            prestore(r, m2);
        }
    }
    prestore(r, m);
}

static void check_filters(rules *r, const cJSON *x)
{
    const cJSON *f;
    size_t m = pmark(r);
    if (!cJSON_IsObject(x)) {
        rprob(r, ERR, x, "must be an object mapping filter names to {\"settings\": {...}}, "
              "not %s", type_name(x));
        return;
    }
    for (f = x->child; f; f = f->next) {
        pkey(r, f->string);
        check_filter(r, f);
        prestore(r, m);
    }
}

static const char *const top_keys[] = {
    "to", "sub", "section", "category", "unique_args", "filters", "send_at",
    "send_each_at", "batch_id", "asm_group_id", "asm_groups_to_display", "ip_pool", NULL
};

enum { T_TO, T_SUB, T_SECTION, T_CATEGORY, T_UNIQUE_ARGS, T_FILTERS, T_SEND_AT,
       T_SEND_EACH_AT, T_BATCH_ID, T_ASM_GROUP_ID, T_ASM_DISPLAY, T_IP_POOL, T_COUNT };

static void check_nonempty_string(rules *r, const cJSON *x, const char *what)
{
    if (!cJSON_IsString(x))
        rprob(r, ERR, x, "must be a string (%s), not %s", what, type_name(x));
    else if (!x->valuestring[0])
        rprob(r, ERR, x, "is empty");
}

static void check_positive_int(rules *r, const cJSON *x, const char *what)
{
    if (!is_integer(x))
        rprob(r, ERR, x, "must be an integer (%s), not %s", what,
              cJSON_IsNumber(x) ? "a fraction" : type_name(x));
    else if (x->valuedouble <= 0)
        rprob(r, ERR, x, "must be a positive integer (%s)", what);
}

void smtpkit_smtpapi_run_rules(ctx *c, const cJSON *root)
{
    rules r;
    const cJSON *k[T_COUNT], *e;
    long nto = -1;
    size_t i;

    r.c = c;
    r.p.n = 0;
    r.p.b[0] = 0;
    if (!cJSON_IsObject(root)) {
        rprob(&r, ERR, root, "the header must be one JSON object {...}, not %s", type_name(root));
        return;
    }
    memset(k, 0, sizeof k);
    for (e = root->child; e; e = e->next) {
        int t, found = 0;
        for (t = 0; t < T_COUNT; t++)
            if (!strcmp(e->string, top_keys[t])) {
                if (!k[t])
                    k[t] = e;
                found = 1;
                break;
            }
        if (found)
            continue;
        pkey(&r, e->string);
        if (!strcmp(e->string, "dynamic_template_data"))
            rprob(&r, WARN, e, "X-SMTPAPI does not support dynamic templates: SendGrid "
                  "ignores dynamic_template_data");
        else
            unknown_key(&r, e, "key", e->string, top_keys);
        prestore(&r, 0);
    }

#define AT(t, name) (pkey(&r, name), 1)
    if (k[T_TO] && AT(T_TO, "to")) {
        check_to(&r, k[T_TO], &nto);
        prestore(&r, 0);
    }
    if (k[T_SUB] && AT(T_SUB, "sub")) {
        check_sub(&r, k[T_SUB], nto);
        prestore(&r, 0);
    }
    if (k[T_SECTION] && AT(T_SECTION, "section")) {
        rprob(&r, WARN, k[T_SECTION], "\"section\" was deprecated and removed by SendGrid: "
              "put the text in the substitution values instead");
        if (!cJSON_IsObject(k[T_SECTION]))
            rprob(&r, ERR, k[T_SECTION], "must be an object mapping tags to strings, not %s",
                  type_name(k[T_SECTION]));
        else
            strings_object(&r, k[T_SECTION], "section text");
        prestore(&r, 0);
    }
    if (k[T_CATEGORY] && AT(T_CATEGORY, "category")) {
        check_category(&r, k[T_CATEGORY]);
        prestore(&r, 0);
    }
    if (k[T_UNIQUE_ARGS] && AT(T_UNIQUE_ARGS, "unique_args")) {
        check_unique_args(&r, k[T_UNIQUE_ARGS]);
        prestore(&r, 0);
    }
    if (k[T_FILTERS] && AT(T_FILTERS, "filters")) {
        check_filters(&r, k[T_FILTERS]);
        prestore(&r, 0);
    }
    if (k[T_SEND_AT] && AT(T_SEND_AT, "send_at")) {
        if (k[T_SEND_EACH_AT])
            rprob(&r, ERR, k[T_SEND_AT], "send_at and send_each_at are both set: SendGrid "
                  "drops such a message; use one of them");
        check_timestamp(&r, k[T_SEND_AT], c->now);
        prestore(&r, 0);
    }
    if (k[T_SEND_EACH_AT] && AT(T_SEND_EACH_AT, "send_each_at")) {
        const cJSON *x = k[T_SEND_EACH_AT];
        if (!cJSON_IsArray(x)) {
            rprob(&r, ERR, x, "must be an array of UNIX times in seconds, one per \"to\" "
                  "address, not %s", type_name(x));
        } else {
            size_t n = count_children(x);
            if (nto >= 0 && (long)n != nto)
                rprob(&r, ERR, x, "has %zu times but \"to\" has %ld addresses: there must "
                      "be one per address", n, nto);
            else if (nto < 0)
                rprob(&r, WARN, x, "without \"to\": there must be one time per address");
            for (e = x->child, i = 0; e; e = e->next, i++) {
                pidx(&r, i);
                check_timestamp(&r, e, c->now);
                prestore(&r, strlen("send_each_at"));
            }
        }
        prestore(&r, 0);
    }
    if (k[T_BATCH_ID] && AT(T_BATCH_ID, "batch_id")) {
        check_nonempty_string(&r, k[T_BATCH_ID], "an id made by POST /v3/mail/batch");
        prestore(&r, 0);
    }
    if (k[T_ASM_GROUP_ID] && AT(T_ASM_GROUP_ID, "asm_group_id")) {
        check_positive_int(&r, k[T_ASM_GROUP_ID], "an unsubscribe group id");
        prestore(&r, 0);
    }
    if (k[T_ASM_DISPLAY] && AT(T_ASM_DISPLAY, "asm_groups_to_display")) {
        const cJSON *x = k[T_ASM_DISPLAY];
        if (!cJSON_IsArray(x)) {
            rprob(&r, ERR, x, "must be an array of unsubscribe group ids, not %s", type_name(x));
        } else {
            size_t n = count_children(x), m = pmark(&r);
            if (n > MAX_ASM_DISPLAY)
                rprob(&r, ERR, x, "has %zu groups: SendGrid displays at most 25", n);
            for (e = x->child, i = 0; e; e = e->next, i++) {
                pidx(&r, i);
                check_positive_int(&r, e, "an unsubscribe group id");
                prestore(&r, m);
            }
        }
        prestore(&r, 0);
    }
    if (k[T_IP_POOL] && AT(T_IP_POOL, "ip_pool")) {
        check_nonempty_string(&r, k[T_IP_POOL], "an IP pool name");
        prestore(&r, 0);
    }
#undef AT
}

