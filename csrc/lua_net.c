/*
 * lua_net.c - luaopen_smtpkit_net: the Lua face of net.c / tls.c (the C
 * transport). Users reach it through lua/smtpkit/client.lua
 * (smtpkit.connect / smtpkit.send); this is the layer under it.
 *
 *   net.tls_client(opts) -> tlsc | nil, err
 *     opts = { cafile=, capath=, system_trust = bool (default true: cafile and
 *              capath ADD to the system store), verify = bool (default true),
 *              client_cert=, client_key=, tls_min = "1.2"|"1.3" }
 *     One per client: it keeps the server's last TLS session (resumption).
 *   net.connect(opts [, tlsc]) -> conn | nil, err
 *     opts = { host=, port=, tls = "starttls"|"implicit"|"none"|"opportunistic",
 *              helo=, username=, password=, xoauth2=, auth_mechanism=,
 *              allow_plaintext_auth = bool, pipelining = bool,
 *              timeouts = { connect=, greeting=, command=, data= } (seconds),
 *              trace = function(direction, line) end }  -- "send"|"recv"|"info"
 *   conn:send(envelope, body) -> result | nil, err, partial_result
 *     envelope = { from=, to = { "a@b", {address=, notify=, orcpt=}, ... },
 *                  size=, body_8bit=, long_lines=, dsn_ret=, dsn_envid= }
 *     (body_8bit nil: a string body is scanned for 8-bit bytes; for other
 *     bodies it stays unknown: BODY=8BITMIME when offered, else an 8-bit octet
 *     fails the send before the end of data)
 *     body: a string, a Lua file handle (read in 16 KiB chunks from its
 *     current position) or a function returning the next chunk (nil: end).
 *     result = { ok=, complete=, outcome=, reason=, action=, retry=, explanation=,
 *       queue_id=, reply = {code=, enhanced=, text=, lines={...}} | nil,
 *       maybe_delivered=, accepted = n,
 *       recipients = { {address=, ok=, reply=, outcome=, reason=, action=,
 *                       retry=, pass=, queue_id= (when ok: its pass's)}, ... } }
 *     err = { kind=, message=, reply= | nil, classification = {outcome=, reason=,
 *             action=, retry=, explanation=} | nil, phase = "mail"|... | nil,
 *             resendable = bool (true: nothing of the message reached the
 *             server: the connection was closed or refused with 421 before
 *             MAIL was answered) }
 *   conn:send_many(envelopes, bodies [, first [, last]])
 *       -> results, errors, done [, err]
 *     Sends envelopes[i] with bodies[i] for i = first..last (default all),
 *     each message's MAIL/RCPT/DATA pipelined behind the previous end of data
 *     when the server offers PIPELINING (one round trip a message).
 *     results[i]: the result (as from send) or false when no transaction
 *     began; errors[i]: nil when the transaction ran to its end, else the
 *     error (as from send; with results[i] the partial result). done: the
 *     index of the last message handled; when < last, the connection failed
 *     (err says why, err.resendable) and messages done+1..last were never
 *     begun: send them on a new connection.
 *   conn:ready() -> bool     conn:quit()     conn:close()
 *   conn:info() -> { peer=, tls = bool, tls_version=, tls_cipher=, tls_resumed=,
 *                    auth = mechanism | nil, capabilities = {...} }
 *
 * Loading this module sets SIGPIPE to "ignore" when it was at its default
 * (as LuaSocket does): a write to a closed TLS connection must be an error,
 * not the end of the process.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lua_bindings.h"
#include "net.h"

#define CONN_MT "smtpkit.net.conn"
#define TLSC_MT "smtpkit.net.tls_client"
#define FILE_CHUNK 16384

LUALIB_API int luaopen_smtpkit_net(lua_State *L);

typedef struct {
    smtpkit_tls_client *c;
} tlsc_ud;

typedef struct {
    smtpkit_conn *c;
    lua_State *L;         /* the state of the call in progress (for trace) */
    int trace_ref;
    int tlsc_ref;
} conn_ud;

