/*
 * lua_smtpapi.c - Lua face of csrc/smtpapi.c (lua/smtpkit/smtpapi.lua wraps
 * these raw functions; users call that module):
 *
 *   smtpapi_validate(text, now)    -> true, warnings | nil, problems
 *   smtpapi_decode(text, now)      -> value, warnings | nil, problems
 *   smtpapi_encode(value, now [, name_len])
 *                                  -> header value | nil, problems
 *   smtpapi_to_json(value)         -> compact JSON text | nil, problems
 *   smtpapi_null                   -> the lightuserdata that stands for null
 *
 * `value` is JSON text or a Lua table. Tables become JSON with their keys
 * sorted (byte order); a table whose keys are exactly 1..n is an array, an
 * empty table is an object unless its metatable has __jsontype = "array"
 * (__jsontype = "object" forces an object). Integral numbers are written as
 * integers on every Lua version, so LuaJIT and 5.4 give the same text.
 * Strings must be UTF-8; non-ASCII is written as \u escapes.
 *
 * Problems are plain tables {path=, message=, severity=, line=, column=,
 * excerpt=}; the Lua module adds the metatables.
 *
 * C memory that a Lua error could strand lives in a userdata with __gc.
 */
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua_bindings.h"
#include "smtpapi.h"

#define BOX_MT "smtpkit.smtpapi_box"
#define MAX_DEPTH SMTPKIT_SMTPAPI_MAX_DEPTH

typedef struct {
    smtpkit_smtpapi_result res;
    smtpkit_smtpapi_doc *doc;
    char *out;       /* encoder output */
    char *j;         /* to_json buffer */
    size_t jn, jcap;
    int jnomem;
} box;

static int box_gc(lua_State *L)
{
    box *b = luaL_checkudata(L, 1, BOX_MT);
    smtpkit_smtpapi_result_free(&b->res);
    smtpkit_smtpapi_doc_free(b->doc);
    b->doc = NULL;
    free(b->out);
    b->out = NULL;
    free(b->j);
    b->j = NULL;
    return 0;
}

static box *new_box(lua_State *L)
{
    box *b = lua_newuserdata(L, sizeof *b);
    memset(b, 0, sizeof *b);
    luaL_getmetatable(L, BOX_MT);
    lua_setmetatable(L, -2);
    return b;
}

static void push_problems(lua_State *L, const smtpkit_smtpapi_result *res)
{
    size_t i;
    lua_createtable(L, (int)res->count, 1);
    for (i = 0; i < res->count; i++) {
        const smtpkit_smtpapi_problem *p = &res->problems[i];
        lua_createtable(L, 0, 6);
        lua_pushstring(L, p->path);
        lua_setfield(L, -2, "path");
        lua_pushstring(L, p->message);
        lua_setfield(L, -2, "message");
        lua_pushstring(L, p->severity == SMTPKIT_SMTPAPI_ERROR ? "error" : "warning");
        lua_setfield(L, -2, "severity");
        if (p->line) {
            lua_pushinteger(L, (lua_Integer)p->line);
            lua_setfield(L, -2, "line");
            lua_pushinteger(L, (lua_Integer)p->column);
            lua_setfield(L, -2, "column");
        }
        if (p->excerpt) {
            lua_pushstring(L, p->excerpt);
            lua_setfield(L, -2, "excerpt");
        }
        lua_rawseti(L, -2, (int)i + 1);
    }
    if (res->dropped) {
        lua_pushinteger(L, (lua_Integer)res->dropped);
        lua_setfield(L, -2, "dropped");
    }
    lua_pushinteger(L, (lua_Integer)res->errors);
    lua_setfield(L, -2, "errors");
    lua_pushinteger(L, (lua_Integer)res->warnings);
    lua_setfield(L, -2, "warnings");
}

static void opts_from(lua_State *L, int idx, smtpkit_smtpapi_opts *o)
{
    memset(o, 0, sizeof *o);
    if (!lua_isnoneornil(L, idx))
        o->now = (long long)luaL_checknumber(L, idx);
}

/* ---- Lua value -> JSON text --------------------------------------------- */

