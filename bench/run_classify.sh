#!/usr/bin/env bash
# run_classify.sh - reply classification speed, in one run:
#   C alone (smtpkit_classify), the Lua binding users call (smtpkit.classify:
#   the C API binding smtpkit.core.classify on Lua 5.4, the FFI path
#   lua/smtpkit/classify_ffi.lua on LuaJIT, whose C API figure is printed too)
#   and a straightforward pure-Lua classifier with the same rules
#   (bench/classify_ref.lua: lower() + string.find(plain) over the same phrase
#   list, in priority order) on each VM, with the ratio binding / pure-Lua, on
#   typical one-line replies (bench/classify_samples.lua).
#
# Gate (exit 1): a ratio below MIN_RATIO (20) on either VM, the binding's
# table differing from smtpkit.core.classify's, or the pure-Lua classifier
# disagreeing on a sample.
#   SECONDS_PER=1.5 per measurement.
set -euo pipefail
cd "$(dirname "$0")/.."
MIN_RATIO=${MIN_RATIO:-20}
SECONDS_PER=${SECONDS_PER:-1.5}
make -s LUA=5.4 all
make -s LUA=jit all
mkdir -p build/bench
${CC:-cc} -std=c99 -D_POSIX_C_SOURCE=200809L -O2 -Icsrc -o build/bench/classify_bench \
  bench/classify_bench.c csrc/classify.c csrc/reply.c
samples=$(lua5.4 -e 'package.path="bench/?.lua;"..package.path
  for _, s in ipairs(require "classify_samples") do print(s) end')
echo "== reply classification: $(echo "$samples" | wc -l) typical one-line replies"
echo "$samples" | build/bench/classify_bench
status=0
for vm in 5.4 jit; do
  bin=lua5.4; min=$MIN_RATIO
  if [ $vm = jit ]; then bin=luajit; fi
  out=$($bin -e "package.cpath='build/$vm/?.so;'..package.cpath" bench/classify_bench.lua "$bin" \
        "$SECONDS_PER") || { echo "$out"; echo "FAIL: $bin: the classifiers disagree" >&2; status=1; }
  echo "$out"
  ratio=$(echo "$out" | awk '/ratio/ {print $3}')
  if awk -v r="$ratio" -v m="$min" 'BEGIN { exit !(r < m) }'; then
    echo "FAIL: $bin: binding is only ${ratio}x the pure-Lua classifier (need ${min}x)" >&2
    status=1
  fi
done
[ $status = 0 ] && echo "ok: the binding >= ${MIN_RATIO}x the pure-Lua classifier on Lua 5.4 and LuaJIT"
exit $status