/* --- helpers -------------------------------------------------------------- */

static const char *opt_string(lua_State *L, int t, const char *k)
{
    const char *s = NULL;
    lua_getfield(L, t, k);
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "option '%s' must be a string", k);
        s = lua_tostring(L, -1);
    }
    lua_pop(L, 1);   /* the string stays alive: it is in the options table */
    return s;
}

static int opt_bool(lua_State *L, int t, const char *k, int def)
{
    int v = def;
    lua_getfield(L, t, k);
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TBOOLEAN)
            luaL_error(L, "option '%s' must be a boolean", k);
        v = lua_toboolean(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

static double opt_number(lua_State *L, int t, const char *k, double def)
{
    double v = def;
    lua_getfield(L, t, k);
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TNUMBER)
            luaL_error(L, "option '%s' must be a number", k);
        v = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

#define set_str smtpkit_lua_set_str
#define set_bool smtpkit_lua_set_bool

/* The engine's error table (lua_result.c) plus what only this transport
 * knows: the phase it failed in and whether the message may be resent. */
static void push_error(lua_State *L, const smtpkit_error *e, int phase, int resendable)
{
    smtpkit_lua_push_session_error(L, e);
    if (phase >= 0 && smtpkit_phase_name((smtpkit_phase)phase))
        set_str(L, "phase", smtpkit_phase_name((smtpkit_phase)phase));
    set_bool(L, "resendable", resendable);
}

/* --- TLS client ------------------------------------------------------------- */

static int l_tls_client(lua_State *L)
{
    smtpkit_tls_config cfg;
    char err[512];
    smtpkit_tls_config_init(&cfg);
    if (!lua_isnoneornil(L, 1)) {
        luaL_checktype(L, 1, LUA_TTABLE);
        cfg.cafile = opt_string(L, 1, "cafile");
        cfg.capath = opt_string(L, 1, "capath");
        cfg.system_trust = opt_bool(L, 1, "system_trust", 1);
        cfg.verify = opt_bool(L, 1, "verify", 1);
        cfg.client_cert = opt_string(L, 1, "client_cert");
        cfg.client_key = opt_string(L, 1, "client_key");
        const char *min = opt_string(L, 1, "tls_min");
        if (min && strcmp(min, "1.3") == 0)
            cfg.min_version = 13;
        else if (min && strcmp(min, "1.2") != 0)
            return luaL_error(L, "option 'tls_min' must be \"1.2\" or \"1.3\"");
    }
    tlsc_ud *u = lua_newuserdata(L, sizeof *u);
    u->c = NULL;
    luaL_getmetatable(L, TLSC_MT);
    lua_setmetatable(L, -2);
    u->c = smtpkit_tls_client_new(&cfg, err, sizeof err);
    if (!u->c) {
        lua_pushnil(L);
        lua_createtable(L, 0, 2);
        set_str(L, "kind", "tls");
        set_str(L, "message", err);
        return 2;
    }
    return 1;
}

static int l_tls_client_gc(lua_State *L)
{
    tlsc_ud *u = luaL_checkudata(L, 1, TLSC_MT);
    smtpkit_tls_client_free(u->c);
    u->c = NULL;
    return 0;
}

static int l_tls_client_trust(lua_State *L)
{
    tlsc_ud *u = luaL_checkudata(L, 1, TLSC_MT);
    lua_pushstring(L, u->c ? smtpkit_tls_client_trust(u->c) : "");
    return 1;
}

/* --- connections -------------------------------------------------------------- */

static void trace_cb(void *ud, int direction, const char *line, size_t len)
{
    conn_ud *u = ud;
    lua_State *L = u->L;
    if (!L || u->trace_ref == LUA_NOREF)
        return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, u->trace_ref);
    lua_pushstring(L, direction == SMTPKIT_TRACE_SEND ? "send"
                      : direction == SMTPKIT_TRACE_RECV ? "recv" : "info");
    lua_pushlstring(L, line, len);
    if (lua_pcall(L, 2, 0, 0) != 0)
        lua_pop(L, 1);   /* a failing trace function must not break the session */
}

