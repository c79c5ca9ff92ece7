/*
 * lua_classify.c - Lua face of csrc/classify.c:
 *   classify(x)          x: a string (a reply in any wrapping) or a parsed
 *                        reply table {code=, enhanced=, lines= | text=};
 *                        returns {code=, enhanced=, text=, outcome=, reason=,
 *                        action=, retry=, explanation=} (code and enhanced
 *                        absent when none was found). error() for other types.
 *   classify_rules()     every rule as {kind=, match=, reason=, rcpt=,
 *                        generic=, verdicts={...}}: what each can emit.
 *   classify_vocabulary() {outcomes=, reasons=, actions=} as the C enums name them.
 *   classify_ffi         a lightuserdata: the address of ffi_entry below, for
 *                        LuaJIT's FFI (lua/smtpkit/classify_ffi.lua).
 */
#include <string.h>

#include "classify.h"
#include "lua_bindings.h"

/* Pushes the reply text: for a multi-line span, the lines joined by one
 * space, without the "NNN-" and enhanced code each continuation repeats. */
static void push_text(lua_State *L, const smtpkit_verdict *v)
{
    const char *t = v->text, *e = v->text + v->text_len, *nl;
    size_t elen = strlen(v->enhanced);
    luaL_Buffer b;
    int first = 1;

    if (!memchr(t, '\n', v->text_len) && !memchr(t, '\r', v->text_len)) {
        lua_pushlstring(L, t, v->text_len);
        return;
    }
    luaL_buffinit(L, &b);
    while (t < e) {
        const char *le;
        nl = memchr(t, '\n', (size_t)(e - t));
        le = nl ? nl : e;
        if (!first && le - t >= 4 && v->code && t[0] - '0' == v->code / 100
            && t[1] - '0' == v->code / 10 % 10 && t[2] - '0' == v->code % 10
            && (t[3] == '-' || t[3] == ' ')) {
            t += 4;
        }
        if (!first && elen && (size_t)(le - t) >= elen && memcmp(t, v->enhanced, elen) == 0
            && ((size_t)(le - t) == elen || t[elen] == ' ' || t[elen] == '\r'))
            t += elen;
        while (t < le && (*t == ' ' || *t == '\t'))
            t++;
        {
            const char *te = le;
            while (te > t && (te[-1] == '\r' || te[-1] == ' ' || te[-1] == '\t'))
                te--;
            if (te > t) {
                if (!first)
                    luaL_addchar(&b, ' ');
                luaL_addlstring(&b, t, (size_t)(te - t));
                first = 0;
            }
        }
        t = nl ? nl + 1 : e;
    }
    luaL_pushresult(&b);
}

/* The strings every verdict uses are made once, kept in the closure's first
 * upvalue, and reused: keys 1..8, then the names, then explanations keyed by
 * their (static) address. */
enum { K_CODE = 1, K_ENHANCED, K_TEXT, K_OUTCOME, K_REASON, K_ACTION, K_RETRY, K_EXPLANATION,
       N_OUTCOME = 10, N_REASON = 20, N_ACTION = 60 };
static const char *const keys[] = {
    NULL, "code", "enhanced", "text", "outcome", "reason", "action", "retry", "explanation"
};
#define CACHE lua_upvalueindex(1)

static void fill_cache(lua_State *L)
{
    int i;
    lua_newtable(L);
    for (i = K_CODE; i <= K_EXPLANATION; i++) {
        lua_pushstring(L, keys[i]);
        lua_rawseti(L, -2, i);
    }
    for (i = 0; i < SMTPKIT_OUTCOME_COUNT; i++) {
        lua_pushstring(L, smtpkit_outcome_name((smtpkit_outcome)i));
        lua_rawseti(L, -2, N_OUTCOME + i);
    }
    for (i = 0; i < SMTPKIT_REASON_COUNT; i++) {
        lua_pushstring(L, smtpkit_reason_name((smtpkit_reason)i));
        lua_rawseti(L, -2, N_REASON + i);
    }
    for (i = 0; i < SMTPKIT_ACTION_COUNT; i++) {
        lua_pushstring(L, smtpkit_action_name((smtpkit_action)i));
        lua_rawseti(L, -2, N_ACTION + i);
    }
}

