/*
 * lua_result.c - the tables both transports give users: a send's result, an
 * engine error, and a server's capabilities (both ways). The engine's Lua face (lua_session.c, driven by
 * resty.lua) and the C transport's (lua_net.c, smtpkit.net) build them here,
 * so a result is the same table whichever transport sent the message.
 * Registers no Lua function; linked into smtpkit.core and smtpkit.net.
 */
#include <stdlib.h>
#include <string.h>

#include "lua_bindings.h"

void smtpkit_lua_set_str(lua_State *L, const char *k, const char *v)
{
    lua_pushstring(L, v);
    lua_setfield(L, -2, k);
}

void smtpkit_lua_set_bool(lua_State *L, const char *k, int v)
{
    lua_pushboolean(L, v);
    lua_setfield(L, -2, k);
}

#define set_str smtpkit_lua_set_str
#define set_bool smtpkit_lua_set_bool

void smtpkit_lua_set_verdict(lua_State *L, const smtpkit_verdict *v)
{
    set_str(L, "outcome", smtpkit_outcome_name(v->outcome));
    set_str(L, "reason", smtpkit_reason_name(v->reason));
    set_str(L, "action", smtpkit_action_name(v->action));
    set_bool(L, "retry", v->retry);
    if (v->explanation)
        set_str(L, "explanation", v->explanation);
}

void smtpkit_lua_push_kept_reply(lua_State *L, const smtpkit_session_reply *r)
{
    /* A full reply is 17 KiB: too big for the stack of a Lua C function. */
    smtpkit_reply *full = malloc(sizeof *full);
    if (!full)
        luaL_error(L, "out of memory");
    smtpkit_session_reply_expand(r, full);
    smtpkit_lua_push_reply(L, full);
    free(full);
}

void smtpkit_lua_push_session_error(lua_State *L, const smtpkit_error *e)
{
    lua_createtable(L, 0, 6);
    set_str(L, "kind", smtpkit_error_kind_name(e->kind));
    set_str(L, "message", e->message);
    if (e->reply.code) {
        smtpkit_lua_push_kept_reply(L, &e->reply);
        lua_setfield(L, -2, "reply");
        lua_createtable(L, 0, 5);
        smtpkit_lua_set_verdict(L, &e->verdict);
        lua_setfield(L, -2, "classification");
    }
}

void smtpkit_lua_push_result(lua_State *L, const smtpkit_result *r)
{
    size_t i;

    lua_createtable(L, 0, 12);
    set_bool(L, "ok", r->ok);
    set_bool(L, "complete", r->complete);
    smtpkit_lua_set_verdict(L, &r->verdict);
    if (r->queue_id[0])
        set_str(L, "queue_id", r->queue_id);
    if (r->reply.code) {
        smtpkit_lua_push_kept_reply(L, &r->reply);
        lua_setfield(L, -2, "reply");
    }
    set_bool(L, "maybe_delivered", r->maybe_delivered);
    lua_pushinteger(L, (lua_Integer)r->naccepted);
    lua_setfield(L, -2, "accepted");
    lua_createtable(L, (int)r->nrcpt, 0);
    for (i = 0; i < r->nrcpt; i++) {
        const smtpkit_rcpt_result *x = &r->rcpt[i];
        lua_createtable(L, 0, 10);
        set_str(L, "address", x->address);
        set_bool(L, "ok", x->ok);
        if (x->reply.code) {
            smtpkit_lua_push_kept_reply(L, &x->reply);
            lua_setfield(L, -2, "reply");
        }
        smtpkit_lua_set_verdict(L, &x->verdict);
        lua_pushinteger(L, (lua_Integer)x->pass);
        lua_setfield(L, -2, "pass");
        if (x->queue_id[0])
            set_str(L, "queue_id", x->queue_id);
        lua_rawseti(L, -2, (int)i + 1);
    }
    lua_setfield(L, -2, "recipients");
}

/* --- capabilities, both ways ------------------------------------------- */
static const struct { unsigned bit; const char *name; } caps[] = {
    {SMTPKIT_CAP_ESMTP, "esmtp"}, {SMTPKIT_CAP_PIPELINING, "pipelining"},
    {SMTPKIT_CAP_8BITMIME, "8bitmime"}, {SMTPKIT_CAP_SMTPUTF8, "smtputf8"},
    {SMTPKIT_CAP_STARTTLS, "starttls"}, {SMTPKIT_CAP_ENHANCED, "enhancedstatuscodes"},
    {SMTPKIT_CAP_DSN, "dsn"}, {SMTPKIT_CAP_CHUNKING, "chunking"}
};
static const struct { unsigned bit; const char *name; } mechs[] = {
    {SMTPKIT_AUTH_PLAIN, "PLAIN"}, {SMTPKIT_AUTH_LOGIN, "LOGIN"},
    {SMTPKIT_AUTH_XOAUTH2, "XOAUTH2"}, {SMTPKIT_AUTH_CRAM_MD5, "CRAM-MD5"},
    {SMTPKIT_AUTH_OAUTHBEARER, "OAUTHBEARER"}
};

/* A capabilities table (as s:capabilities() gives) at idx, into c. */
void smtpkit_lua_caps_from_table(lua_State *L, int idx, smtpkit_caps *c)
{
    size_t i;
    memset(c, 0, sizeof *c);
    for (i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        lua_getfield(L, idx, caps[i].name);
        if (lua_toboolean(L, -1))
            c->flags |= caps[i].bit;
        lua_pop(L, 1);
    }
    lua_getfield(L, idx, "size");
    if (lua_toboolean(L, -1)) {
        c->flags |= SMTPKIT_CAP_SIZE;
        if (lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1) > 0)
            c->size_max = (unsigned long long)lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    lua_getfield(L, idx, "auth");
    if (lua_istable(L, -1)) {
        c->flags |= SMTPKIT_CAP_AUTH;
        for (i = 0; i < sizeof mechs / sizeof mechs[0]; i++) {
            lua_getfield(L, -1, mechs[i].name);
            if (lua_toboolean(L, -1))
                c->auth |= mechs[i].bit;
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
}

void smtpkit_lua_push_caps(lua_State *L, const smtpkit_caps *c)
{
    size_t i;
    lua_createtable(L, 0, 10);
    for (i = 0; i < sizeof caps / sizeof caps[0]; i++)
        if (c->flags & caps[i].bit)
            set_bool(L, caps[i].name, 1);
    if (c->flags & SMTPKIT_CAP_SIZE) {
        if (c->size_max)
            lua_pushnumber(L, (lua_Number)c->size_max);
        else
            lua_pushboolean(L, 1);
        lua_setfield(L, -2, "size");
    }
    if (c->flags & SMTPKIT_CAP_AUTH) {
        lua_createtable(L, 0, 4);
        for (i = 0; i < sizeof mechs / sizeof mechs[0]; i++)
            if (c->auth & mechs[i].bit)
                set_bool(L, mechs[i].name, 1);
        lua_setfield(L, -2, "auth");
    }
}
