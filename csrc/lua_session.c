/*
 * lua_session.c - Lua face of csrc/session.c: the SMTP engine as an object a
 * Lua transport (OpenResty cosockets, resty.lua) drives. The engine does no
 * I/O; this file neither.
 *
 *   core.session(opts) -> s          (error() on wrong types; nil, err on
 *                                     invalid values, err a kind=validation table)
 *     opts = { helo = "name", tls = "starttls"|"opportunistic"|"implicit"|"none",
 *              tls_active = bool, username =, password =, xoauth2_token =,
 *              auth_mechanism = "PLAIN"|"LOGIN"|"CRAM-MD5"|"XOAUTH2", allow_plaintext_auth = bool,
 *              pipelining = bool (default true), pipeline_window = n, output_max = n,
 *              trace = function(direction, line) end }   -- direction "send"|"recv"|"info";
 *                                                          -- called synchronously
 *   s:want()            -> "write"|"read"|"tls"|"body"|"ready"|"done"|"failed"
 *   s:phase()           -> phase name ("greeting", "ehlo", "starttls", "auth", "mail",
 *                          "rcpt", "data", "data_block", "dot", "quit", "connect"),
 *                          default timeout in seconds (RFC 5321 4.5.3.2); after a
 *                          failure, the phase it failed in (session.h says which)
 *   s:resendable()      -> true when the session failed in a way that lets the
 *                          transport send the message again on a new connection
 *                          (smtpkit_session_resendable: EOF/421 before MAIL was
 *                          answered, or while idle)
 *   s:output()          -> all pending bytes as one string (marked written), or nil
 *                          when none. Send it whole with one sock:send().
 *   s:receive(bytes)    -> true | nil, err
 *   s:tls_done()        -> true | nil, err
 *   s:closed()          -- the peer closed / the socket failed (maybe_delivered logic)
 *   s:timeout()         -- the phase timeout ran out
 *   s:abort(kind, msg)  -- a transport error (kind "connect", "tls", "dns", "timeout")
 *   s:begin(envelope)   -> true | nil, err (kind validation: nothing was sent)
 *     envelope = { from = "a@b" (or "" for <>), to = { "x@y", {address=, notify=,
 *                  orcpt=}, ... }, size = n, body_8bit = bool (nil: 7 bit; an
 *                  8-bit body octet then fails the session before the end of
 *                  data), long_lines = bool,
 *                  dsn_ret = "FULL"|"HDRS", dsn_envid = "..." }
 *   s:body(chunk [, i]) -> n: bytes of chunk consumed starting at index i (default
 *                          1); when fewer than remain, want is "write": send
 *                          s:output() and call again with i + n. nil, err on failure.
 *   s:body_end()        -> true | nil, err
 *   s:body_pass()       -> 1, 2, ...: when it changes while want is "body", give
 *                          the body again from its first byte
 *   s:result()          -> result table (or nil before the first begin):
 *     { ok=, complete=, outcome=, reason=, action=, retry=, explanation=,
 *       queue_id= (or nil), reply = {code=,enhanced=,text=,lines=} (or nil),
 *       maybe_delivered=, accepted = n,
 *       recipients = { {address=, ok=, reply= (or nil), outcome=, reason=, action=,
 *                       retry=, explanation=, pass=, queue_id= (when ok:
 *                       its pass's)}, ... } }
 *   core.session{..., resume = caps}: a connection already past EHLO and AUTH,
 *                          idle (pooled): starts "ready" with those
 *                          capabilities (a table as s:capabilities() gives);
 *                          the first begin sends RSET, pipelined with MAIL
 *   s:overlap(on)       -- begin the next message behind the end of data, its
 *                          reply outstanding (smtpkit_session_overlap): want
 *                          "ready" then means "begin may pipeline"
 *   s:result_prev()     -> after a begin, the message before it's result
 *                          (final once .complete), else nil
 *   s:error()           -> err table or nil: { kind=, message=, reply= (or nil),
 *                          classification = {outcome=,reason=,action=,retry=,
 *                          explanation=} (or nil) }, metatable core.error_mt
 *                          (__tostring gives message; lua/smtpkit/error.lua)
 *   s:quit()            -> true | nil, err
 *   s:reset()           -> true | nil, err: sends RSET when ready (liveness check of
 *                          a pooled connection); want goes write, read, ready
 *   s:capabilities()    -> { esmtp=, pipelining=, size= (number or true),
 *                            ["8bitmime"]=, smtputf8=, starttls=, enhancedstatuscodes=,
 *                            dsn=, chunking=, auth = { PLAIN=true, ... } }
 *   s:tls()             -> true when the channel is TLS
 *   s:auth_mechanism()  -> "PLAIN"... or nil
 *   core.phase_timeout(name) -> seconds
 *
 * The DATA encoder alone (csrc/data.h), for tests and previews:
 *   core.encode_data(body [, long_lines [, with_end = true]]) -> bytes | nil, err
 *   core.data_encoder([long_lines]) -> enc; enc:encode(chunk) -> bytes | nil, err;
 *                                     enc:finish() -> "[\r\n].\r\n"
 */
