rockspec_format = "3.0"
package = "smtpkit"
version = "scm-1"
source = {
  url = "git+file:///dev/null",  -- built from a checkout: luarocks make rockspec/smtpkit-scm-1.rockspec
}
description = {
  summary = "Send mail over SMTP and TLS, classify server replies, validate X-SMTPAPI headers",
  detailed = [[
A C core (a sans-I/O SMTP engine, a reply parser and classifier, an X-SMTPAPI
validator built on cJSON) with a socket + OpenSSL transport for plain Lua and a
cosocket transport for OpenResty; Lua helpers for messages, retries and an
outbox.]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.1, < 5.5",
}
external_dependencies = {
  CJSON = { header = "cjson/cJSON.h" },
  OPENSSL = { header = "openssl/ssl.h" },
}
build = {
  -- The Makefile finds cJSON and OpenSSL with pkg-config and builds one
  -- smtpkit/core.so (cJSON only) and smtpkit/net.so (OpenSSL) for this Lua.
  type = "make",
  build_variables = {
    LUA_INCDIR = "$(LUA_INCDIR)",
    CFLAGS = "$(CFLAGS)",
    BUILD = "build/rock$(LUA_INCDIR)",
  },
  install_variables = {
    BUILD = "build/rock$(LUA_INCDIR)",
    INST_LIBDIR = "$(LIBDIR)",
    INST_LUADIR = "$(LUADIR)",
    INST_BINDIR = "$(BINDIR)",
  },
}
