/*
 * lua_classify.c - Lua face of csrc/classify.c (being written; registers nothing yet).
 */
#include "lua_bindings.h"

static const luaL_Reg functions[] = {
    {NULL, NULL}
};

void smtpkit_lua_open_classify(lua_State *L)
{
    luaL_setfuncs(L, functions, 0);
}
