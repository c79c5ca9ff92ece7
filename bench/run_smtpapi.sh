#!/usr/bin/env bash
# X-SMTPAPI: validation time against a bare cJSON_Parse of the same 10 KB
# realistic header (must stay within 1.5x), and encoding throughput (must be
# at least 100 MB/s). Exits non-zero when either limit is missed.
set -uo pipefail
rc=0
cd "$(dirname "$0")/.."
CC=${CC:-cc}
out=build/bench
mkdir -p "$out"
$CC -std=c99 -D_POSIX_C_SOURCE=200809L -O2 -Wall -Wextra -Werror -Icsrc \
  $(pkg-config --cflags libcjson) -o "$out/smtpapi_bench" \
  bench/smtpapi_bench.c csrc/smtpapi*.c $(pkg-config --libs libcjson) -lm
"$out/smtpapi_bench" spec/data/smtpapi/realistic_10k.json "${SMTPAPI_MAX_RATIO:-1.5}" "${SMTPAPI_MIN_MBPS:-100}" || rc=$?
# Informational: the same header through the Lua API, and a peer.
for v in 5.4 jit; do
  bin=lua5.4; [ "$v" = jit ] && bin=luajit
  if [ -f "build/$v/smtpkit/core.so" ] && command -v "$bin" >/dev/null; then
    "$bin" -e "package.path='lua/?.lua;lua/?/init.lua;'..package.path; package.cpath='build/$v/?.so;'..package.cpath" \
      bench/smtpapi_bench.lua spec/data/smtpapi/realistic_10k.json
  fi
done
/usr/bin/python3 bench/smtpapi_peer.py spec/data/smtpapi/realistic_10k.json
exit $rc