#include <stdlib.h>
#include <string.h>

#include "lua_bindings.h"
#include "session.h"
#include "data.h"

#define SESSION_MT "smtpkit.session"
#define ERROR_MT "smtpkit.error"
#define ENCODER_MT "smtpkit.data_encoder"

typedef struct lsession {
    smtpkit_session *s;
    lua_State *L;          /* the state of the current method call (for trace) */
    int trace_ref;
} lsession;

static lsession *check(lua_State *L)
{
    lsession *u = luaL_checkudata(L, 1, SESSION_MT);
    if (!u->s)
        luaL_error(L, "session already freed");
    u->L = L;
    return u;
}

static void l_trace(void *ud, int dir, const char *line, size_t len)
{
    lsession *u = ud;
    lua_State *L = u->L;
    if (!L || u->trace_ref == LUA_NOREF || u->trace_ref == LUA_REFNIL)
        return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, u->trace_ref);
    lua_pushstring(L, dir == SMTPKIT_TRACE_SEND ? "send" : dir == SMTPKIT_TRACE_RECV ? "recv"
                                                                                  : "info");
    lua_pushlstring(L, line, len);
    if (lua_pcall(L, 2, 0, 0) != 0)
        lua_pop(L, 1);   /* a failing trace function must not break the session */
}

/* --- tables -------------------------------------------------------------- */

static void push_error(lua_State *L, const smtpkit_error *e)
{
    smtpkit_lua_push_session_error(L, e);
    luaL_getmetatable(L, ERROR_MT);
    lua_setmetatable(L, -2);
}

static void push_validation(lua_State *L, const char *msg)
{
    smtpkit_error e;
    memset(&e, 0, sizeof e);
    e.kind = SMTPKIT_ERR_VALIDATION;
    strncpy(e.message, msg, sizeof e.message - 1);
    push_error(L, &e);
}

/* nil, err for the session's last error. */
static int fail_ret(lua_State *L, lsession *u)
{
    const smtpkit_error *e = smtpkit_session_error(u->s);
    lua_pushnil(L);
    if (e)
        push_error(L, e);
    else
        push_validation(L, "failed");
    return 2;
}

/* After a -1 that may be a programming mistake (kind protocol while the
 * session still runs): raise it; otherwise nil, err. */
static int soft_ret(lua_State *L, lsession *u)
{
    const smtpkit_error *e = smtpkit_session_error(u->s);
    if (e && e->kind == SMTPKIT_ERR_PROTOCOL
        && smtpkit_session_want(u->s) != SMTPKIT_WANT_FAILED)
        return luaL_error(L, "%s", e->message);
    return fail_ret(L, u);
}

/* --- construction -------------------------------------------------------- */