/* t[key] = cached value n; t is on the top. */
static void set_cached(lua_State *L, int key, int n)
{
    lua_rawgeti(L, CACHE, key);
    lua_rawgeti(L, CACHE, n);
    lua_rawset(L, -3);
}

static void push_explanation(lua_State *L, const char *e)
{
    lua_pushlightuserdata(L, (void *)(size_t)e);
    lua_rawget(L, CACHE);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushstring(L, e);
        lua_pushlightuserdata(L, (void *)(size_t)e);
        lua_pushvalue(L, -2);
        lua_rawset(L, CACHE);
    }
}

static void push_verdict(lua_State *L, const smtpkit_verdict *v, int with_text)
{
    lua_createtable(L, 0, 8);
    if (v->code) {
        lua_rawgeti(L, CACHE, K_CODE);
        lua_pushinteger(L, v->code);
        lua_rawset(L, -3);
    }
    if (v->enhanced[0]) {
        lua_rawgeti(L, CACHE, K_ENHANCED);
        lua_pushstring(L, v->enhanced);
        lua_rawset(L, -3);
    }
    if (with_text) {
        lua_rawgeti(L, CACHE, K_TEXT);
        push_text(L, v);
        lua_rawset(L, -3);
    }
    set_cached(L, K_OUTCOME, N_OUTCOME + (int)v->outcome);
    set_cached(L, K_REASON, N_REASON + (int)v->reason);
    set_cached(L, K_ACTION, N_ACTION + (int)v->action);
    lua_rawgeti(L, CACHE, K_RETRY);
    lua_pushboolean(L, v->retry);
    lua_rawset(L, -3);
    lua_rawgeti(L, CACHE, K_EXPLANATION);
    push_explanation(L, v->explanation);
    lua_rawset(L, -3);
}

/* classify(table): the fields of a parsed reply. */
static void classify_table(lua_State *L, smtpkit_verdict *v)
{
    int code = 0;
    const char *enh = NULL, *text;
    size_t len;

    lua_getfield(L, 1, "code");
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TNUMBER)
            luaL_error(L, "bad argument #1 to 'classify' (field 'code' must be a number)");
        code = (int)lua_tointeger(L, -1);
    }
    lua_getfield(L, 1, "enhanced");
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "bad argument #1 to 'classify' (field 'enhanced' must be a string)");
        enh = lua_tostring(L, -1);
    }
    lua_getfield(L, 1, "text");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_getfield(L, 1, "lines");
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            lua_pushliteral(L, "");
        } else {
            int lines = lua_gettop(L);
            size_t i, n;
            luaL_Buffer b;
            if (lua_type(L, lines) != LUA_TTABLE)
                luaL_error(L, "bad argument #1 to 'classify' (field 'lines' must be a table)");
            n = lua_rawlen(L, lines);
            luaL_buffinit(L, &b);
            for (i = 1; i <= n; i++) {
                if (i > 1)
                    luaL_addchar(&b, '\n');
                lua_rawgeti(L, lines, (int)i);
                if (lua_type(L, -1) != LUA_TSTRING)
                    luaL_error(L, "bad argument #1 to 'classify' (lines[%d] must be a string)",
                               (int)i);
                luaL_addvalue(&b);
            }
            luaL_pushresult(&b);
        }
    } else if (lua_type(L, -1) != LUA_TSTRING) {
        luaL_error(L, "bad argument #1 to 'classify' (field 'text' must be a string)");
    }
    text = lua_tolstring(L, -1, &len);
    smtpkit_classify_parts(code, enh, text, len, v);
}

static int l_classify(lua_State *L)
{
    smtpkit_verdict v;
    int t = lua_type(L, 1);

    if (t == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(L, 1, &len);
        smtpkit_classify(s, len, &v);
        push_verdict(L, &v, 1);
        return 1;
    }
    if (t == LUA_TTABLE) {
        classify_table(L, &v);       /* leaves code, enhanced, text on the stack */
        push_verdict(L, &v, 1);
        return 1;
    }
    return luaL_argerror(L, 1, lua_pushfstring(L, "string or reply table expected, got %s",
                                               luaL_typename(L, 1)));
}