typedef struct {
    const char *s;
    size_t n;
} key;

static int key_cmp(const void *a, const void *b)
{
    const key *x = a, *y = b;
    size_t n = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->s, y->s, n);
    if (c)
        return c;
    return x->n < y->n ? -1 : x->n > y->n;
}

typedef struct {
    lua_State *L;
    box *b;
    char path[256];
    size_t pn;
} tj;

static void jput(tj *t, const char *s, size_t n)
{
    box *b = t->b;
    if (b->jnomem)
        return;
    if (b->jn + n + 1 > b->jcap) {
        size_t cap = b->jcap ? b->jcap * 2 : 256;
        char *nj;
        while (cap < b->jn + n + 1)
            cap *= 2;
        nj = realloc(b->j, cap);
        if (!nj) {
            b->jnomem = 1;
            return;
        }
        b->j = nj;
        b->jcap = cap;
    }
    memcpy(b->j + b->jn, s, n);
    b->jn += n;
}

static void tj_problem(tj *t, const char *msg)
{
    smtpkit_smtpapi_result *res = &t->b->res;
    /* reuse the result list: build a one-off problem by hand */
    smtpkit_smtpapi_problem *np;
    res->errors++;
    if (res->count >= SMTPKIT_SMTPAPI_MAX_PROBLEMS) {
        res->dropped++;
        return;
    }
    if (res->count == res->cap) {
        size_t cap = res->cap ? res->cap * 2 : 8;
        np = realloc(res->problems, cap * sizeof *np);
        if (!np) {
            res->nomem = 1;
            return;
        }
        res->problems = np;
        res->cap = cap;
    }
    np = &res->problems[res->count];
    memset(np, 0, sizeof *np);
    np->severity = SMTPKIT_SMTPAPI_ERROR;
    np->path = malloc(t->pn + 1);
    np->message = malloc(strlen(msg) + 1);
    if (!np->path || !np->message) {
        free(np->path);
        free(np->message);
        res->nomem = 1;
        return;
    }
    memcpy(np->path, t->path, t->pn);
    np->path[t->pn] = 0;
    strcpy(np->message, msg);
    res->count++;
}