/* opts[field] as a string without NUL, or NULL; error() on a wrong type. */
static const char *opt_str(lua_State *L, int t, const char *field, int *bad)
{
    const char *v;
    size_t len;
    lua_getfield(L, t, field);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return NULL;
    }
    if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "%s must be a string", field);
    v = lua_tolstring(L, -1, &len);
    if (strlen(v) != len)
        *bad = 1;
    lua_pop(L, 1);   /* still referenced by the table */
    return v;
}

static int opt_bool(lua_State *L, int t, const char *field, int def)
{
    int v;
    lua_getfield(L, t, field);
    if (lua_isnil(L, -1))
        v = def;
    else if (lua_type(L, -1) == LUA_TBOOLEAN)
        v = lua_toboolean(L, -1);
    else
        return luaL_error(L, "%s must be a boolean", field);
    lua_pop(L, 1);
    return v;
}

static lua_Integer opt_int(lua_State *L, int t, const char *field, lua_Integer def)
{
    lua_Integer v;
    lua_getfield(L, t, field);
    if (lua_isnil(L, -1))
        v = def;
    else if (lua_type(L, -1) == LUA_TNUMBER)
        v = (lua_Integer)lua_tonumber(L, -1);
    else
        return luaL_error(L, "%s must be a number", field);
    lua_pop(L, 1);
    return v;
}

