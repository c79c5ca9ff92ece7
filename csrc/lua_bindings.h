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

LUALIB_API int luaopen_smtpkit_core(lua_State *L);

void smtpkit_lua_open_reply(lua_State *L);
void smtpkit_lua_open_classify(lua_State *L);
void smtpkit_lua_open_smtpapi(lua_State *L);
void smtpkit_lua_open_session(lua_State *L);
void smtpkit_lua_open_codec(lua_State *L);
void smtpkit_lua_open_fsutil(lua_State *L);

/* Pushes {code=, enhanced=, lines={...}, text=} for r (lua_reply.c). */
void smtpkit_lua_push_reply(lua_State *L, const smtpkit_reply *r);

#endif
