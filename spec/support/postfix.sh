#!/usr/bin/env bash
# postfix.sh start DIR PORT SMTPS_PORT CERT KEY USER PASSWORD [open]
# postfix.sh stop DIR
#
# Environment: POSTFIX_EXTRA_MAIN - lines appended to main.cf (e.g.
# "smtpd_proxy_filter = 127.0.0.1:PORT" to put smtpd in front of smtp-sink).
# A private Postfix instance (run as root) in DIR, listening on 127.0.0.1:PORT
# (plain, STARTTLS offered, AUTH PLAIN LOGIN after STARTTLS only) and on
# 127.0.0.1:SMTPS_PORT (implicit TLS, the same AUTH). Relaying needs AUTH,
# unless the 8th argument is "open" (then 127.0.0.0/8 may relay without it).
# Every message is delivered by a pipe transport into DIR/mail/QUEUEID.eml
# (the message as Postfix stored it: LF line ends, a Received: header on top)
# and DIR/mail/QUEUEID.env (line 1 the sender, then one line per recipient).
# Postfix may deliver one message in several pieces (one per destination), so
# the files are DIR/mail/QUEUEID.PID.{eml,env}; the .eml appears last.
# SASL: Debian's Postfix ignores cyrus_sasl_config_path, and Cyrus opens
# /etc/sasldb2; so smtpd runs chrooted in DIR/queue, where that path is
# DIR/queue/etc/sasldb2 (realm = smtpd_sasl_local_domain = smtpkit.test,
# owned by postfix). Logs: DIR/log/maillog.
set -euo pipefail
cmd=${1:?usage}; d=${2:?usage}
if [ "$cmd" = stop ]; then
  postfix -c "$d/etc" stop >/dev/null 2>&1 || postfix -c "$d/etc" abort >/dev/null 2>&1 || true
  # the master's pid file: make sure nothing survives
  if [ -f "$d/queue/pid/master.pid" ]; then
    p=$(tr -dc 0-9 < "$d/queue/pid/master.pid"); [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true
  fi
  exit 0
fi
port=$3 sport=$4 cert=$5 key=$6 user=$7 pass=$8 mode=${9:-auth}
mkdir -p "$d/etc" "$d/queue" "$d/data" "$d/log" "$d/mail"
chmod 755 "$d" "$d/etc" "$d/log"
chmod 1777 "$d/mail"
chown postfix "$d/data"
cp "$cert" "$d/etc/cert.pem"; cp "$key" "$d/etc/key.pem"; chmod 600 "$d/etc/key.pem"
cat > "$d/capture.sh" <<SH
#!/bin/sh
# pipe(8) delivery: \$1 queue id, \$2 sender, then the recipients
id=\$1.\$\$; shift
umask 022
cat > "$d/mail/\$id.eml.tmp" || exit 75
printf '%s\n' "\$@" > "$d/mail/\$id.env.tmp"
mv "$d/mail/\$id.env.tmp" "$d/mail/\$id.env"
mv "$d/mail/\$id.eml.tmp" "$d/mail/\$id.eml"
SH
chmod 755 "$d/capture.sh"
if [ "$mode" = open ]; then nets="127.0.0.0/8"; else nets=""; fi
cat > "$d/etc/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $d/queue
data_directory = $d/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.smtpkit.test
mydomain = smtpkit.test
myorigin = smtpkit.test
mydestination =
relay_domains =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = $nets
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
smtpd_recipient_restrictions = reject_non_fqdn_recipient
default_transport = capture
relay_transport = capture
local_transport = capture
capture_destination_recipient_limit = 100
smtpd_tls_cert_file = $d/etc/cert.pem
smtpd_tls_key_file = $d/etc/key.pem
smtpd_tls_security_level = may
smtpd_tls_auth_only = yes
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
local_header_rewrite_clients =
smtpd_sasl_local_domain = smtpkit.test
smtputf8_enable = yes
maillog_file = $d/log/maillog
maillog_file_prefixes = $d
biff = no
smtpd_banner = \$myhostname ESMTP smtpkit-test
message_size_limit = 10240000
smtpd_error_sleep_time = 0
${POSTFIX_EXTRA_MAIN:-}
CF
cat > "$d/etc/master.cf" <<CF
127.0.0.1:$port inet n - y - - smtpd
127.0.0.1:$sport inet n - y - - smtpd -o smtpd_tls_wrappermode=yes
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
capture   unix  -       n       n       -       -       pipe
  flags=q user=nobody argv=$d/capture.sh \${queue_id} \${sender} \${recipient}
CF
mkdir -p "$d/queue/etc"
for f in hosts services resolv.conf nsswitch.conf localtime host.conf; do
  [ -e "/etc/$f" ] && cp -L "/etc/$f" "$d/queue/etc/"
done
printf '%s' "$pass" | saslpasswd2 -p -c -f "$d/queue/etc/sasldb2" -u smtpkit.test "$user"
chown postfix "$d/queue/etc/sasldb2"; chmod 640 "$d/queue/etc/sasldb2"
postfix -c "$d/etc" start >"$d/log/start.out" 2>&1 || { cat "$d/log/start.out" >&2; exit 1; }