static int l_session(lua_State *L)
{
    smtpkit_caps resume;
    smtpkit_session_options o;
    lsession *u;
    const char *tls;
    char err[200];
    int bad = 0;
    lua_Integer n;

    smtpkit_session_options_init(&o);
    if (lua_isnoneornil(L, 1))
        lua_newtable(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    o.helo_name = opt_str(L, 1, "helo", &bad);
    tls = opt_str(L, 1, "tls", &bad);
    if (tls) {
        if (strcmp(tls, "starttls") == 0)
            o.tls = SMTPKIT_TLS_STARTTLS;
        else if (strcmp(tls, "opportunistic") == 0)
            o.tls = SMTPKIT_TLS_OPPORTUNISTIC;
        else if (strcmp(tls, "implicit") == 0)
            o.tls = SMTPKIT_TLS_IMPLICIT;
        else if (strcmp(tls, "none") == 0)
            o.tls = SMTPKIT_TLS_NONE;
        else
            return luaL_error(L, "tls must be \"starttls\", \"opportunistic\", \"implicit\" "
                                 "or \"none\"");
    }
    o.tls_active = opt_bool(L, 1, "tls_active", 0);
    o.username = opt_str(L, 1, "username", &bad);
    o.password = opt_str(L, 1, "password", &bad);
    o.xoauth2_token = opt_str(L, 1, "xoauth2_token", &bad);
    o.auth_mechanism = opt_str(L, 1, "auth_mechanism", &bad);
    o.allow_plaintext_auth = opt_bool(L, 1, "allow_plaintext_auth", 0);
    o.pipelining = opt_bool(L, 1, "pipelining", 1);
    n = opt_int(L, 1, "pipeline_window", 0);
    if (n < 0)
        return luaL_error(L, "pipeline_window must be >= 0");
    o.pipeline_window = (size_t)n;
    n = opt_int(L, 1, "output_max", 0);
    if (n < 0)
        return luaL_error(L, "output_max must be >= 0");
    o.output_max = (size_t)n;
    lua_getfield(L, 1, "resume");
    if (!lua_isnil(L, -1)) {
        if (!lua_istable(L, -1))
            return luaL_error(L, "resume must be a capabilities table (s:capabilities())");
        smtpkit_lua_caps_from_table(L, lua_gettop(L), &resume);
        o.resume = &resume;
    }
    lua_pop(L, 1);
    lua_getfield(L, 1, "trace");
    if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TFUNCTION)
        return luaL_error(L, "trace must be a function");
    /* stack: opts, trace */
    if (bad) {
        lua_pushnil(L);
        push_validation(L, "session options must not contain NUL bytes");
        return 2;
    }
    u = lua_newuserdata(L, sizeof *u);
    u->s = NULL;
    u->L = L;
    u->trace_ref = LUA_NOREF;
    luaL_getmetatable(L, SESSION_MT);
    lua_setmetatable(L, -2);
    o.trace = l_trace;
    o.trace_ud = u;
    u->s = smtpkit_session_new(&o, err, sizeof err);
    if (!u->s) {
        lua_pushnil(L);
        push_validation(L, err);
        return 2;
    }
    if (!lua_isnil(L, 2)) {
        lua_pushvalue(L, 2);
        u->trace_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    return 1;
}

static int l_gc(lua_State *L)
{
    lsession *u = luaL_checkudata(L, 1, SESSION_MT);
    if (u->s) {
        smtpkit_session_free(u->s);
        u->s = NULL;
    }
    if (u->trace_ref != LUA_NOREF && u->trace_ref != LUA_REFNIL)
        luaL_unref(L, LUA_REGISTRYINDEX, u->trace_ref);
    u->trace_ref = LUA_NOREF;
    return 0;
}

/* --- the loop ------------------------------------------------------------ */

static int l_want(lua_State *L)
{
    lsession *u = check(L);
    lua_pushstring(L, smtpkit_want_name(smtpkit_session_want(u->s)));
    return 1;
}

static int l_phase(lua_State *L)
{
    lsession *u = check(L);
    smtpkit_phase p = smtpkit_session_phase(u->s);
    lua_pushstring(L, smtpkit_phase_name(p));
    lua_pushinteger(L, smtpkit_phase_timeout(p));
    return 2;
}

static int l_resendable(lua_State *L)
{
    lsession *u = check(L);
    lua_pushboolean(L, smtpkit_session_resendable(u->s));
    return 1;
}

static int l_output(lua_State *L)
{
    lsession *u = check(L);
    size_t n;
    const char *p = smtpkit_session_output(u->s, &n);
    if (!n) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushlstring(L, p, n);
    smtpkit_session_written(u->s, n);
    return 1;
}

static int l_receive(lua_State *L)
{
    lsession *u = check(L);
    size_t n;
    const char *p = luaL_checklstring(L, 2, &n);
    if (smtpkit_session_receive(u->s, p, n) < 0)
        return fail_ret(L, u);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_tls_done(lua_State *L)
{
    lsession *u = check(L);
    if (smtpkit_session_tls_done(u->s) < 0)
        return fail_ret(L, u);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_closed(lua_State *L)
{
    lsession *u = check(L);
    smtpkit_session_eof(u->s);
    return 0;
}

static int l_timeout(lua_State *L)
{
    lsession *u = check(L);
    smtpkit_session_timeout(u->s);
    return 0;
}

static int l_abort(lua_State *L)
{
    static const char *const kinds[] = {
        "dns", "connect", "timeout", "tls", "tls_required", "protocol", "auth",
        "validation", "server", NULL
    };
    lsession *u = check(L);
    int k = luaL_checkoption(L, 2, NULL, kinds);
    const char *msg = luaL_optstring(L, 3, kinds[k]);
    smtpkit_session_abort(u->s, (smtpkit_error_kind)(k + 1), msg);
    return 0;
}

/* --- transactions -------------------------------------------------------- */

/* t[field] as a string (NULL when nil); *bad on an embedded NUL. */
static const char *field_str(lua_State *L, int t, const char *field, int *bad)
{
    return opt_str(L, t, field, bad);
}

static int l_begin(lua_State *L)
{
    lsession *u = check(L);
    smtpkit_envelope env;
    smtpkit_recipient *rc;
    size_t i, n;
    int bad = 0, to, anchor;
    lua_Number size;

    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    memset(&env, 0, sizeof env);
    env.from = field_str(L, 2, "from", &bad);
    lua_getfield(L, 2, "to");                 /* 3 */
    to = lua_gettop(L);
    if (lua_type(L, to) == LUA_TSTRING) {
        lua_createtable(L, 1, 0);
        lua_pushvalue(L, to);
        lua_rawseti(L, -2, 1);
        lua_replace(L, to);
    }
    if (lua_type(L, to) != LUA_TTABLE)
        return luaL_error(L, "envelope.to must be a string or a list of recipients");
    n = lua_rawlen(L, to);
    rc = lua_newuserdata(L, (n ? n : 1) * sizeof *rc);   /* 4 */
    lua_newtable(L);                                      /* 5: anchors made strings */
    anchor = lua_gettop(L);
    for (i = 0; i < n; i++) {
        size_t len;
        lua_rawgeti(L, to, (int)i + 1);
        memset(&rc[i], 0, sizeof rc[i]);
        if (lua_type(L, -1) == LUA_TSTRING) {
            rc[i].address = lua_tolstring(L, -1, &len);
            if (strlen(rc[i].address) != len)
                bad = 1;
        } else if (lua_type(L, -1) == LUA_TTABLE) {
            int r = lua_gettop(L);
            rc[i].address = field_str(L, r, "address", &bad);
            if (!rc[i].address)
                return luaL_error(L, "recipient #%d has no address", (int)i + 1);
            lua_getfield(L, r, "notify");
            if (lua_type(L, -1) == LUA_TTABLE) {
                /* {"SUCCESS", "FAILURE"} -> "SUCCESS,FAILURE", kept alive in
                 * the anchor table (the caller's table is left alone). */
                luaL_Buffer b;
                size_t k, m = lua_rawlen(L, -1);
                int nt = lua_gettop(L);
                luaL_buffinit(L, &b);
                for (k = 1; k <= m; k++) {
                    if (k > 1)
                        luaL_addchar(&b, ',');
                    lua_rawgeti(L, nt, (int)k);
                    if (lua_type(L, -1) != LUA_TSTRING)
                        return luaL_error(L, "notify entries must be strings");
                    luaL_addvalue(&b);
                }
                luaL_pushresult(&b);
                rc[i].notify = lua_tolstring(L, -1, &len);
                if (strlen(rc[i].notify) != len)
                    bad = 1;
                lua_rawseti(L, anchor, (int)i + 1);
                lua_pop(L, 1);
            } else {
                lua_pop(L, 1);
                rc[i].notify = field_str(L, r, "notify", &bad);
            }
            rc[i].orcpt = field_str(L, r, "orcpt", &bad);
        } else
            return luaL_error(L, "recipient #%d must be a string or a table", (int)i + 1);
        lua_pop(L, 1);   /* the value stays referenced by the list */
    }
    env.rcpt = rc;
    env.nrcpt = n;
    lua_getfield(L, 2, "size");
    if (lua_isnil(L, -1))
        size = -1;
    else if (lua_type(L, -1) == LUA_TNUMBER)
        size = lua_tonumber(L, -1);
    else
        return luaL_error(L, "envelope.size must be a number");
    if (!(size >= -1 && size < 1e15))   /* NaN too */
        return luaL_error(L, "envelope.size must be a number from 0 to 1e15");
    lua_pop(L, 1);
    env.size = size < 0 ? -1 : (long long)size;
    env.body_8bit = opt_bool(L, 2, "body_8bit", 0);   /* nil: 7 bit, checked as it streams */
    env.pass_long_lines = opt_bool(L, 2, "long_lines", 0);
    env.dsn_ret = field_str(L, 2, "dsn_ret", &bad);
    env.dsn_envid = field_str(L, 2, "dsn_envid", &bad);
    if (bad) {
        lua_pushnil(L);
        push_validation(L, "envelope fields must not contain NUL bytes");
        return 2;
    }
    if (smtpkit_session_begin(u->s, &env) < 0)
        return soft_ret(L, u);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_body(lua_State *L)
{
    lsession *u = check(L);
    size_t len, used = 0;
    const char *p = luaL_checklstring(L, 2, &len);
    lua_Integer i = luaL_optinteger(L, 3, 1);
    if (i < 1)
        i = 1;
    if ((size_t)(i - 1) > len)
        i = (lua_Integer)len + 1;
    if (smtpkit_session_body(u->s, p + (i - 1), len - (size_t)(i - 1), &used) < 0)
        return soft_ret(L, u);
    lua_pushinteger(L, (lua_Integer)used);
    return 1;
}

static int l_body_end(lua_State *L)
{
    lsession *u = check(L);
    if (smtpkit_session_body_end(u->s) < 0)
        return soft_ret(L, u);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_body_pass(lua_State *L)
{
    lsession *u = check(L);
    lua_pushinteger(L, (lua_Integer)smtpkit_session_body_pass(u->s));
    return 1;
}

static int l_result(lua_State *L)
{
    lsession *u = check(L);
    const smtpkit_result *r = smtpkit_session_result(u->s);
    if (!r)
        lua_pushnil(L);
    else
        smtpkit_lua_push_result(L, r);
    return 1;
}

/* s:result_prev() -> the previous transaction's result after a begin made
 * under overlap, else nil */
static int l_result_prev(lua_State *L)
{
    lsession *u = check(L);
    const smtpkit_result *r = smtpkit_session_result_prev(u->s);
    if (!r)
        lua_pushnil(L);
    else
        smtpkit_lua_push_result(L, r);
    return 1;
}

/* s:overlap(on): see smtpkit_session_overlap */
static int l_overlap(lua_State *L)
{
    lsession *u = check(L);
    luaL_checktype(L, 2, LUA_TBOOLEAN);
    smtpkit_session_overlap(u->s, lua_toboolean(L, 2));
    return 0;
}

static int l_error(lua_State *L)
{
    lsession *u = check(L);
    const smtpkit_error *e = smtpkit_session_error(u->s);
    if (!e)
        lua_pushnil(L);
    else
        push_error(L, e);
    return 1;
}

static int l_quit(lua_State *L)
{
    lsession *u = check(L);
    if (smtpkit_session_quit(u->s) < 0)
        return soft_ret(L, u);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_reset(lua_State *L)
{
    lsession *u = check(L);
    if (smtpkit_session_reset(u->s) < 0)
        return soft_ret(L, u);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_capabilities(lua_State *L)
{
    lsession *u = check(L);
    smtpkit_lua_push_caps(L, smtpkit_session_caps(u->s));
    return 1;
}

static int l_tls(lua_State *L)
{
    lsession *u = check(L);
    lua_pushboolean(L, smtpkit_session_tls_active(u->s));
    return 1;
}

static int l_auth_mechanism(lua_State *L)
{
    lsession *u = check(L);
    const char *m = smtpkit_session_auth_mechanism(u->s);
    if (m)
        lua_pushstring(L, m);
    else
        lua_pushnil(L);
    return 1;
}

static int l_phase_timeout(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    int p;
    for (p = 0; p < SMTPKIT_PHASE_COUNT; p++)
        if (strcmp(name, smtpkit_phase_name((smtpkit_phase)p)) == 0) {
            lua_pushinteger(L, smtpkit_phase_timeout((smtpkit_phase)p));
            return 1;
        }
    return luaL_error(L, "unknown phase '%s'", name);
}

/* --- the DATA encoder on its own ---------------------------------------- */

static int l_data_encoder(lua_State *L)
{
    smtpkit_data_encoder *e = lua_newuserdata(L, sizeof *e);
    smtpkit_data_init(e, lua_toboolean(L, 1));
    luaL_getmetatable(L, ENCODER_MT);
    lua_setmetatable(L, -2);
    return 1;
}

static int encode_into(lua_State *L, smtpkit_data_encoder *e, const char *p, size_t len,
                       luaL_Buffer *b)
{
    while (len > 0) {
        char tmp[8192];
        size_t used, out;
        smtpkit_data_status st = smtpkit_data_encode(e, p, len, &used, tmp, sizeof tmp, &out);
        luaL_addlstring(b, tmp, out);
        if (st != SMTPKIT_DATA_OK) {
            (void)L;
            return -1;
        }
        p += used;
        len -= used;
    }
    return 0;
}

/* enc:encode(chunk) -> encoded bytes | nil, err (a line over 998 octets) */
static int l_enc_encode(lua_State *L)
{
    smtpkit_data_encoder *e = luaL_checkudata(L, 1, ENCODER_MT);
    size_t len;
    const char *p = luaL_checklstring(L, 2, &len);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    if (encode_into(L, e, p, len, &b) < 0) {
        luaL_pushresult(&b);
        lua_pushnil(L);
        push_validation(L, "a body line is longer than 998 octets");
        return 2;
    }
    luaL_pushresult(&b);
    return 1;
}

/* enc:finish() -> the end of data: "[CRLF].CRLF" */
static int l_enc_finish(lua_State *L)
{
    smtpkit_data_encoder *e = luaL_checkudata(L, 1, ENCODER_MT);
    char end[SMTPKIT_DATA_END_MAX];
    size_t n = smtpkit_data_finish(e, end);
    lua_pushlstring(L, end, n);
    return 1;
}

/* core.encode_data(body [, long_lines [, with_end]]) -> bytes | nil, err */
static int l_encode_data(lua_State *L)
{
    size_t len;
    const char *p = luaL_checklstring(L, 1, &len);
    int long_lines = lua_toboolean(L, 2);
    int with_end = lua_isnoneornil(L, 3) ? 1 : lua_toboolean(L, 3);
    smtpkit_data_encoder e;
    luaL_Buffer b;
    smtpkit_data_init(&e, long_lines);
    luaL_buffinit(L, &b);
    if (encode_into(L, &e, p, len, &b) < 0) {
        luaL_pushresult(&b);
        lua_pushnil(L);
        push_validation(L, "a body line is longer than 998 octets");
        return 2;
    }
    if (with_end) {
        char end[SMTPKIT_DATA_END_MAX];
        size_t n = smtpkit_data_finish(&e, end);
        luaL_addlstring(&b, end, n);
    }
    luaL_pushresult(&b);
    return 1;
}

static const luaL_Reg encoder_methods[] = {
    {"encode", l_enc_encode},
    {"finish", l_enc_finish},
    {NULL, NULL}
};

static int l_error_tostring(lua_State *L)
{
    lua_getfield(L, 1, "message");
    if (lua_type(L, -1) != LUA_TSTRING) {
        lua_pop(L, 1);
        lua_getfield(L, 1, "kind");
        if (lua_type(L, -1) != LUA_TSTRING) {
            lua_pop(L, 1);
            lua_pushliteral(L, "smtpkit error");
        }
    }
    return 1;
}

static const luaL_Reg methods[] = {
    {"want", l_want},
    {"phase", l_phase},
    {"resendable", l_resendable},
    {"output", l_output},
    {"receive", l_receive},
    {"tls_done", l_tls_done},
    {"closed", l_closed},
    {"timeout", l_timeout},
    {"abort", l_abort},
    {"begin", l_begin},
    {"body", l_body},
    {"body_end", l_body_end},
    {"body_pass", l_body_pass},
    {"result", l_result},
    {"result_prev", l_result_prev},
    {"overlap", l_overlap},
    {"error", l_error},
    {"quit", l_quit},
    {"reset", l_reset},
    {"capabilities", l_capabilities},
    {"tls", l_tls},
    {"auth_mechanism", l_auth_mechanism},
    {NULL, NULL}
};

static const luaL_Reg functions[] = {
    {"session", l_session},
    {"phase_timeout", l_phase_timeout},
    {"data_encoder", l_data_encoder},
    {"encode_data", l_encode_data},
    {NULL, NULL}
};

void smtpkit_lua_open_session(lua_State *L)
{
    if (luaL_newmetatable(L, SESSION_MT)) {
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, ENCODER_MT)) {
        lua_newtable(L);
        luaL_setfuncs(L, encoder_methods, 0);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    luaL_newmetatable(L, ERROR_MT);
    lua_pushcfunction(L, l_error_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_setfield(L, -2, "error_mt");   /* core.error_mt: shared with error.lua */
    luaL_setfuncs(L, functions, 0);
}
