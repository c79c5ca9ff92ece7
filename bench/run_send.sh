#!/usr/bin/env bash
# run_send.sh - sending ~2 KB messages over ONE connection on loopback, all
# clients in the same run against the same peer, messages/s and client CPU:
#
#   plain text, peer = Postfix's smtp-sink (PIPELINING offered):
#     smtp-source -d       Postfix's C load generator, reused connection, no pipelining
#     smtpkit lua5.4 / luajit, PIPELINING on and off
#     python3 smtplib      one connection
#     luasocket smtp       socket.smtp on one connection, TCP_NODELAY
#   STARTTLS, peer = a private Postfix smtpd doing TLS, proxying to smtp-sink
#   (smtpd_proxy_filter: no queue file): smtpkit vs smtplib
#   memory: resident memory per open connection (plain and TLS), and the peak
#   growth while a big body streams from a file (must not follow its size).
#
# Gates (ratios in this run, smtpkit on lua5.4; exit non-zero when missed):
#   smtpkit no pipelining >= 1.0x smtp-source -d; with PIPELINING >= 2x
#   smtp-source -d; >= 3x smtplib. On 2 shared cores the wall-clock figures
#   move by +-30 % between runs (scheduling dominates: see the CPU columns).
# N=20000 messages per client by default (N_SLOW for luasocket and the TLS
# runs); ROUNDS=3 (the median of ROUNDS runs per client is reported).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20000}
N_SLOW=${N_SLOW:-5000}
ROUNDS=${ROUNDS:-3}
make -s LUA=5.4 all
make -s LUA=jit all

work=$(mktemp -d /tmp/smtpkit-bench.XXXXXX)
chmod 755 "$work"
pids=()
pf_dir=""
cleanup() {
  for p in "${pids[@]}"; do
    kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true   # reap it here, so bash prints no "Killed" line
  done
  [ -n "$pf_dir" ] && bash spec/support/postfix.sh stop "$pf_dir" || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 1 200); do
    /usr/bin/python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "port $1 never opened" >&2; return 1
}

sink_port=$(free_port)
setsid timeout -s KILL 900 /usr/sbin/smtp-sink -u nobody -c "127.0.0.1:$sink_port" 256 \
  >"$work/sink.log" 2>&1 </dev/null &
pids+=($!)
wait_port "$sink_port"

# run NAME CMD... : median (by msg/s) of ROUNDS runs; each prints "n wall cpu"
declare -A RATE CPU
run() {
  local name=$1; shift
  local lines=()
  for _ in $(seq 1 "$ROUNDS"); do lines+=("$("$@")"); done
  local best
  best=$(printf '%s\n' "${lines[@]}" | awk '{ printf "%.1f %s %s %s\n", $1/$2, $1, $2, $3 }' \
    | sort -n | awk -v r="$ROUNDS" 'NR == int((r + 1) / 2)')
  RATE[$name]=$(echo "$best" | awk '{print $1}')
  CPU[$name]=$(echo "$best" | awk '{print $4}')
  printf '%-34s %8s msg/s  %6s s CPU  (%s msgs, %.0f us CPU/msg)\n' "$name" "${RATE[$name]}" \
    "${CPU[$name]}" "$(echo "$best" | awk '{print $2}')" \
    "$(echo "$best" | awk '{ print $4 / $2 * 1e6 }')"
}

# smtp-source prints nothing useful: time it from outside (wall, user+sys)
smtp_source() {
  local n=$1
  /usr/bin/time -o "$work/time.out" -f "%e %U %S" /usr/sbin/smtp-source -d -s 1 -m "$n" -l 2048 \
    -M localhost -f bench@example.com -t sink@example.com "127.0.0.1:$sink_port" >/dev/null 2>&1
  awk -v n="$n" '{ printf "%d %s %.3f\n", n, $1, $2 + $3 }' "$work/time.out"
}
lua_client() { # bin vm args...
  local bin=$1 vm=$2; shift 2
  $bin -e "package.cpath='build/$vm/?.so;'..package.cpath" bench/send_client.lua "$@"
}

