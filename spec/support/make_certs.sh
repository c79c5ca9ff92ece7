#!/usr/bin/env bash
# make_certs.sh DIR - test certificates for the TLS specs, made fresh by each
# run (never checked in). Everything is dated from "now" on this machine.
#
#   ca.pem / ca.key                 a test CA (not in the system store)
#   server.pem / server.key         signed by ca, SAN DNS:localhost, IP:127.0.0.1
#   wronghost.pem / wronghost.key   signed by ca, SAN DNS:wrong.example.com only
#   expired.pem / expired.key       signed by ca, localhost + 127.0.0.1, expired
#                                   (openssl ca -startdate/-enddate: x509 -req
#                                   cannot set a past start date)
#   selfsigned.pem / selfsigned.key self-signed, localhost + 127.0.0.1
#   client.pem / client.key         client certificate signed by ca
# Prints nothing on success; exits non-zero with openssl's message otherwise.
set -euo pipefail
d=${1:?usage: make_certs.sh DIR}
mkdir -p "$d"
cd "$d"
q() { "$@" >/dev/null 2>openssl.err || { cat openssl.err >&2; exit 1; }; }

q openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3 \
  -subj "/CN=smtpkit test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"

leaf() { # name san [extra openssl ca args...]
  local name=$1 san=$2; shift 2
  q openssl req -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" -subj "/CN=$name"
  printf 'basicConstraints=CA:FALSE\nsubjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' \
    "$san" > "$name.ext"
  q openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
    -out "$name.pem" -days 2 -extfile "$name.ext"
}
leaf server "DNS:localhost,IP:127.0.0.1,IP:::1"
leaf wronghost "DNS:wrong.example.com"
leaf client "DNS:client.localhost"

# expired: a mini CA database so `openssl ca` can set past dates
mkdir -p cadb/new; : > cadb/index.txt; echo 1000 > cadb/serial
cat > cadb/ca.cnf <<CNF
[ ca ]
default_ca = tca
[ tca ]
dir = $d/cadb
database = \$dir/index.txt
new_certs_dir = \$dir/new
serial = \$dir/serial
certificate = $d/ca.pem
private_key = $d/ca.key
default_md = sha256
policy = pol
copy_extensions = none
unique_subject = no
[ pol ]
commonName = supplied
[ ext ]
basicConstraints = CA:FALSE
subjectAltName = DNS:localhost,IP:127.0.0.1
extendedKeyUsage = serverAuth
CNF
q openssl req -newkey rsa:2048 -nodes -keyout expired.key -out expired.csr -subj "/CN=expired"
start=$(date -u -d '-3 days' +%Y%m%d%H%M%SZ)
end=$(date -u -d '-1 day' +%Y%m%d%H%M%SZ)
q openssl ca -batch -config cadb/ca.cnf -extensions ext -startdate "$start" -enddate "$end" \
  -in expired.csr -out expired.pem -notext

q openssl req -x509 -newkey rsa:2048 -nodes -keyout selfsigned.key -out selfsigned.pem -days 2 \
  -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1"
chmod 644 ./*.pem ./*.key
rm -f ./*.csr ./*.ext openssl.err