static const char *const kind_names[] = { "phrase", "hint", "enhanced", "code" };

static int l_classify_rules(lua_State *L)
{
    size_t i, n = smtpkit_classify_rule_count();
    static const int classes[] = { 0, 4, 5 };

    lua_createtable(L, (int)n, 0);
    for (i = 0; i < n; i++) {
        smtpkit_rule_info info;
        smtpkit_verdict v;
        int k, nv = 0;

        smtpkit_classify_rule(i, &info);
        lua_createtable(L, 0, 6);
        lua_pushstring(L, kind_names[info.kind]);
        lua_setfield(L, -2, "kind");
        lua_pushstring(L, info.match);
        lua_setfield(L, -2, "match");
        lua_pushstring(L, smtpkit_reason_name(info.reason));
        lua_setfield(L, -2, "reason");
        lua_pushboolean(L, (info.flags & SMTPKIT_RULE_RCPT_SIDE) != 0);
        lua_setfield(L, -2, "rcpt");
        lua_pushboolean(L, (info.flags & SMTPKIT_RULE_GENERIC) != 0);
        lua_setfield(L, -2, "generic");
        lua_newtable(L);
        for (k = 0; k < 3; k++) {
            if (!smtpkit_classify_rule_verdict(i, classes[k], &v))
                continue;
            push_verdict(L, &v, 0);
            lua_pushinteger(L, info.kind == SMTPKIT_RULE_CODE ? 0 : classes[k]);
            lua_setfield(L, -2, "class");
            lua_rawseti(L, -2, ++nv);
            if (info.kind == SMTPKIT_RULE_CODE)
                break;
        }
        lua_setfield(L, -2, "verdicts");
        lua_rawseti(L, -2, (int)i + 1);
    }
    return 1;
}

static void push_names(lua_State *L, const char *(*name)(int), int count)
{
    int i;
    lua_createtable(L, count, 0);
    for (i = 0; i < count; i++) {
        lua_pushstring(L, name(i));
        lua_rawseti(L, -2, i + 1);
    }
}

static const char *outcome_name(int i) { return smtpkit_outcome_name((smtpkit_outcome)i); }
static const char *reason_name(int i) { return smtpkit_reason_name((smtpkit_reason)i); }
static const char *action_name(int i) { return smtpkit_action_name((smtpkit_action)i); }

static int l_classify_vocabulary(lua_State *L)
{
    lua_createtable(L, 0, 3);
    push_names(L, outcome_name, SMTPKIT_OUTCOME_COUNT);
    lua_setfield(L, -2, "outcomes");
    push_names(L, reason_name, SMTPKIT_REASON_COUNT);
    lua_setfield(L, -2, "reasons");
    push_names(L, action_name, SMTPKIT_ACTION_COUNT);
    lua_setfield(L, -2, "actions");
    return 1;
}

static const luaL_Reg functions[] = {
    {"classify", l_classify},
    {"classify_rules", l_classify_rules},
    {"classify_vocabulary", l_classify_vocabulary},
    {NULL, NULL}
};

/* What lua/smtpkit/classify_ffi.lua calls through LuaJIT's FFI: reached by
 * address from this module, it is the very copy of the C code the binding
 * above runs, however the module was loaded (cpath, preload, static). */
static const struct {
    size_t verdict_size;     /* sizeof(smtpkit_keyed_verdict): the FFI's cdef must agree */
    void (*classify)(const char *s, size_t len, smtpkit_keyed_verdict *out);
} ffi_entry = { sizeof(smtpkit_keyed_verdict), smtpkit_classify_keyed };

void smtpkit_lua_open_classify(lua_State *L)
{
    fill_cache(L);
    luaL_setfuncs(L, functions, 1);
    lua_pushlightuserdata(L, (void *)&ffi_entry);
    lua_setfield(L, -2, "classify_ffi");
}