echo "== ~2 KB messages, one connection, loopback, peer smtp-sink (N=$N, median of $ROUNDS)"
run "smtp-source -d (C, no pipelining)" smtp_source "$N"
run "smtpkit lua5.4 PIPELINING" lua_client lua5.4 5.4 smtpkit "$sink_port" "$N" 1
run "smtpkit lua5.4 no pipelining" lua_client lua5.4 5.4 smtpkit "$sink_port" "$N" 0
run "smtpkit luajit PIPELINING" lua_client luajit jit smtpkit "$sink_port" "$N" 1
run "python3 smtplib" /usr/bin/python3 bench/send_smtplib.py "$sink_port" "$N"
run "lua5.4 socket.smtp + TCP_NODELAY" lua_client lua5.4 5.4 luasocket "$sink_port" "$N_SLOW"

ratio() { awk -v a="${RATE[$1]}" -v b="${RATE[$2]}" 'BEGIN { printf "%.2f", a / b }'; }
status=0
gate() { # name-a name-b min
  local r; r=$(ratio "$1" "$2")
  local ok=ok
  if awk -v r="$r" -v m="$3" 'BEGIN { exit !(r < m) }'; then ok=FAIL; status=1; fi
  printf 'ratio  %-30s / %-32s = %5sx  (goal >= %sx) %s\n' "$1" "$2" "$r" "$3" "$ok"
}
gate "smtpkit lua5.4 no pipelining" "smtp-source -d (C, no pipelining)" 1.0
gate "smtpkit lua5.4 PIPELINING" "smtp-source -d (C, no pipelining)" 2.0
gate "smtpkit lua5.4 PIPELINING" "python3 smtplib" 3.0
printf 'ratio  %-30s / %-32s = %5sx  (information: the gates use lua5.4)\n' "smtpkit luajit PIPELINING" \
  "python3 smtplib" "$(ratio "smtpkit luajit PIPELINING" "python3 smtplib")"
printf 'ratio  %-30s / %-32s = %5sx\n' "smtpkit lua5.4 PIPELINING" "lua5.4 socket.smtp + TCP_NODELAY" \
  "$(ratio "smtpkit lua5.4 PIPELINING" "lua5.4 socket.smtp + TCP_NODELAY")"

# --- STARTTLS: Postfix smtpd (TLS) in front of smtp-sink --------------------
certs="$work/certs"
bash spec/support/make_certs.sh "$certs"
pf_dir="$work/postfix"
pf_port=$(free_port); pf_sport=$(free_port)
POSTFIX_EXTRA_MAIN="smtpd_proxy_filter = 127.0.0.1:$sink_port
smtpd_proxy_timeout = 30s" \
  bash spec/support/postfix.sh start "$pf_dir" "$pf_port" "$pf_sport" "$certs/server.pem" \
  "$certs/server.key" bench bench-pw open
wait_port "$pf_port"
echo
echo "== STARTTLS (TLS 1.3), peer Postfix smtpd -> smtp-sink (proxy filter), N=$N_SLOW"
run "smtpkit lua5.4 STARTTLS PIPELINING" lua_client lua5.4 5.4 smtpkit "$pf_port" "$N_SLOW" 1 \
  starttls "$certs/ca.pem"
run "smtpkit luajit STARTTLS PIPELINING" lua_client luajit jit smtpkit "$pf_port" "$N_SLOW" 1 \
  starttls "$certs/ca.pem"
run "python3 smtplib STARTTLS" /usr/bin/python3 bench/send_smtplib.py "$pf_port" "$N_SLOW" starttls \
  "$certs/ca.pem"
printf 'ratio  %-30s / %-32s = %5sx  (the peer, smtpd, is the bottleneck here)\n' \
  "smtpkit lua5.4 STARTTLS PIPELINING" "python3 smtplib STARTTLS" \
  "$(ratio "smtpkit lua5.4 STARTTLS PIPELINING" "python3 smtplib STARTTLS")"

echo
echo "== memory (lua5.4)"
lua5.4 -e "package.cpath='build/5.4/?.so;'..package.cpath" bench/send_memory.lua "$sink_port" 50 50 \
  | sed 's/^/plain     /'
lua5.4 -e "package.cpath='build/5.4/?.so;'..package.cpath" bench/send_memory.lua "$pf_port" 50 5 \
  starttls "$certs/ca.pem" | sed 's/^/starttls  /'
exit $status
