#!/usr/bin/env bash
# Installs, from Debian's packages, everything the build, the specs and the
# benchmarks need. Idempotent: it only calls apt-get when something is missing.
# As root it installs; otherwise it prints the exact apt-get line and fails.
set -euo pipefail

PKGS=(
  make gcc clang libclang-rt-14-dev pkg-config valgrind
  lua5.4 liblua5.4-dev lua5.3 liblua5.3-dev lua5.1 liblua5.1-0-dev
  luajit2 libluajit2-5.1-dev
  libssl-dev openssl libcjson-dev
  lua-busted lua-check luarocks lua-socket lua-sec lua-argparse lua-ldoc lua-discount
  postfix sasl2-bin libsasl2-modules
  python3 python3-aiosmtpd
  nginx libnginx-mod-http-lua lua-resty-core
)

missing=()
for p in "${PKGS[@]}"; do
  st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$st" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

line="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" != 0 ]; then
  echo "smtpkit: missing Debian packages; run as root:" >&2
  echo "  echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections" >&2
  echo "  $line" >&2
  exit 1
fi

echo "smtpkit: installing ${missing[*]}" >&2
# Postfix asks no question and writes no main.cf when told "No configuration".
echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
# Start no system daemon (nginx, postfix) during the install: tests run their
# own servers in temporary directories.
prc=/usr/sbin/policy-rc.d
had_prc=0; [ -e "$prc" ] && had_prc=1
if [ $had_prc = 0 ]; then printf '#!/bin/sh\nexit 101\n' > "$prc"; chmod +x "$prc"; fi
trap '[ $had_prc = 0 ] && rm -f "$prc"' EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || true
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
