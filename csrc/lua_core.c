/*
 * lua_core.c - luaopen_smtpkit_core: the module every smtpkit Lua file uses.
 * It links cJSON and libc only, never OpenSSL, so that OpenResty (which
 * brings its own OpenSSL) can load it safely: see DESIGN.md.
 */
#include "lua_bindings.h"

#ifndef SMTPKIT_VERSION
#define SMTPKIT_VERSION "scm"
#endif

LUALIB_API int luaopen_smtpkit_core(lua_State *L)
{
    lua_newtable(L);
    smtpkit_lua_open_reply(L);
    smtpkit_lua_open_classify(L);
    smtpkit_lua_open_smtpapi(L);
    smtpkit_lua_open_session(L);
    smtpkit_lua_open_codec(L);
    smtpkit_lua_open_fsutil(L);
    lua_pushliteral(L, SMTPKIT_VERSION);
    lua_setfield(L, -2, "version");
    return 1;
}
