--- A throwaway SMTP server on loopback for `smtpkit demo`: aiosmtpd from
-- Debian's python3-aiosmtpd (run with /usr/bin/python3), STARTTLS with a
-- certificate made by `openssl` for this run, AUTH PLAIN/LOGIN after TLS,
-- and scripted replies per recipient. Everything lives in one temporary
-- directory; `stop()` ends the process this module started and removes it.
-- @module smtpkit.cli.demo_server
local common = require "smtpkit.cli.common"

local M = {}

M.PYTHON = os.getenv("SMTPKIT_PYTHON") or "/usr/bin/python3"

-- The server. Config (JSON file, argv[1]):
--   ready_file, out_dir, cert, key, users {name: password},
--   script {address: [reply, reply, ...]}: the n-th RCPT of that address gets
--     the n-th reply (the last one repeats); a 421 reply closes the connection,
--   watch_pid: exit when that process is gone; max_seconds: exit after that.
-- Received messages: out_dir/N.eml (DATA bytes) and N.env (MAIL/RCPT/TLS/AUTH).
M.SOURCE = [=[
import asyncio, json, os, signal, ssl, sys, logging
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

CFG = json.load(open(sys.argv[1]))
SCRIPT = CFG.get("script", {})
SEEN = {}
COUNT = {"n": 0}


class Handler:
    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        last = responses.pop()
        responses += ["250-PIPELINING", "250-ENHANCEDSTATUSCODES"]
        responses.append(last)
        return responses

    async def handle_RCPT(self, server, session, envelope, address, options):
        replies = SCRIPT.get(address.lower())
        if replies:
            n = SEEN.get(address.lower(), 0)
            SEEN[address.lower()] = n + 1
            rep = replies[min(n, len(replies) - 1)]
            if not rep.startswith("2"):
                if rep.startswith("421"):
                    server._close_after = True
                return rep
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        COUNT["n"] += 1
        base = os.path.join(CFG["out_dir"], "%d" % COUNT["n"])
        with open(base + ".tmp", "wb") as f:
            f.write(envelope.original_content)
        login = session.auth_data if session.authenticated else None
        with open(base + ".env", "w") as f:
            f.write("MAIL %s\n" % envelope.mail_from)
            for r in envelope.rcpt_tos:
                f.write("RCPT %s\n" % r)
            f.write("TLS %s\nAUTH %s\n" % ("yes" if server._tls_protocol else "no", login or "-"))
        os.rename(base + ".tmp", base + ".eml")
        return "250 2.0.0 Ok: queued as DEMO%04d" % COUNT["n"]


def authenticator(server, session, envelope, mechanism, auth_data):
    users = CFG.get("users", {})
    if isinstance(auth_data, LoginPassword):
        user, pw = auth_data.login.decode(), auth_data.password.decode()
        return AuthResult(success=user in users and users[user] == pw, auth_data=user)
    return AuthResult(success=False)


class DemoSMTP(SMTP):
    _close_after = False

    async def push(self, status):
        await super().push(status)
        if self._close_after:
            self.transport.close()


async def watch():
    pid = CFG.get("watch_pid")
    while True:
        await asyncio.sleep(0.5)
        if pid:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return


async def main():
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(CFG["cert"], CFG["key"])

    def factory():
        return DemoSMTP(Handler(), hostname="demo.localhost", ident="smtpkit demo server",
                        tls_context=ctx, authenticator=authenticator,
                        auth_require_tls=True, timeout=60)

    loop = asyncio.get_running_loop()
    srv = await loop.create_server(factory, host="127.0.0.1", port=0)
    with open(CFG["ready_file"] + ".tmp", "w") as f:
        f.write("%d\n" % srv.sockets[0].getsockname()[1])
    os.rename(CFG["ready_file"] + ".tmp", CFG["ready_file"])
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, lambda: stop.done() or stop.set_result(1))
    loop.add_signal_handler(signal.SIGINT, lambda: stop.done() or stop.set_result(1))
    w = asyncio.ensure_future(watch())
    await asyncio.wait([stop, w], timeout=CFG.get("max_seconds", 300),
                       return_when=asyncio.FIRST_COMPLETED)
    srv.close()


logging.basicConfig(level=logging.CRITICAL)
asyncio.run(main())
]=]

local function write(path, data)
  local fh = assert(io.open(path, "wb"))
  fh:write(data)
  fh:close()
end

local function read(path)
  local fh = io.open(path, "rb")
  if not fh then return nil end
  local d = fh:read("*a")
  fh:close()
  return d
