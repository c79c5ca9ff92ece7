/*
 * lua_codec.c - Lua face of csrc/codec.c, for lua/smtpkit/message.lua:
 *
 *   base64_encode(s [, line_len=76])    -> string (CRLF line ends)
 *   qp_encode(s [, binary=false])       -> string
 *   base64_encoder([line_len=76])       -> enc: enc:update(s) -> string,
 *   qp_encoder([binary=false])          -> enc  enc:finish() -> string
 *   utf8_check(s)                       -> true | false, position of the bad byte
 *   encoded_words(s, first_room, room [, "B"|"Q"])
 *                                       -> { word, ... }, "B"|"Q"
 *   rfc2231_pieces(s, first_room, room) -> { piece, ... }
 *   random_bytes(n)                     -> string | nil, err
 */
#include <errno.h>
#include <string.h>

#include "codec.h"
#include "lua_bindings.h"

#define ENCODER_MT "smtpkit.encoder"
#define SLICE 3648   /* 57 * 64 input bytes per step: whole base64 lines */

typedef struct {
    int qp;          /* 0: base64, 1: quoted-printable */
    union {
        smtpkit_b64 b;
        smtpkit_qp q;
    } u;
} encoder;

static void encode_into(luaL_Buffer *b, encoder *e, const unsigned char *s, size_t len)
{
    char out[SMTPKIT_QP_BOUND(SLICE) > SMTPKIT_B64_BOUND(SLICE)
             ? SMTPKIT_QP_BOUND(SLICE) : SMTPKIT_B64_BOUND(SLICE)];
    while (len) {
        size_t n = len < SLICE ? len : SLICE, o;
        o = e->qp ? smtpkit_qp_update(&e->u.q, s, n, out)
                  : smtpkit_b64_update(&e->u.b, s, n, out);
        luaL_addlstring(b, out, o);
        s += n;
        len -= n;
    }
}

static void finish_into(luaL_Buffer *b, encoder *e)
{
    char out[32];
    size_t o = e->qp ? smtpkit_qp_final(&e->u.q, out) : smtpkit_b64_final(&e->u.b, out);
    luaL_addlstring(b, out, o);
}

static unsigned opt_line_len(lua_State *L, int i)
{
    lua_Integer n = luaL_optinteger(L, i, 76);
    luaL_argcheck(L, n >= 0 && n <= 76 && n % 4 == 0, i,
                  "line length must be 0..76 and a multiple of 4");
    return (unsigned)n;
}

static int l_base64_encode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    encoder e;
    luaL_Buffer b;
    e.qp = 0;
    smtpkit_b64_init(&e.u.b, opt_line_len(L, 2));
    luaL_buffinit(L, &b);
    encode_into(&b, &e, (const unsigned char *)s, len);
    finish_into(&b, &e);
    luaL_pushresult(&b);
    return 1;
}

static int l_qp_encode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    encoder e;
    luaL_Buffer b;
    e.qp = 1;
    smtpkit_qp_init(&e.u.q, lua_toboolean(L, 2));
    luaL_buffinit(L, &b);
    encode_into(&b, &e, (const unsigned char *)s, len);
    finish_into(&b, &e);
    luaL_pushresult(&b);
    return 1;
}

static encoder *new_encoder(lua_State *L, int qp)
{
    encoder *e = lua_newuserdata(L, sizeof *e);
    e->qp = qp;
    luaL_getmetatable(L, ENCODER_MT);
    lua_setmetatable(L, -2);
    return e;
}

static int l_base64_encoder(lua_State *L)
{
    unsigned line_len = opt_line_len(L, 1);
    encoder *e = new_encoder(L, 0);
    smtpkit_b64_init(&e->u.b, line_len);
    return 1;
}

static int l_qp_encoder(lua_State *L)
{
    int binary = lua_toboolean(L, 1);
    encoder *e = new_encoder(L, 1);
    smtpkit_qp_init(&e->u.q, binary);
    return 1;
}

static int l_enc_update(lua_State *L)
{
    encoder *e = luaL_checkudata(L, 1, ENCODER_MT);
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    encode_into(&b, e, (const unsigned char *)s, len);
    luaL_pushresult(&b);
    return 1;
}