static smtpkit_tls_policy parse_policy(lua_State *L, const char *s)
{
    if (!s || strcmp(s, "starttls") == 0)
        return SMTPKIT_TLS_STARTTLS;
    if (strcmp(s, "implicit") == 0)
        return SMTPKIT_TLS_IMPLICIT;
    if (strcmp(s, "none") == 0)
        return SMTPKIT_TLS_NONE;
    if (strcmp(s, "opportunistic") == 0)
        return SMTPKIT_TLS_OPPORTUNISTIC;
    luaL_error(L, "option 'tls' must be \"starttls\", \"implicit\", \"none\" or "
                  "\"opportunistic\", not \"%s\"", s);
    return SMTPKIT_TLS_STARTTLS;
}

static void release(lua_State *L, conn_ud *u)
{
    if (u->c) {
        smtpkit_conn_free(u->c);
        u->c = NULL;
    }
    if (u->trace_ref != LUA_NOREF) {
        luaL_unref(L, LUA_REGISTRYINDEX, u->trace_ref);
        u->trace_ref = LUA_NOREF;
    }
    if (u->tlsc_ref != LUA_NOREF) {
        luaL_unref(L, LUA_REGISTRYINDEX, u->tlsc_ref);
        u->tlsc_ref = LUA_NOREF;
    }
}

static int l_connect(lua_State *L)
{
    smtpkit_conn_options o;
    smtpkit_error err;
    luaL_checktype(L, 1, LUA_TTABLE);
    tlsc_ud *t = lua_isnoneornil(L, 2) ? NULL : luaL_checkudata(L, 2, TLSC_MT);
    memset(&o, 0, sizeof o);
    smtpkit_session_options_init(&o.session);
    o.host = opt_string(L, 1, "host");
    if (!o.host)
        return luaL_error(L, "option 'host' is required");
    o.port = (int)opt_number(L, 1, "port", 0);
    o.session.tls = parse_policy(L, opt_string(L, 1, "tls"));
    o.session.helo_name = opt_string(L, 1, "helo");
    o.session.username = opt_string(L, 1, "username");
    o.session.password = opt_string(L, 1, "password");
    o.session.xoauth2_token = opt_string(L, 1, "xoauth2");
    o.session.auth_mechanism = opt_string(L, 1, "auth_mechanism");
    o.session.allow_plaintext_auth = opt_bool(L, 1, "allow_plaintext_auth", 0);
    o.session.pipelining = opt_bool(L, 1, "pipelining", 1);
    lua_getfield(L, 1, "timeouts");
    if (!lua_isnil(L, -1)) {
        int ti = lua_gettop(L);
        luaL_checktype(L, ti, LUA_TTABLE);
        o.timeouts.connect = (long)(opt_number(L, ti, "connect", 0) * 1000);
        o.timeouts.greeting = (long)(opt_number(L, ti, "greeting", 0) * 1000);
        o.timeouts.command = (long)(opt_number(L, ti, "command", 0) * 1000);
        o.timeouts.data = (long)(opt_number(L, ti, "data", 0) * 1000);
    }
    lua_pop(L, 1);
    if (o.session.tls != SMTPKIT_TLS_NONE && (!t || !t->c))
        return luaL_error(L, "a TLS policy needs a tls_client (argument 2)");

    conn_ud *u = lua_newuserdata(L, sizeof *u);
    u->c = NULL;
    u->L = L;
    u->trace_ref = LUA_NOREF;
    u->tlsc_ref = LUA_NOREF;
    luaL_getmetatable(L, CONN_MT);
    lua_setmetatable(L, -2);
    lua_getfield(L, 1, "trace");
    if (lua_isfunction(L, -1)) {
        u->trace_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        o.session.trace = trace_cb;
        o.session.trace_ud = u;
    } else {
        if (!lua_isnil(L, -1))
            return luaL_error(L, "option 'trace' must be a function");
        lua_pop(L, 1);
    }
    if (t) {
        lua_pushvalue(L, 2);
        u->tlsc_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        o.tls = t->c;
    }
    u->c = smtpkit_conn_open(&o, &err);
    if (!u->c) {
        release(L, u);
        lua_pushnil(L);
        push_error(L, &err, -1, 0);
        return 2;
    }
    u->L = NULL;
    return 1;
}

