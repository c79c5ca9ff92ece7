#!/usr/bin/python3
"""scripted_smtpd.py CONFIG.json - an aiosmtpd server with scripted replies,
for the specs (spec/support/servers.lua starts it; run with /usr/bin/python3,
the Debian Python that has python3-aiosmtpd).

CONFIG keys (all optional except ready_file and out_dir):
  ready_file   the server writes its port there once it listens
  out_dir      each received message goes to N.eml (the DATA bytes, CRLF,
               dot-unstuffed) and N.env (lines "MAIL <from> params",
               "RCPT <to> params", "TLS yes|no", "AUTH <login>|-")
  host         default 127.0.0.1
  cert, key    server certificate: STARTTLS is offered (or implicit TLS)
  implicit     true: TLS from the first byte (port 465 style)
  client_ca    CA file: a client certificate signed by it is REQUIRED; the
               .env file then has "CLIENT <subject CN>"
  auth         {"user": "password", ...}: AUTH PLAIN LOGIN (after TLS if a
               cert is set, else in plain text)
  xoauth2      {"user": "token", ...}: AUTH XOAUTH2 too
  xoauth2_challenge  true: a wrong XOAUTH2 token gets Gmail's 334 base64
               JSON challenge first (the client's answer goes to
               out_dir/xoauth2_answer), then 535
  pipelining   default true: add PIPELINING to EHLO (aiosmtpd does not itself)
  enhanced     default true: add ENHANCEDSTATUSCODES to EHLO
  ehlo_extra   list of extra EHLO keywords
  smtputf8     enable SMTPUTF8
  replies      {"greeting": "...", "EHLO": "...", "MAIL": "...", "RCPT": "...",
                "RCPT <addr>": "...", "DATA": "...", "EOD": "...",
                "RSET": "...", "STARTTLS": "...", "EOD <n>": "..."}: the
               reply for that step ("EOD <n>": to the n-th end of data this
               server receives, over all connections)
               (several lines: separate with \\r\\n, e.g. "250-a\\r\\n250 b").
               A 421 reply also closes the connection.
  drop_after_data  true: read the whole message after DATA, then close the
               connection without replying; n: only for the n-th end of
               data this server receives
  delay        {"step": seconds}: sleep before replying at that step
               (steps: greeting, EHLO, MAIL, RCPT, DATA, EOD, RSET, QUIT, AUTH)
  trickle      {"step": seconds}: at that step send an endless multi-line
               reply, one byte every `seconds`
  stall_data   true: answer DATA with 354, then never read again
  inject_after_starttls  text sent in plain text right after "220 Ready to
               start TLS", in the same write
  close_after  n: after n messages on one connection, answer the next
               command with 421 and close
  eof_after    n: after the n-th message's reply on one connection, close the
               connection (EOF) at once
  max_seconds  the server exits by itself after this long (default 600)
"""
import asyncio
import base64
import json
import os
import signal
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

CFG = json.load(open(sys.argv[1]))
REPLIES = CFG.get("replies", {})
DELAY = CFG.get("delay", {})
TRICKLE = CFG.get("trickle", {})
COUNTER = {"n": 0, "eod": 0}   # messages saved; ends of data received


