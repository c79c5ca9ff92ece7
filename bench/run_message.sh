#!/usr/bin/env bash
# run_message.sh - composing and encoding a message with a 10 MB binary
# attachment (plus text and html parts): smtpkit.message on Lua 5.4 and
# LuaJIT (base64 in C, streamed through msg:chunks()) beside Python's email
# package composing the same message (EmailMessage + as_bytes, policy.SMTP),
# in one run, with the ratio smtpkit / Python. CPU time, best of ROUNDS.
# Gate: exits non-zero when a ratio is below MIN_RATIO (1: never slower
# than Python). MB=10 ROUNDS=5 by default.
set -euo pipefail
cd "$(dirname "$0")/.."
MB=${MB:-10}
ROUNDS=${ROUNDS:-5}
MIN_RATIO=${MIN_RATIO:-1}
make -s LUA=5.4 all
make -s LUA=jit all
echo "== composing a message with a ${MB} MB attachment (MB/s of attachment, higher is better)"
py=$(/usr/bin/python3 bench/message_bench.py "$MB" "$ROUNDS")
echo "$py"
py_rate=$(echo "$py" | awk '{print $2}')
status=0
for vm in 5.4 jit; do
  bin=lua5.4; [ $vm = jit ] && bin=luajit
  out=$($bin -e "package.cpath='build/$vm/?.so;'..package.cpath" bench/message_bench.lua "$bin" "$MB" "$ROUNDS")
  echo "$out"
  rate=$(echo "$out" | awk '{print $2}')
  ratio=$(awk -v a="$rate" -v b="$py_rate" 'BEGIN { printf "%.1f", a / b }')
  echo "ratio    $bin / python3 = ${ratio}x"
  if awk -v r="$ratio" -v m="$MIN_RATIO" 'BEGIN { exit !(r < m) }'; then
    echo "FAIL: $bin composes at ${ratio}x Python's email package (need ${MIN_RATIO}x)" >&2
    status=1
  fi
done
exit $status