static int ident(const char *s, size_t n)
{
    size_t i;
    if (!n || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
        return 0;
    for (i = 1; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
              || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 0;
    return 1;
}

static void tj_path_add(tj *t, const char *s, size_t n)
{
    if (t->pn + n >= sizeof t->path - 4) {
        n = sizeof t->path - 4 - t->pn;
    }
    memcpy(t->path + t->pn, s, n);
    t->pn += n;
}

static void tj_path_key(tj *t, const char *s, size_t n)
{
    if (ident(s, n)) {
        if (t->pn)
            tj_path_add(t, ".", 1);
        tj_path_add(t, s, n);
    } else {
        tj_path_add(t, "[\"", 2);
        tj_path_add(t, s, n > 64 ? 64 : n);
        tj_path_add(t, "\"]", 2);
    }
}

static void tj_path_index(tj *t, size_t i)
{
    char b[32];
    int n = snprintf(b, sizeof b, "[%zu]", i);
    tj_path_add(t, b, (size_t)n);
}

static const char hexd[] = "0123456789abcdef";

static void put_u(tj *t, unsigned long u)
{
    char e[6] = {'\\', 'u', hexd[(u >> 12) & 15], hexd[(u >> 8) & 15],
                 hexd[(u >> 4) & 15], hexd[u & 15]};
    jput(t, e, 6);
}

/* Writes s as a JSON string, ASCII only; returns 0 when s is not UTF-8. */
static int tj_string(tj *t, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, run;
    jput(t, "\"", 1);
    while (i < n) {
        unsigned char c = s[i];
        unsigned long cp;
        size_t k, j;
        run = i;
        while (i < n && s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\')
            i++;
        if (i > run)
            jput(t, str + run, i - run);
        if (i >= n)
            break;
        c = s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            jput(t, e, 2);
            i++;
            continue;
        }
        if (c < 0x80) {
            const char *e = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t"
                          : c == '\b' ? "\\b" : c == '\f' ? "\\f" : NULL;
            if (e)
                jput(t, e, 2);
            else
                put_u(t, c);
            i++;
            continue;
        }
        /* UTF-8 */
        if (c >= 0xC2 && c <= 0xDF) {
            k = 2; cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            k = 3; cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            k = 4; cp = c & 0x07;
        } else {
            return 0;
        }
        if (i + k > n)
            return 0;
        for (j = 1; j < k; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if ((k == 3 && cp < 0x800) || (k == 4 && (cp < 0x10000 || cp > 0x10FFFF))
            || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        if (cp >= 0x10000) {
            cp -= 0x10000;
            put_u(t, 0xD800 + (cp >> 10));
            put_u(t, 0xDC00 + (cp & 0x3FF));
        } else {
            put_u(t, cp);
        }
        i += k;
    }
    jput(t, "\"", 1);
    return 1;
}

static void tj_number(tj *t, lua_State *L, int idx)
{
    char buf[48];
    int n;
    lua_Number v;
#if LUA_VERSION_NUM >= 503
    if (lua_isinteger(L, idx)) {
        n = snprintf(buf, sizeof buf, "%lld", (long long)lua_tointeger(L, idx));
        jput(t, buf, (size_t)n);
        return;
    }
#endif
    v = lua_tonumber(L, idx);
    if (v != v || v == HUGE_VAL || v == -HUGE_VAL) {
        tj_problem(t, "NaN and infinity cannot be written in JSON");
        return;
    }
    if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        n = snprintf(buf, sizeof buf, "%.0f", (double)v);
    } else {
        int i;
        char dp = '.';
        const char *l = localeconv()->decimal_point;
        if (l && l[0])
            dp = l[0];
        n = snprintf(buf, sizeof buf, "%.15g", (double)v);
        if (strtod(buf, NULL) != (double)v)
            n = snprintf(buf, sizeof buf, "%.17g", (double)v);
        for (i = 0; i < n; i++)
            if (buf[i] == dp)
                buf[i] = '.';
    }
    jput(t, buf, (size_t)n);
}

/* 1: array of n, 0: object, -1: neither (a problem was reported). */
static int table_kind(tj *t, lua_State *L, int idx, size_t *n)
{
    size_t strs = 0, ints = 0, other = 0;
    lua_Number max = 0;
    int forced = -2;

    if (luaL_getmetafield(L, idx, "__jsontype")) {
        const char *k = lua_tostring(L, -1);
        if (k && !strcmp(k, "array"))
            forced = 1;
        else if (k && !strcmp(k, "object"))
            forced = 0;
        lua_pop(L, 1);
    }
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING) {
            strs++;
        } else if (lua_type(L, -1) == LUA_TNUMBER) {
            lua_Number k = lua_tonumber(L, -1);
            if (k >= 1 && k == floor(k)) {
                ints++;
                if (k > max)
                    max = k;
            } else {
                other++;
            }
        } else {
            other++;
        }
    }
    *n = ints;
    if (other || (strs && ints)) {
        tj_problem(t, "a table must have only string keys (an object) or only the keys "
                      "1..n (an array)");
        return -1;
    }
    if (ints && max != (lua_Number)ints) {
        tj_problem(t, "an array has holes: its keys must be exactly 1..n");
        return -1;
    }
    if (forced == 1 && strs) {
        tj_problem(t, "a table marked as an array has string keys");
        return -1;
    }
    if (forced == 0 && ints) {
        tj_problem(t, "a table marked as an object has integer keys");
        return -1;
    }
    if (forced >= 0)
        return forced;
    return ints ? 1 : 0;
}

static void tj_value(tj *t, int idx, int depth)
{
    lua_State *L = t->L;
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        if (!tj_string(t, s, n))
            tj_problem(t, "the string is not valid UTF-8");
        return;
    }
    case LUA_TNUMBER:
        tj_number(t, L, idx);
        return;
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx))
            jput(t, "true", 4);
        else
            jput(t, "false", 5);
        return;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) {
            jput(t, "null", 4);
            return;
        }
        break;
    case LUA_TTABLE: {
        size_t n, i, pn = t->pn;
        int kind;
        if (depth >= MAX_DEPTH) {
            tj_problem(t, "tables nested deeper than 32 levels (or a table that contains "
                          "itself)");
            return;
        }
        luaL_checkstack(L, 6, "smtpapi: nesting");
        kind = table_kind(t, L, idx, &n);
        if (kind < 0)
            return;
        if (kind == 1) {
            jput(t, "[", 1);
            for (i = 1; i <= n; i++) {
                if (i > 1)
                    jput(t, ",", 1);
                lua_rawgeti(L, idx, (int)i);
                tj_path_index(t, i - 1);
                tj_value(t, lua_gettop(L), depth + 1);
                t->pn = pn;
                lua_pop(L, 1);
            }
            jput(t, "]", 1);
        } else {
            key *keys;
            size_t count = 0;
            lua_pushnil(L);
            while (lua_next(L, idx)) {
                lua_pop(L, 1);
                count++;
            }
            keys = lua_newuserdata(L, (count ? count : 1) * sizeof *keys);
            i = 0;
            lua_pushnil(L);
            while (lua_next(L, idx)) {
                lua_pop(L, 1);
                if (i < count) {
                    keys[i].s = lua_tolstring(L, -1, &keys[i].n);
                    i++;
                }
            }
            qsort(keys, count, sizeof *keys, key_cmp);
            jput(t, "{", 1);
            for (i = 0; i < count; i++) {
                if (i)
                    jput(t, ",", 1);
                tj_path_key(t, keys[i].s, keys[i].n);
                if (!tj_string(t, keys[i].s, keys[i].n))
                    tj_problem(t, "the key is not valid UTF-8");
                jput(t, ":", 1);
                lua_pushlstring(L, keys[i].s, keys[i].n);
                lua_rawget(L, idx);
                tj_value(t, lua_gettop(L), depth + 1);
                lua_pop(L, 1);
                t->pn = pn;
            }
            jput(t, "}", 1);
            lua_pop(L, 1); /* keys */
        }
        return;
    }
    default:
        break;
    }
    {
        char msg[96];
        snprintf(msg, sizeof msg, "a %s cannot be written as JSON", luaL_typename(L, idx));
        tj_problem(t, msg);
    }
}