static int l_enc_finish(lua_State *L)
{
    encoder *e = luaL_checkudata(L, 1, ENCODER_MT);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    finish_into(&b, e);
    luaL_pushresult(&b);
    return 1;
}

static int l_utf8_check(lua_State *L)
{
    size_t len, at;
    const char *s = luaL_checklstring(L, 1, &len);
    at = smtpkit_utf8_check((const unsigned char *)s, len);
    if (at == len) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushboolean(L, 0);
    lua_pushinteger(L, (lua_Integer)at + 1);
    return 2;
}

static size_t check_room(lua_State *L, int i, size_t min)
{
    lua_Integer n = luaL_checkinteger(L, i);
    luaL_argcheck(L, n >= 0 && n <= 998, i, "room must be 0..998");
    if (i > 2)
        luaL_argcheck(L, (size_t)n >= min, i, "room too small for one character");
    return (size_t)n;
}

/* encoded_words(s, first_room, room [, enc]): s cut into encoded words, the
 * first at most first_room characters long (it is "" when not one character
 * fits there: start s on the next line), the others at most room. */
static int l_encoded_words(lua_State *L)
{
    size_t len, first, room, at = 0;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &len);
    const char *opt = luaL_optstring(L, 4, NULL);
    int enc, n = 0;
    char word[SMTPKIT_EW_MAX + 1];

    first = check_room(L, 2, 0);
    room = check_room(L, 3, SMTPKIT_EW_OVERHEAD + 12);
    if (opt)
        luaL_argcheck(L, (opt[0] == 'B' || opt[0] == 'Q') && !opt[1], 4, "'B' or 'Q' expected");
    enc = opt ? opt[0] : smtpkit_ew_choose(s, len);
    lua_newtable(L);
    while (at < len) {
        size_t used, w = smtpkit_ew_word(s + at, len - at, enc, n == 0 ? first : room,
                                         word, &used);
        lua_pushlstring(L, word, w);
        lua_rawseti(L, -2, ++n);
        at += used;
    }
    lua_pushlstring(L, enc == 'B' ? "B" : "Q", 1);
    return 2;
}

/* rfc2231_pieces(s, first_room, room): s percent-encoded, in pieces of whole
 * characters: the first at most first_room bytes ("" when none fits), the
 * others at most room. */
static int l_rfc2231_pieces(lua_State *L)
{
    size_t len, first, room, at = 0;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &len);
    int n = 0;
    char piece[998];

    first = check_room(L, 2, 0);
    room = check_room(L, 3, 12);
    lua_newtable(L);
    while (at < len) {
        size_t used, w = smtpkit_pct_encode(s + at, len - at, n == 0 ? first : room,
                                            piece, &used);
        lua_pushlstring(L, piece, w);
        lua_rawseti(L, -2, ++n);
        at += used;
    }
    return 1;
}

static int l_random_bytes(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    unsigned char buf[256];
    luaL_argcheck(L, n >= 0 && n <= (lua_Integer)sizeof buf, 1, "0..256 bytes");
    if (smtpkit_random_bytes(buf, (size_t)n) != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "cannot read /dev/urandom: %s", strerror(errno));
        return 2;
    }
    lua_pushlstring(L, (const char *)buf, (size_t)n);
    return 1;
}

static const luaL_Reg encoder_methods[] = {
    {"update", l_enc_update},
    {"finish", l_enc_finish},
    {NULL, NULL}
};

static const luaL_Reg functions[] = {
    {"base64_encode", l_base64_encode},
    {"qp_encode", l_qp_encode},
    {"base64_encoder", l_base64_encoder},
    {"qp_encoder", l_qp_encoder},
    {"utf8_check", l_utf8_check},
    {"encoded_words", l_encoded_words},
    {"rfc2231_pieces", l_rfc2231_pieces},
    {"random_bytes", l_random_bytes},
    {NULL, NULL}
};

void smtpkit_lua_open_codec(lua_State *L)
{
    if (luaL_newmetatable(L, ENCODER_MT)) {
        lua_newtable(L);
        luaL_setfuncs(L, encoder_methods, 0);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    luaL_setfuncs(L, functions, 0);
}
