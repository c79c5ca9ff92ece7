/*
 * lua_reply.c - Lua face of the reply parser: parse_reply(s) for one whole
 * reply, and reply_parser() for bytes as they come off the wire.
 */
#include <string.h>

#include "lua_bindings.h"

#define PARSER_MT "smtpkit.reply_parser"

void smtpkit_lua_push_reply(lua_State *L, const smtpkit_reply *r)
{
    unsigned i;
    size_t enh = strlen(r->enhanced);
    luaL_Buffer b;

    lua_createtable(L, 0, 4);
    lua_pushinteger(L, r->code);
    lua_setfield(L, -2, "code");
    if (enh) {
        lua_pushstring(L, r->enhanced);
        lua_setfield(L, -2, "enhanced");
    }
    lua_createtable(L, (int)r->nlines, 0);
    for (i = 0; i < r->nlines; i++) {
        lua_pushlstring(L, r->text + r->line_off[i], r->line_len[i]);
        lua_rawseti(L, -2, (int)i + 1);
    }
    lua_setfield(L, -2, "lines");

    /* text: the lines joined by one space, each without the enhanced code
     * that RFC 2034 repeats at the start of every line. */
    luaL_buffinit(L, &b);
    for (i = 0; i < r->nlines; i++) {
        const char *s = r->text + r->line_off[i];
        size_t n = r->line_len[i];
        if (enh && n >= enh && memcmp(s, r->enhanced, enh) == 0
            && (n == enh || s[enh] == ' ')) {
            s += enh;
            n -= enh;
            while (n && *s == ' ') {
                s++;
                n--;
            }
        }
        if (i > 0 && n > 0)
            luaL_addchar(&b, ' ');
        luaL_addlstring(&b, s, n);
    }
    luaL_pushresult(&b);
    lua_setfield(L, -2, "text");
}

/* parse_reply(s): s must hold exactly one complete reply. */
static int l_parse_reply(lua_State *L)
{
    size_t len, used;
    const char *s = luaL_checklstring(L, 1, &len);
    smtpkit_reply_parser *p = lua_newuserdata(L, sizeof *p);
    smtpkit_reply_status st;

    smtpkit_reply_parser_init(p);
    st = smtpkit_reply_parser_feed(p, s, len, &used);
    if (st == SMTPKIT_REPLY_ERROR) {
        lua_pushnil(L);
        lua_pushstring(L, smtpkit_reply_parser_error(p));
        return 2;
    }
    if (st == SMTPKIT_REPLY_MORE) {
        lua_pushnil(L);
        lua_pushstring(L, len == 0 ? "empty reply"
                          : "incomplete reply: the last line must end with CRLF "
                            "and must not be a continuation (NNN-) line");
        return 2;
    }
    if (used != len) {
        lua_pushnil(L);
        lua_pushfstring(L, "%d bytes follow the end of the reply", (int)(len - used));
        return 2;
    }
    smtpkit_lua_push_reply(L, &p->reply);
    return 1;
}

static int l_reply_parser(lua_State *L)
{
    smtpkit_reply_parser *p = lua_newuserdata(L, sizeof *p);
    smtpkit_reply_parser_init(p);
    luaL_getmetatable(L, PARSER_MT);
    lua_setmetatable(L, -2);
    return 1;
}

/* parser:feed(bytes) -> list of the replies completed by these bytes (maybe
 * empty), or nil, err, list of the replies completed before the error. */
static int l_parser_feed(lua_State *L)
{
    smtpkit_reply_parser *p = luaL_checkudata(L, 1, PARSER_MT);
    size_t len, used;
    const char *s = luaL_checklstring(L, 2, &len);
    int n = 0;

    lua_newtable(L);
    do {
        smtpkit_reply_status st = smtpkit_reply_parser_feed(p, s, len, &used);
        if (st == SMTPKIT_REPLY_ERROR) {
            lua_pushnil(L);
            lua_pushstring(L, smtpkit_reply_parser_error(p));
            lua_pushvalue(L, -3);
            return 3;
        }
        if (st == SMTPKIT_REPLY_DONE) {
            smtpkit_lua_push_reply(L, &p->reply);
            lua_rawseti(L, -2, ++n);
        }
        s += used;
        len -= used;
    } while (len > 0);
    return 1;
}

/* parser:pending() -> true while a reply has begun and is not complete. */
static int l_parser_pending(lua_State *L)
{
    smtpkit_reply_parser *p = luaL_checkudata(L, 1, PARSER_MT);
    lua_pushboolean(L, smtpkit_reply_parser_pending(p));
    return 1;
}

static int l_parser_reset(lua_State *L)
{
    smtpkit_reply_parser *p = luaL_checkudata(L, 1, PARSER_MT);
    smtpkit_reply_parser_init(p);
    return 0;
}

static const luaL_Reg parser_methods[] = {
    {"feed", l_parser_feed},
    {"pending", l_parser_pending},
    {"reset", l_parser_reset},
    {NULL, NULL}
};

static const luaL_Reg functions[] = {
    {"parse_reply", l_parse_reply},
    {"reply_parser", l_reply_parser},
    {NULL, NULL}
};

void smtpkit_lua_open_reply(lua_State *L)
{
    if (luaL_newmetatable(L, PARSER_MT)) {
        lua_newtable(L);
        luaL_setfuncs(L, parser_methods, 0);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    luaL_setfuncs(L, functions, 0);
}
