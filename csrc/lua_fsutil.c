/*
 * lua_fsutil.c - Lua face of csrc/fsutil.c, as the table smtpkit.core.fs:
 *   fs.fsync(path)         -> true | nil, message, errno
 *   fs.mkdir(path [,mode]) -> true | nil, message, errno   (mode default 0700)
 *   fs.listdir(path)       -> {name, ...} (unsorted) | nil, message, errno
 *   fs.lock(path [,wait])  -> lock | nil, message, errno ("locked" when held)
 *   lock:unlock()          -> true (idempotent; also done by __gc)
 * Used by lua/smtpkit/outbox_dir.lua for its durable writes.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fsutil.h"
#include "lua_bindings.h"

#define LOCK_MT "smtpkit.fs_lock"
#define LISTDIR_MAX ((size_t)1000000)

static int push_errno(lua_State *L, const char *path, int e)
{
    lua_pushnil(L);
    if (e == EWOULDBLOCK)
        lua_pushfstring(L, "%s: locked by another process", path);
    else
        lua_pushfstring(L, "%s: %s", path, strerror(e));
    lua_pushinteger(L, e);
    return 3;
}

static int l_fsync(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    if (smtpkit_fs_fsync(path) != 0)
        return push_errno(L, path, errno);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_mkdir(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lua_Integer mode = luaL_optinteger(L, 2, 0700);
    if (mode < 0 || mode > 07777)
        return luaL_argerror(L, 2, "mode out of range");
    if (smtpkit_fs_mkdir(path, (unsigned)mode) != 0)
        return push_errno(L, path, errno);
    lua_pushboolean(L, 1);
    return 1;
}

struct listctx {
    lua_State *L;
    int n;
};

static int add_name(const char *name, void *ud)
{
    struct listctx *c = ud;
    lua_pushstring(c->L, name);
    lua_rawseti(c->L, -2, ++c->n);
    return 0;
}

static int l_listdir(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct listctx c;
    c.L = L;
    c.n = 0;
    lua_newtable(L);
    if (smtpkit_fs_listdir(path, LISTDIR_MAX, add_name, &c) != 0)
        return push_errno(L, path, errno);
    return 1;
}

static int l_lock(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int wait = lua_toboolean(L, 2);
    int *ud = lua_newuserdata(L, sizeof *ud);
    *ud = -1;
    luaL_getmetatable(L, LOCK_MT);
    lua_setmetatable(L, -2);
    *ud = smtpkit_fs_lock(path, wait);
    if (*ud < 0)
        return push_errno(L, path, errno);
    return 1;
}

static int l_unlock(lua_State *L)
{
    int *ud = luaL_checkudata(L, 1, LOCK_MT);
    if (*ud >= 0) {
        smtpkit_fs_unlock(*ud);
        *ud = -1;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int l_mtime(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    long long t;
    if (smtpkit_fs_mtime(path, &t) != 0)
        return push_errno(L, path, errno);
    lua_pushnumber(L, (lua_Number)t);
    return 1;
}

static const luaL_Reg lock_methods[] = {
    {"unlock", l_unlock},
    {NULL, NULL}
};

static const luaL_Reg functions[] = {
    {"fsync", l_fsync},
    {"mkdir", l_mkdir},
    {"listdir", l_listdir},
    {"lock", l_lock},
    {"mtime", l_mtime},
    {NULL, NULL}
};

void smtpkit_lua_open_fsutil(lua_State *L)
{
    if (luaL_newmetatable(L, LOCK_MT)) {
        lua_newtable(L);
        luaL_setfuncs(L, lock_methods, 0);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_unlock);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    lua_newtable(L);
    luaL_setfuncs(L, functions, 0);
    lua_setfield(L, -2, "fs");
}