/* Converts the value at idx (a table, or anything JSON can hold) into b->j.
 * Returns 1, or 0 with problems in b->res. */
static int to_json(lua_State *L, int idx, box *b)
{
    tj t;
    t.L = L;
    t.b = b;
    t.pn = 0;
    tj_value(&t, idx, 0);
    if (b->jnomem || b->res.nomem)
        luaL_error(L, "smtpapi: out of memory");
    if (b->res.errors)
        return 0;
    jput(&t, "", 0);
    if (b->jnomem)
        luaL_error(L, "smtpapi: out of memory");
    b->j[b->jn] = 0;
    return 1;
}

static int l_to_json(lua_State *L)
{
    box *b;
    luaL_checkany(L, 1);
    b = new_box(L);
    if (!to_json(L, 1, b)) {
        lua_pushnil(L);
        push_problems(L, &b->res);
        return 2;
    }
    lua_pushlstring(L, b->j ? b->j : "", b->jn);
    return 1;
}

/* ---- validate / decode / encode ----------------------------------------- */

static int l_validate(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    smtpkit_smtpapi_opts o;
    box *b;
    int rc;
    opts_from(L, 2, &o);
    b = new_box(L);
    rc = smtpkit_smtpapi_validate(s, len, &o, &b->res);
    if (rc < 0)
        return luaL_error(L, "smtpapi: out of memory");
    if (rc == 1) {
        lua_pushboolean(L, 1);
    } else {
        lua_pushnil(L);
    }
    push_problems(L, &b->res);
    return 2;
}

