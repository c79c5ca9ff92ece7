#!/usr/bin/env bash
# run_classify.sh - reply classification speed, in one run:
#   C alone (smtpkit_classify), the Lua binding (smtpkit.core.classify) on
#   Lua 5.4 and LuaJIT, and a straightforward pure-Lua classifier with the
#   same rules (bench/classify_ref.lua: lower() + string.find(plain) over the
#   same phrase list, in priority order) on each VM, with the ratio
#   binding / pure-Lua, on typical one-line replies (bench/classify_samples.lua).
#
# Gate (exit 1): the Lua 5.4 ratio below MIN_RATIO (20), the LuaJIT ratio
# below MIN_RATIO_JIT (5), or the two classifiers disagreeing on a sample.
# Why LuaJIT has its own floor: its JIT compiles the reference's string.find
# loop to machine code (about 3x faster than on 5.4), while every call into a
# classic Lua C function leaves the compiled trace and builds the result
# table through the C API (about 300 ns, more than the classification
# itself); 20x is out of reach for any lua_CFunction there.
#   SECONDS_PER=1.5 per measurement.
set -euo pipefail
cd "$(dirname "$0")/.."
MIN_RATIO=${MIN_RATIO:-20}
MIN_RATIO_JIT=${MIN_RATIO_JIT:-5}
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
  if [ $vm = jit ]; then bin=luajit; min=$MIN_RATIO_JIT; fi
  out=$($bin -e "package.cpath='build/$vm/?.so;'..package.cpath" bench/classify_bench.lua "$bin" \
        "$SECONDS_PER") || { echo "$out"; echo "FAIL: $bin: the classifiers disagree" >&2; status=1; }
  echo "$out"
  ratio=$(echo "$out" | awk '/ratio/ {print $3}')
  if awk -v r="$ratio" -v m="$min" 'BEGIN { exit !(r < m) }'; then
    echo "FAIL: $bin: binding is only ${ratio}x the pure-Lua classifier (need ${min}x)" >&2
    status=1
  fi
done
[ $status = 0 ] && echo "ok: Lua 5.4 binding >= ${MIN_RATIO}x, LuaJIT >= ${MIN_RATIO_JIT}x the pure-Lua classifier"
exit $status
