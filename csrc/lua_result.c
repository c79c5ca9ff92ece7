/*
 * lua_result.c - the tables both transports give users: a send's result and
 * an engine error. The engine's Lua face (lua_session.c, driven by
 * resty.lua) and the C transport's (lua_net.c, smtpkit.net) build them here,
 * so a result is the same table whichever transport sent the message.
 * Registers no Lua function; linked into smtpkit.core and smtpkit.net.
 */
#include <stdlib.h>

#include "lua_bindings.h"

static void set_str(lua_State *L, const char *k, const char *v)
{
    lua_pushstring(L, v);
    lua_setfield(L, -2, k);
}

static void set_bool(lua_State *L, const char *k, int v)
{
    lua_pushboolean(L, v);
    lua_setfield(L, -2, k);
}

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