static conn_ud *check_conn(lua_State *L)
{
    conn_ud *u = luaL_checkudata(L, 1, CONN_MT);
    u->L = L;
    return u;
}

/* body sources */
typedef struct {
    lua_State *L;
    int kind;           /* 0 string, 1 file, 2 function */
    int body_idx;       /* stack index of the body, or of the table holding it */
    int body_key;       /* 0: the body is at body_idx; > 0: body_idx[body_key] */
    int slot_idx;       /* stack slot keeping the iterator's current chunk */
    const char *s;
    size_t slen;
    int given;          /* string: already handed out */
    FILE *fp;
    long start;         /* file position at the start (-1: not seekable) */
    char *buf;          /* FILE_CHUNK octets, shared: one body streams at a time */
} body_state;

static void push_body(lua_State *L, const body_state *b)
{
    if (b->body_key > 0)
        lua_rawgeti(L, b->body_idx, b->body_key);
    else
        lua_pushvalue(L, b->body_idx);
}

static int body_read(void *ud, const char **p, size_t *n, char *err, size_t errlen)
{
    body_state *b = ud;
    switch (b->kind) {
    case 0:
        *p = b->s;
        *n = b->given ? 0 : b->slen;
        b->given = 1;
        return 0;
    case 1: {
        size_t r = fread(b->buf, 1, FILE_CHUNK, b->fp);
        if (r == 0 && ferror(b->fp)) {
            snprintf(err, errlen, "file read error");
            return -1;
        }
        *p = b->buf;
        *n = r;
        return 0;
    }
    default: {
        lua_State *L = b->L;
        for (;;) {
            push_body(L, b);
            if (lua_pcall(L, 0, 2, 0) != 0) {
                snprintf(err, errlen, "the body iterator raised an error: %s",
                         lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
                lua_pop(L, 1);
                return -1;
            }
            if (lua_isnil(L, -2)) {
                if (!lua_isnil(L, -1)) {   /* nil, err: the source failed */
                    int pushed = 0;
                    const char *m = lua_tostring(L, -1);
                    if (!m && luaL_callmeta(L, -1, "__tostring")) {
                        pushed = 1;
                        m = lua_tostring(L, -1);
                    }
                    snprintf(err, errlen, "the body iterator failed: %s", m ? m : "?");
                    lua_pop(L, 2 + pushed);
                    return -1;
                }
                lua_pop(L, 2);
                *p = NULL;
                *n = 0;
                return 0;
            }
            lua_pop(L, 1);
            if (lua_type(L, -1) != LUA_TSTRING) {
                snprintf(err, errlen, "the body iterator returned a %s, not a string",
                         luaL_typename(L, -1));
                lua_pop(L, 1);
                return -1;
            }
            lua_replace(L, b->slot_idx);   /* keeps the chunk alive while used */
            *p = lua_tolstring(L, b->slot_idx, n);
            if (*n > 0)
                return 0;   /* an empty chunk is not the end: ask again */
        }
    }
    }
}

static int body_rewind(void *ud, char *err, size_t errlen)
{
    body_state *b = ud;
    if (b->kind == 0) {
        b->given = 0;
        return 0;
    }
    if (b->kind == 1 && b->start >= 0 && fseek(b->fp, b->start, SEEK_SET) == 0)
        return 0;
    snprintf(err, errlen, "the body file cannot seek back");
    return -1;
}

/* 1 when s has a byte >= 0x80; eight bytes at a time. */
static int has_8bit(const char *s, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (w & UINT64_C(0x8080808080808080))
            return 1;
    }
    for (; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return 1;
    return 0;
}

/* Sets up b for the body at idx (or idx[key] when key > 0), the value on
 * top of the stack; pops it. Raises for a body of the wrong type. */
static void body_init(lua_State *L, body_state *b, int idx, int key, int slot, char *buf)
{
    memset(b, 0, sizeof *b);
    b->L = L;
    b->body_idx = idx;
    b->body_key = key;
    b->slot_idx = slot;
    b->start = -1;
    b->buf = buf;
    switch (lua_type(L, -1)) {
    case LUA_TSTRING:
        b->kind = 0;
        b->s = lua_tolstring(L, -1, &b->slen);   /* kept alive by its table or slot */
        break;
    case LUA_TFUNCTION:
        b->kind = 2;
        break;
    default: {
        FILE **fp = luaL_testudata(L, -1, LUA_FILEHANDLE);
        if (!fp)
            luaL_error(L, "a body must be a string, a file handle or a function, not %s",
                       luaL_typename(L, -1));
        b->kind = 1;
        b->fp = *fp;
        if (!b->fp)
            luaL_error(L, "the body file is closed");
        b->start = ftell(b->fp);
        break;
    }
    }
    lua_pop(L, 1);
}

/* Number of recipients of the envelope table at t; raises unless 1..max. */
static size_t env_nrcpt(lua_State *L, int t)
{
    size_t n;
    lua_getfield(L, t, "to");
    luaL_checktype(L, -1, LUA_TTABLE);
    n = lua_rawlen(L, -1);
    lua_pop(L, 1);
    if (n == 0 || n > SMTPKIT_SESSION_MAX_RCPT)
        luaL_error(L, "envelope 'to' needs 1 to %d recipients", SMTPKIT_SESSION_MAX_RCPT);
    return n;
}

/* Reads the envelope table at t into env, its recipients into rc (room for
 * env_nrcpt). The strings stay owned by the table. Raises on wrong types. */
static void env_read(lua_State *L, int t, smtpkit_envelope *env, smtpkit_recipient *rc,
                     const body_state *b)
{
    size_t n = env_nrcpt(L, t);
    memset(env, 0, sizeof *env);
    env->from = opt_string(L, t, "from");
    lua_getfield(L, t, "to");
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, -1, (int)i + 1);
        memset(&rc[i], 0, sizeof rc[i]);
        if (lua_type(L, -1) == LUA_TSTRING) {
            rc[i].address = lua_tostring(L, -1);
        } else if (lua_istable(L, -1)) {
            int ti = lua_gettop(L);
            rc[i].address = opt_string(L, ti, "address");
            rc[i].notify = opt_string(L, ti, "notify");
            rc[i].orcpt = opt_string(L, ti, "orcpt");
            if (!rc[i].address)
                luaL_error(L, "recipient %d has no address", (int)i + 1);
        } else {
            luaL_error(L, "recipient %d must be a string or a table", (int)i + 1);
        }
        lua_pop(L, 1);   /* the strings live in the envelope table */
    }
    lua_pop(L, 1);
    env->rcpt = rc;
    env->nrcpt = n;
    env->size = (long long)opt_number(L, t, "size", -1);
    env->body_8bit = opt_bool(L, t, "body_8bit", -1);
    if (env->body_8bit < 0 && b->kind == 0)   /* not said: scan a string body; a
                                              * stream stays unknown (-1, see session.h) */
        env->body_8bit = has_8bit(b->s, b->slen);
    env->pass_long_lines = opt_bool(L, t, "long_lines", 0);
    env->dsn_ret = opt_string(L, t, "dsn_ret");
    env->dsn_envid = opt_string(L, t, "dsn_envid");
}

