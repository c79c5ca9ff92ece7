/*
 * lua_smtpapi.c - Lua face of csrc/smtpapi.c (being written; registers nothing yet).
 */
#include "lua_bindings.h"

static const luaL_Reg functions[] = {
    {NULL, NULL}
};

void smtpkit_lua_open_smtpapi(lua_State *L)
{
    luaL_setfuncs(L, functions, 0);
}