def save(envelope, session, server):
    COUNTER["n"] += 1
    base = os.path.join(CFG["out_dir"], "%d" % COUNTER["n"])
    with open(base + ".eml.tmp", "wb") as f:
        f.write(envelope.original_content)
    lines = ["MAIL <%s> %s" % (envelope.mail_from, " ".join(envelope.mail_options))]
    for i, r in enumerate(envelope.rcpt_tos):
        opts = envelope.rcpt_options[i] if i < len(envelope.rcpt_options) else []
        lines.append("RCPT <%s> %s" % (r, " ".join(opts)))
    lines.append("TLS %s" % ("yes" if server._tls_protocol or CFG.get("implicit") else "no"))
    login = session.auth_data if session.authenticated else None
    if isinstance(login, LoginPassword):
        login = login.login
    if isinstance(login, bytes):
        login = login.decode()
    lines.append("AUTH %s" % (login or "-"))
    sslobj = server.transport.get_extra_info("ssl_object") if server.transport else None
    peer = sslobj.getpeercert() if sslobj else None
    if peer:
        cn = [v for rdn in peer.get("subject", ()) for (k, v) in rdn if k == "commonName"]
        lines.append("CLIENT %s" % (cn[0] if cn else "?"))
    with open(base + ".env.tmp", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.rename(base + ".env.tmp", base + ".env")
    os.rename(base + ".eml.tmp", base + ".eml")
    return COUNTER["n"]


class Handler:
    async def auth_XOAUTH2(self, server, args):
        return await auth_XOAUTH2(server, args)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if "EHLO" in REPLIES:
            return REPLIES["EHLO"].split("\r\n")
        last = responses.pop()  # "250 HELP"
        if CFG.get("auth") is None and CFG.get("xoauth2") is None:
            responses = [r for r in responses if not r.startswith("250-AUTH")]
        extra = list(CFG.get("ehlo_extra", []))
        if CFG.get("pipelining", True):
            extra.append("PIPELINING")
        if CFG.get("enhanced", True):
            extra.append("ENHANCEDSTATUSCODES")
        responses += ["250-" + e for e in extra]
        responses.append(last)
        return responses

    async def handle_MAIL(self, server, session, envelope, address, options):
        rep = REPLIES.get("MAIL")
        if rep and not rep.startswith("2"):
            return rep
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return rep or "250 2.1.0 Ok"

    async def handle_RCPT(self, server, session, envelope, address, options):
        rep = REPLIES.get("RCPT " + address, REPLIES.get("RCPT"))
        if rep and not rep.startswith("2"):
            return rep
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.append(options)
        return rep or "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        COUNTER["eod"] += 1
        k = COUNTER["eod"]
        drop = CFG.get("drop_after_data")
        if drop is True or (drop and drop == k):
            save(envelope, session, server)
            server._dropping = True
            server.transport.close()
            return "250 not sent"
        rep = REPLIES.get("EOD %d" % k, REPLIES.get("EOD"))
        if rep and not rep.startswith("2"):
            return rep
        n = save(envelope, session, server)
        server._msgs += 1
        return rep or "250 2.0.0 Ok: queued as QID%d" % n


async def auth_XOAUTH2(server, args):
    """AUTH XOAUTH2 <base64 of user=U^Aauth=Bearer T^A^A> (initial response)."""
    tokens = CFG.get("xoauth2") or {}
    if len(args) < 2:
        return AuthResult(success=False, handled=False)
    try:
        raw = base64.b64decode(args[1]).decode()
    except Exception:
        return AuthResult(success=False, handled=False)
    parts = dict(p.split("=", 1) for p in raw.split("\x01") if "=" in p)
    user, tok = parts.get("user"), parts.get("auth", "")
    ok = user in tokens and tok == "Bearer " + tokens[user]
    if not ok and CFG.get("xoauth2_challenge"):
        # Gmail's way: a 334 with a base64 JSON error; the client answers
        # with an empty line, then gets the 535
        err = '{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}'
        resp = await server.challenge_auth(err, encode_to_b64=True)
        with open(os.path.join(CFG["out_dir"], "xoauth2_answer"), "wb") as f:
            f.write(resp if isinstance(resp, bytes) else str(resp).encode())
    return AuthResult(success=ok, handled=False, auth_data=user)


def authenticator(server, session, envelope, mechanism, auth_data):
    users = CFG.get("auth") or {}
    if isinstance(auth_data, LoginPassword):
        user, pw = auth_data.login.decode(), auth_data.password.decode()
        return AuthResult(success=user in users and users[user] == pw, handled=False, auth_data=user)
    return AuthResult(success=False, handled=False)


class Scripted(SMTP):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self._step = "greeting"
        self._msgs = 0
        self._dropping = False

    async def push(self, status):
        if self._dropping:
            return
        step = self._step
        if isinstance(status, str) and status.startswith("220 ") and step == "greeting":
            status = REPLIES.get("greeting", status)
        if isinstance(status, str) and status == "220 Ready to start TLS":
            status = REPLIES.get("STARTTLS", status)
            if CFG.get("inject_after_starttls"):
                status = status + "\r\n" + CFG["inject_after_starttls"].rstrip("\r\n")
        if step in DELAY:
            await asyncio.sleep(DELAY[step])
        if step in TRICKLE:
            code = str(status)[:3]
            while True:
                for ch in (code + "-trickle\r\n").encode():
                    self._writer.write(bytes([ch]))
                    await self._writer.drain()
                    await asyncio.sleep(TRICKLE[step])
        await super().push(status)
        if isinstance(status, str) and status.startswith("421"):
            self.transport.close()
        if step == "EOD" and CFG.get("eof_after") and self._msgs >= CFG["eof_after"]:
            self.transport.close()

    async def smtp_EHLO(self, arg):
        self._step = "EHLO"
        await super().smtp_EHLO(arg)

    async def smtp_HELO(self, arg):
        self._step = "EHLO"
        await super().smtp_HELO(arg)

    async def smtp_STARTTLS(self, arg):
        self._step = "STARTTLS"
        await super().smtp_STARTTLS(arg)

    async def smtp_AUTH(self, arg):
        self._step = "AUTH"
        await super().smtp_AUTH(arg)

    async def _limit(self):
        if CFG.get("close_after") and self._msgs >= CFG["close_after"]:
            await self.push("421 4.3.2 Service shutting down, closing transmission channel")
            return True
        return False

    async def smtp_MAIL(self, arg):
        self._step = "MAIL"
        if await self._limit():
            return
        await super().smtp_MAIL(arg)

    async def smtp_RCPT(self, arg):
        self._step = "RCPT"
        await super().smtp_RCPT(arg)

    async def smtp_RSET(self, arg):
        self._step = "RSET"
        if await self._limit():
            return
        if "RSET" in REPLIES:
            self._set_rset_state()
            await self.push(REPLIES["RSET"])
            return
        await super().smtp_RSET(arg)

    async def smtp_NOOP(self, arg):
        self._step = "NOOP"
        if await self._limit():
            return
        await super().smtp_NOOP(arg)

    async def smtp_QUIT(self, arg):
        self._step = "QUIT"
        await super().smtp_QUIT(arg)

    async def smtp_DATA(self, arg):
        self._step = "DATA"
        if CFG.get("stall_data") and self.envelope.rcpt_tos:
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            self.transport.pause_reading()
            await asyncio.sleep(3600)
        if "DATA" in REPLIES and self.envelope.rcpt_tos:
            await self.push(REPLIES["DATA"])
            return
        orig_push = self.push

        async def push_then_eod(status):
            await orig_push(status)
            if status.startswith("354"):
                self._step = "EOD"
        self.push = push_then_eod
        try:
            await super().smtp_DATA(arg)
        finally:
            del self.push


async def main():
    ctx = None
    if CFG.get("cert"):
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(CFG["cert"], CFG["key"])
        if CFG.get("client_ca"):
            ctx.load_verify_locations(CFG["client_ca"])
            ctx.verify_mode = ssl.CERT_REQUIRED
    implicit = bool(CFG.get("implicit"))
    auth = CFG.get("auth") is not None or CFG.get("xoauth2") is not None
    excluded = [] if CFG.get("xoauth2") else ["XOAUTH2"]
    if CFG.get("auth") is None:
        excluded += ["PLAIN", "LOGIN"]

    def factory():
        return Scripted(
            Handler(), hostname="scripted.localhost", ident="scripted",
            tls_context=None if implicit else ctx,
            enable_SMTPUTF8=bool(CFG.get("smtputf8")),
            authenticator=authenticator if auth else None,
            auth_require_tls=bool(ctx) and not implicit,
            auth_exclude_mechanism=excluded if auth else None,
            timeout=60,
        )

    loop = asyncio.get_running_loop()
    srv = await loop.create_server(factory, host=CFG.get("host", "127.0.0.1"), port=0,
                                   ssl=ctx if implicit else None)
    port = srv.sockets[0].getsockname()[1]
    with open(CFG["ready_file"] + ".tmp", "w") as f:
        f.write("%d\n" % port)
    os.rename(CFG["ready_file"] + ".tmp", CFG["ready_file"])
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, lambda: stop.done() or stop.set_result(1))
    try:
        await asyncio.wait_for(stop, CFG.get("max_seconds", 600))
    except asyncio.TimeoutError:
        pass
    srv.close()


if __name__ == "__main__":
    import logging
    logging.basicConfig(level=logging.CRITICAL)
    asyncio.run(main())
