/*
 * lua_compat.h - the few Lua 5.2+ API calls the bindings use, for the Lua 5.1
 * ABI (PUC 5.1; LuaJIT 2.1 already has them). Binding files include this
 * instead of the Lua headers, so the difference lives in one place.
 */
#ifndef SMTPKIT_LUA_COMPAT_H
#define SMTPKIT_LUA_COMPAT_H

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>   /* LUA_JITLIBNAME tells LuaJIT from PUC 5.1 */

#if LUA_VERSION_NUM == 501 && !defined(LUA_JITLIBNAME)
static inline void smtpkit_setfuncs(lua_State *L, const luaL_Reg *l, int nup)
{
    for (; l->name; l++) {
        int i;
        for (i = 0; i < nup; i++)
            lua_pushvalue(L, -nup);
        lua_pushcclosure(L, l->func, nup);
        lua_setfield(L, -(nup + 2), l->name);
    }
    lua_pop(L, nup);
}
static inline void *smtpkit_testudata(lua_State *L, int i, const char *tname)
{
    void *p = lua_touserdata(L, i);
    if (p && lua_getmetatable(L, i)) {
        luaL_getmetatable(L, tname);
        if (!lua_rawequal(L, -1, -2))
            p = NULL;
        lua_pop(L, 2);
        return p;
    }
    return NULL;
}
#define luaL_setfuncs smtpkit_setfuncs
#define luaL_testudata smtpkit_testudata
#endif

#if LUA_VERSION_NUM == 501
#define lua_rawlen lua_objlen
#endif

#endif