static int l_send(lua_State *L)
{
    conn_ud *u = check_conn(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    smtpkit_envelope env;
    smtpkit_error err;
    body_state b;
    char fbuf[FILE_CHUNK];
    lua_settop(L, 3);
    lua_pushnil(L);            /* 4: the iterator's current chunk */
    lua_pushvalue(L, 3);
    body_init(L, &b, 3, 0, 4, fbuf);
    if (!u->c)
        return luaL_error(L, "the connection is closed");
    smtpkit_recipient *rc = lua_newuserdata(L, env_nrcpt(L, 2) * sizeof *rc);   /* GC'd */
    env_read(L, 2, &env, rc, &b);

    smtpkit_body_source src = { body_read, body_rewind, &b };
    int r = smtpkit_conn_send(u->c, &env, &src, &err);
    const smtpkit_result *res = smtpkit_conn_result(u->c);
    u->L = NULL;
    if (r == 0) {
        smtpkit_lua_push_result(L, res);
        return 1;
    }
    int phase = smtpkit_conn_failed_phase(u->c);
    int resendable = err.kind != SMTPKIT_ERR_VALIDATION && smtpkit_conn_resendable(u->c);
    lua_pushnil(L);
    push_error(L, &err, err.kind == SMTPKIT_ERR_VALIDATION ? -1 : phase, resendable);
    if (res && err.kind != SMTPKIT_ERR_VALIDATION)
        smtpkit_lua_push_result(L, res);
    else
        lua_pushnil(L);
    return 3;
}

/* conn:send_many(envelopes, bodies [, first [, last]]): see the top. Every
 * envelope and body is read before anything is sent, so a wrong type
 * raises with nothing on the wire. */
typedef struct {
    lua_State *L;
    conn_ud *u;
    smtpkit_envelope *env;
    body_state *b;
    size_t first;             /* 1-based index of message 0 */
    int results, errors;      /* stack indices of the output tables */
    smtpkit_body_source src;
} many_state;

static int many_next(void *ud, size_t i, smtpkit_envelope *env,
                     const smtpkit_body_source **src, smtpkit_error *err)
{
    many_state *m = ud;
    (void)err;
    *env = m->env[i];
    m->src.read = body_read;
    m->src.rewind = body_rewind;
    m->src.ud = &m->b[i];
    *src = &m->src;
    return 0;
}

static void many_done(void *ud, size_t i, const smtpkit_result *res, const smtpkit_error *err,
                      int resendable)
{
    many_state *m = ud;
    lua_State *L = m->L;
    int k = (int)(m->first + i);
    luaL_checkstack(L, 8, "send_many");
    if (err && err->kind == SMTPKIT_ERR_VALIDATION)
        res = NULL;   /* nothing was sent: the error says all */
    if (res)
        smtpkit_lua_push_result(L, res);
    else
        lua_pushboolean(L, 0);
    lua_rawseti(L, m->results, k);
    if (err) {
        int phase = smtpkit_conn_failed_phase(m->u->c);
        push_error(L, err, err->kind == SMTPKIT_ERR_VALIDATION ? -1 : phase, resendable);
        lua_rawseti(L, m->errors, k);
    }
}

static int l_send_many(lua_State *L)
{
    conn_ud *u = check_conn(L);
    many_state m;
    smtpkit_batch batch;
    smtpkit_error err;
    char fbuf[FILE_CHUNK];
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_Integer first = luaL_optinteger(L, 4, 1);
    lua_Integer last = luaL_optinteger(L, 5, (lua_Integer)lua_rawlen(L, 2));
    if (first < 1)
        return luaL_argerror(L, 4, "must be >= 1");
    if (!u->c)
        return luaL_error(L, "the connection is closed");
    size_t n = last >= first ? (size_t)(last - first + 1) : 0;
    lua_settop(L, 3);
    lua_pushnil(L);                   /* 4: the iterator's current chunk */
    lua_newtable(L);                  /* 5: results */
    lua_newtable(L);                  /* 6: errors */
    memset(&m, 0, sizeof m);
    m.L = L;
    m.u = u;
    m.first = (size_t)first;
    m.results = 5;
    m.errors = 6;
    /* one block for the envelopes, the body states and every recipient */
    size_t total_rc = 0;
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, 2, (int)(m.first + i));
        luaL_checktype(L, -1, LUA_TTABLE);
        total_rc += env_nrcpt(L, lua_gettop(L));
        lua_pop(L, 1);
    }
    char *block = lua_newuserdata(L, n * (sizeof *m.env + sizeof *m.b)
                                     + total_rc * sizeof(smtpkit_recipient) + 1);   /* 7 */
    m.env = (smtpkit_envelope *)(void *)block;
    m.b = (body_state *)(void *)(m.env + n);
    smtpkit_recipient *rc = (smtpkit_recipient *)(void *)(m.b + n);
    for (size_t i = 0; i < n; i++) {
        int k = (int)(m.first + i);
        lua_rawgeti(L, 3, k);
        body_init(L, &m.b[i], 3, k, 4, fbuf);
        lua_rawgeti(L, 2, k);
        env_read(L, lua_gettop(L), &m.env[i], rc, &m.b[i]);
        rc += m.env[i].nrcpt;
        lua_pop(L, 1);
    }
    batch.n = n;
    batch.next = many_next;
    batch.done = many_done;
    batch.ud = &m;
    size_t sent = smtpkit_conn_send_batch(u->c, &batch, &err);
    u->L = NULL;
    lua_pushvalue(L, 5);
    lua_pushvalue(L, 6);
    lua_pushinteger(L, (lua_Integer)(m.first + sent) - 1);
    if (sent == n)
        return 3;
    push_error(L, &err, smtpkit_conn_failed_phase(u->c), 1);
    return 4;
}