static void push_tree(lua_State *L, const cJSON *x)
{
    const cJSON *c;
    int i = 0;
    luaL_checkstack(L, 4, "smtpapi: nesting");
    switch (x->type & 0xFF) {
    case cJSON_Object:
        lua_newtable(L);
        for (c = x->child; c; c = c->next) {
            push_tree(L, c);
            lua_setfield(L, -2, c->string);
        }
        break;
    case cJSON_Array:
        lua_newtable(L);
        if (!x->child) {
            luaL_getmetatable(L, "smtpkit.smtpapi_array");
            lua_setmetatable(L, -2);
        }
        for (c = x->child; c; c = c->next) {
            push_tree(L, c);
            lua_rawseti(L, -2, ++i);
        }
        break;
    case cJSON_String:
        lua_pushstring(L, x->valuestring);
        break;
    case cJSON_Number:
#if LUA_VERSION_NUM >= 503
        if (x->valuedouble == floor(x->valuedouble) && fabs(x->valuedouble) < 9007199254740992.0
            && !(x->type & SMTPKIT_SMTPAPI_NONINT)) {
            lua_pushinteger(L, (lua_Integer)x->valuedouble);
            break;
        }
#endif
        lua_pushnumber(L, x->valuedouble);
        break;
    case cJSON_True:
        lua_pushboolean(L, 1);
        break;
    case cJSON_False:
        lua_pushboolean(L, 0);
        break;
    default:
        lua_pushlightuserdata(L, NULL);
        break;
    }
}

static int l_decode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    smtpkit_smtpapi_opts o;
    box *b;
    opts_from(L, 2, &o);
    b = new_box(L);
    b->doc = smtpkit_smtpapi_parse(s, len, &o, &b->res);
    if (b->res.nomem)
        return luaL_error(L, "smtpapi: out of memory");
    if (!b->doc || b->res.errors) {
        lua_pushnil(L);
        push_problems(L, &b->res);
        return 2;
    }
    push_tree(L, smtpkit_smtpapi_doc_root(b->doc));
    push_problems(L, &b->res);
    return 2;
}

/* encode(value, now [, name_len]): value is JSON text or a table. */
static int l_encode(lua_State *L)
{
    smtpkit_smtpapi_opts o;
    const char *s;
    size_t len, outlen;
    box *b;
    int rc, t = lua_type(L, 1);
    if (t != LUA_TSTRING && t != LUA_TTABLE)
        return luaL_argerror(L, 1, "JSON text or a table expected");
    opts_from(L, 2, &o);
    {
        lua_Integer nl = luaL_optinteger(L, 3, SMTPKIT_SMTPAPI_NAME_LEN);
        luaL_argcheck(L, nl >= 0 && nl <= SMTPKIT_SMTPAPI_HARD_WIDTH, 3,
                      "name_len must be from 0 to 998");
        o.name_len = (unsigned)nl;
    }
    b = new_box(L);
    if (t == LUA_TTABLE) {
        if (!to_json(L, 1, b)) {
            lua_pushnil(L);
            push_problems(L, &b->res);
            return 2;
        }
        s = b->j;
        len = b->jn;
    } else {
        s = lua_tolstring(L, 1, &len);
    }
    rc = smtpkit_smtpapi_encode(s, len, &o, &b->out, &outlen, &b->res);
    if (rc < 0)
        return luaL_error(L, "smtpapi: out of memory");
    if (rc == 0) {
        lua_pushnil(L);
        push_problems(L, &b->res);
        return 2;
    }
    lua_pushlstring(L, b->out, outlen);
    push_problems(L, &b->res);
    return 2;
}

static const luaL_Reg functions[] = {
    {"smtpapi_validate", l_validate},
    {"smtpapi_decode", l_decode},
    {"smtpapi_encode", l_encode},
    {"smtpapi_to_json", l_to_json},
    {NULL, NULL}
};

void smtpkit_lua_open_smtpapi(lua_State *L)
{
    if (luaL_newmetatable(L, BOX_MT)) {
        lua_pushcfunction(L, box_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, "smtpkit.smtpapi_array")) {
        lua_pushliteral(L, "array");
        lua_setfield(L, -2, "__jsontype");
    }
    lua_setfield(L, -2, "smtpapi_array_mt");
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "smtpapi_null");
    luaL_setfuncs(L, functions, 0);
}
