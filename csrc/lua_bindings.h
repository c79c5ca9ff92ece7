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

#endif