static int l_ready(lua_State *L)
{
    conn_ud *u = check_conn(L);
    lua_pushboolean(L, u->c && smtpkit_conn_ready(u->c));
    u->L = NULL;
    return 1;
}

static int l_quit(lua_State *L)
{
    conn_ud *u = check_conn(L);
    if (u->c)
        smtpkit_conn_quit(u->c);
    release(L, u);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_close(lua_State *L)
{
    conn_ud *u = luaL_checkudata(L, 1, CONN_MT);
    u->L = NULL;
    release(L, u);
    return 0;
}

static int l_info(lua_State *L)
{
    conn_ud *u = check_conn(L);
    u->L = NULL;
    if (!u->c)
        return 0;
    const smtpkit_session *s = smtpkit_conn_session(u->c);
    lua_createtable(L, 0, 8);
    set_str(L, "peer", smtpkit_conn_peer(u->c));
    set_bool(L, "tls", smtpkit_session_tls_active(s));
    if (smtpkit_conn_tls_version(u->c)) {
        set_str(L, "tls_version", smtpkit_conn_tls_version(u->c));
        set_str(L, "tls_cipher", smtpkit_conn_tls_cipher(u->c));
        set_bool(L, "tls_resumed", smtpkit_conn_tls_resumed(u->c));
    }
    if (smtpkit_session_auth_mechanism(s))
        set_str(L, "auth", smtpkit_session_auth_mechanism(s));
    smtpkit_lua_push_caps(L, smtpkit_session_caps(s));
    lua_setfield(L, -2, "capabilities");
    return 1;
}

static const luaL_Reg conn_methods[] = {
    {"send", l_send}, {"send_many", l_send_many}, {"ready", l_ready}, {"quit", l_quit}, {"close", l_close},
    {"info", l_info}, {NULL, NULL}
};

static const luaL_Reg functions[] = {
    {"connect", l_connect}, {"tls_client", l_tls_client}, {NULL, NULL}
};

LUALIB_API int luaopen_smtpkit_net(lua_State *L)
{
    void (*old)(int) = signal(SIGPIPE, SIG_IGN);
    if (old != SIG_DFL && old != SIG_ERR)
        signal(SIGPIPE, old);   /* the host chose a handler: keep it */

    luaL_newmetatable(L, CONN_MT);
    lua_newtable(L);
    luaL_setfuncs(L, conn_methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);

    luaL_newmetatable(L, TLSC_MT);
    lua_pushcfunction(L, l_tls_client_gc);
    lua_setfield(L, -2, "__gc");
    lua_newtable(L);
    lua_pushcfunction(L, l_tls_client_trust);
    lua_setfield(L, -2, "trust");
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);

    lua_newtable(L);
    luaL_setfuncs(L, functions, 0);
    return 1;
}