end

-- The pid of this Lua process: the parent of the shell io.popen starts.
local function my_pid()
  local p = io.popen("echo $PPID")
  local pid = p and tonumber(p:read("*l"))
  if p then p:close() end
  return pid
end

--- Makes a temporary directory and returns its path.
function M.tempdir(prefix)
  local base = os.getenv("TMPDIR")
  if not base or base == "" then base = "/tmp" end
  base = base:gsub("/+$", "")
  if base == "" then base = "/" end
  local p = io.popen("mktemp -d " .. common.shquote(base .. "/" .. (prefix or "smtpkit-demo") .. ".XXXXXX")
    .. " 2>/dev/null")
  local dir = p and p:read("*l")
  if p then p:close() end
  if not dir or dir == "" then
    common.fail("input", "cannot create a temporary directory in " .. base, "io")
  end
  return dir
end

--- Checks that what the server needs is installed; returns nil, message otherwise.
function M.available()
  if not common.sh_ok("command -v openssl >/dev/null 2>&1") then
    return nil, "openssl is not installed (Debian package: openssl)"
  end
  if not common.sh_ok(common.shquote(M.PYTHON) .. " -c 'import aiosmtpd' >/dev/null 2>&1") then
    return nil, M.PYTHON .. " cannot import aiosmtpd (Debian package: python3-aiosmtpd)"
  end
  return true
end

--- Starts the server. `opts.users` ({name = password}), `opts.script`
-- ({address = {reply, ...}}). Returns a server table
-- `{port, dir, cafile, pid, out_dir, received(), stop()}` or nil, message.
function M.start(opts)
  local ok, why = M.available()
  if not ok then return nil, why end
  local dir = M.tempdir()
  local cert, key = dir .. "/cert.pem", dir .. "/key.pem"
  local cmd = ("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
    .. "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout %s -out %s >%s 2>&1")
    :format(common.shquote(key), common.shquote(cert), common.shquote(dir .. "/openssl.log"))
  if not common.sh_ok(cmd) then
    local log = read(dir .. "/openssl.log") or ""
    common.sh_ok("rm -rf " .. common.shquote(dir))
    return nil, "openssl could not make the throwaway certificate: " .. (log:match("[^\n]+") or "?")
  end
  local out_dir = dir .. "/received"
  common.mkdir_p(out_dir)
  local cfg = {
    ready_file = dir .. "/port", out_dir = out_dir, cert = cert, key = key,
    users = opts.users or {}, script = opts.script or {}, watch_pid = my_pid(),
    max_seconds = opts.max_seconds or 300,
  }
  write(dir .. "/server.json", common.json(cfg))
  write(dir .. "/server.py", M.SOURCE)
  local p = io.popen(("%s %s %s >%s 2>&1 & echo $!"):format(common.shquote(M.PYTHON),
    common.shquote(dir .. "/server.py"), common.shquote(dir .. "/server.json"),
    common.shquote(dir .. "/server.log")))
  local pid = p and tonumber(p:read("*l"))
  if p then p:close() end
  local server = { dir = dir, cafile = cert, pid = pid, out_dir = out_dir }

  function server.stop()
    if server.pid then
      common.sh_ok("kill " .. server.pid .. " 2>/dev/null")
      for _ = 1, 50 do
        if not common.sh_ok("kill -0 " .. server.pid .. " 2>/dev/null") then break end
        common.sleep(0.1)
      end
      common.sh_ok("kill -9 " .. server.pid .. " 2>/dev/null")
      server.pid = nil
    end
    if not opts.keep then common.sh_ok("rm -rf " .. common.shquote(dir)) end
  end

  --- The messages received so far: list of {eml=, env=}.
  function server.received()
    local list = {}
    for i = 1, 10000 do
      local eml = read(out_dir .. "/" .. i .. ".eml")
      if not eml then break end
      list[i] = { eml = eml, env = read(out_dir .. "/" .. i .. ".env") or "" }
    end
    return list
  end

  if not pid then
    server.stop()
    return nil, "could not start " .. M.PYTHON
  end
  for _ = 1, 200 do
    local port = tonumber(read(dir .. "/port") or "")
    if port then
      server.port = port
      return server
    end
    if not common.sh_ok("kill -0 " .. pid .. " 2>/dev/null") then break end
    common.sleep(0.05)
  end
  local log = read(dir .. "/server.log") or ""
  server.stop()
  return nil, "the demo SMTP server did not start: " .. (log:match("([^\n]+)\n?$") or "no output")
end

return M
