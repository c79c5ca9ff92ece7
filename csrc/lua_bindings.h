/*
 * lua_bindings.h - how the binding files of smtpkit.core meet. Each lua_*.c
 * file binds one part of the C core: its opener adds that part's functions
 * (one luaL_Reg table per file) to the module table on the top of the stack.
 * lua_core.c calls every opener; nothing else is shared between them except
 * the helpers declared here.
 */
#ifndef SMTPKIT_LUA_BINDINGS_H
#define SMTPKIT_LUA_BINDINGS_H

#include "lua_compat.h"
#include "reply.h"
#include "session.h"

LUALIB_API int luaopen_smtpkit_core(lua_State *L);

void smtpkit_lua_open_reply(lua_State *L);
void smtpkit_lua_open_classify(lua_State *L);
void smtpkit_lua_open_smtpapi(lua_State *L);
void smtpkit_lua_open_session(lua_State *L);
void smtpkit_lua_open_codec(lua_State *L);
void smtpkit_lua_open_fsutil(lua_State *L);

/* Pushes {code=, enhanced=, lines={...}, text=} for r (lua_reply.c). */
void smtpkit_lua_push_reply(lua_State *L, const smtpkit_reply *r);

/* The tables every transport gives users (lua_result.c): a send's result,
 * an engine error {kind, message, reply?, classification?} (no metatable:
 * the caller sets it), a reply kept by the engine, and the verdict's
 * outcome/reason/action/retry/explanation set on the table on top. */
void smtpkit_lua_push_result(lua_State *L, const smtpkit_result *r);
void smtpkit_lua_push_session_error(lua_State *L, const smtpkit_error *e);
void smtpkit_lua_push_kept_reply(lua_State *L, const smtpkit_session_reply *r);
void smtpkit_lua_set_verdict(lua_State *L, const smtpkit_verdict *v);

/* A server's capabilities as a table {esmtp=, pipelining=, size= (a number,
 * or true without a limit), ["8bitmime"]=, smtputf8=, starttls=,
 * enhancedstatuscodes=, dsn=, chunking=, auth = {PLAIN=true, ...}}, the one
 * shape both transports show; and back (what a resumed session takes). */
void smtpkit_lua_push_caps(lua_State *L, const smtpkit_caps *c);
void smtpkit_lua_caps_from_table(lua_State *L, int idx, smtpkit_caps *c);

/* t[k] = v on the table on top of the stack. */
void smtpkit_lua_set_str(lua_State *L, const char *k, const char *v);
void smtpkit_lua_set_bool(lua_State *L, const char *k, int v);

#endif
