--- Real SMTP servers on 127.0.0.1 for the specs: nothing here is a mock.
--
--     local servers = require "support.servers"
--
-- Every server runs in its own temporary directory, in its own process group
-- (setsid), under `timeout` (it dies by itself after `max_seconds`, default
-- 600, even if the spec run crashes), and is stopped by `srv:stop()` or
-- `servers.stop_all()`. Call `servers.stop_all()` from a `teardown` (it runs
-- even when a test fails); a garbage-collection guard calls it again when the
-- Lua state closes. Needs root (Postfix), LuaSocket, dkjson and the Debian
-- packages in tools/deps.sh.
--
-- API
--   servers.certs() -> c       test certificates made once per run (cached):
--       c.dir, c.ca (CA file), c.ca_key, and for each of server, wronghost
--       (SAN wrong.example.com), expired, selfsigned, client: c.<name>_cert,
--       c.<name>_key. server/expired/selfsigned are valid for localhost and
--       127.0.0.1. See make_certs.sh.
--   servers.free_port() -> n   a port that was free on 127.0.0.1 a moment ago
--   servers.tmpdir() -> path   a fresh directory, removed by stop_all()
--   servers.scripted(cfg) -> srv
--       aiosmtpd with scripted replies (scripted_smtpd.py documents cfg:
--       replies per step, delay, trickle, drop_after_data, close_after,
--       eof_after, inject_after_starttls, cert/key, implicit, auth, ...).
--       cfg.tls = "starttls" | "implicit" uses servers.certs().server unless
--       cfg.cert is given. srv.host, srv.port, srv.dir,
--       srv:messages() -> { {from=, to={...}, mail_params=, rcpt_params={},
--       tls=bool, auth=login|nil, client_cert=CN|nil, data=bytes (CRLF,
--       dot-unstuffed)}, ... }
--       in arrival order; srv:wait_messages(n [, seconds=5]) waits for n.
--   servers.smtp_sink(opts) -> srv
--       Postfix's smtp-sink (no TLS; PIPELINING, AUTH accepting anything).
--       opts.args: extra smtp-sink arguments (list). srv.host, srv.port.
--   servers.postfix(opts) -> srv
--       A private Postfix: srv.port (STARTTLS offered; AUTH PLAIN LOGIN only
--       after STARTTLS; relaying needs AUTH unless opts.open), srv.smtps_port
--       (implicit TLS), srv.user / srv.password (opts.user, opts.password),
--       srv.ca (the CA file that verifies its certificate; opts.cert/opts.key
--       choose another server certificate; opts.main: extra main.cf lines,
--       e.g. "message_size_limit = 4000"). srv:messages() -> list of
--       {queue_id=, from=, to={...}, data=bytes} (LF line ends, Postfix's
--       Received: header first; one entry per queue id, recipients merged;
--       bounces, whose from is "MAILER-DAEMON", are left out);
--       srv:wait_messages(n [, seconds=10]); srv:wait_message(queue_id
--       [, seconds [, nrcpt]]) the message a result's queue_id names (once
--       delivered to nrcpt recipients); srv:log() the maillog text.
--   srv:stop()                 stops one server (idempotent)
--   servers.stop_all()         stops every server and removes the temp dirs
--   servers.body_of(data)      the part after the first empty line, CRLF->LF
--   servers.without_received(data)  Postfix's stored text without its Received:
--   srv:wait_recipients(from, n) the sorted recipients of Postfix's messages from `from`
local socket = require "socket"
local json = require "dkjson"

local M = {}

local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec/support"
local PY = "/usr/bin/python3"

local running = {}   -- servers started and not yet stopped
local tmpdirs = {}

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Runs a shell command; returns its output and whether it exited 0. The
-- servers and tools never inherit an ASan LD_PRELOAD (make san-specs).
local function sh(cmd)
  local f = assert(io.popen("unset LD_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS; " .. cmd
    .. " 2>&1; echo \"__rc=$?\""))
  local out = f:read("*a")
  f:close()
  local body, rc = out:match("^(.-)__rc=(%d+)%s*$")
  return body or out, rc == "0"
end
M.sh = sh

local function sleep(s) socket.sleep(s) end

-- Small file and shell helpers every spec uses: one copy, here.
local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end
M.read_file = read_file

--- Writes data to path (created or truncated); returns path.
function M.write_file(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
  return path
end

--- Quotes s for a POSIX shell.
M.q = q

function M.tmpdir()
  local out, ok = sh("mktemp -d /tmp/smtpkit-spec.XXXXXX")
  assert(ok, "mktemp: " .. out)
  local d = out:gsub("%s+$", "")
  sh("chmod 755 " .. q(d))
  tmpdirs[#tmpdirs + 1] = d
  return d
end

function M.free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

local function can_connect(port)
  local c = socket.tcp()
  c:settimeout(0.5)
  local ok = c:connect("127.0.0.1", port)
  c:close()
  return ok ~= nil
end

local function wait_until(fn, seconds, what)
  local deadline = socket.gettime() + seconds
  while socket.gettime() < deadline do
    if fn() then return true end
    sleep(0.05)
  end
  error("timed out waiting for " .. what, 3)
end

-- Starts `cmd` in the background in its own session, killed after max seconds.
local function spawn(cmd, log, max)
  local out, ok = sh("setsid timeout -s KILL " .. (max or 600) .. " " .. cmd
    .. " >" .. q(log) .. " 2>&1 </dev/null & echo $!")
  assert(ok, out)
  return assert(tonumber(out:match("(%d+)")), "no pid from: " .. out)
end

-- The test servers keep nothing worth a clean shutdown: SIGKILL the group.
local function kill_group(pid)
  sh("kill -KILL -" .. pid .. " 2>/dev/null")
  for _ = 1, 40 do
    local st = sh("ps -o stat= -p " .. pid)
    if not st:match("%u") or st:match("^%s*Z") then return end   -- gone, or a zombie
    sleep(0.025)
  end
end

local Server = {}
Server.__index = Server

local function register(srv)
  setmetatable(srv, Server)
  running[#running + 1] = srv
  return srv
end

function Server:stop()
  if self.stopped then return end
  self.stopped = true
  if self.stop_fn then self.stop_fn(self) end
  for i, s in ipairs(running) do
    if s == self then table.remove(running, i) break end
  end
end

function Server:wait_messages(n, seconds)
  local got
  wait_until(function()
    got = self:messages()
    return #got >= n
  end, seconds or (self.kind == "postfix" and 10 or 5),
    n .. " message(s) at " .. self.kind .. " (have " .. (got and #got or 0) .. ")")
  return got
end

--- Waits for the message whose queue id (Postfix) is qid, delivered to at
-- least nrcpt recipients (default 1: Postfix delivers each recipient on its
-- own, one after the other); returns it.
function Server:wait_message(qid, seconds, nrcpt)
  local found
  wait_until(function()
    for _, m in ipairs(self:messages()) do
      if m.queue_id == qid and #m.to >= (nrcpt or 1) then found = m end
    end
    return found
  end, seconds or 10, "message " .. tostring(qid) .. " at " .. self.kind)
  return found
end

--- The recipients of the messages Postfix stored from the sender `from`,
-- sorted, once there are at least n of them (or after `seconds`, default
-- 15: the list as it is then). Postfix delivers each recipient on its own.
function Server:wait_recipients(from, n, seconds)
  local seen
  local deadline = os.time() + (seconds or 15)
  repeat
    seen = {}
    for _, m in ipairs(self:messages()) do
      if m.from == from then
        for _, a in ipairs(m.to) do seen[#seen + 1] = a end
      end
    end
    if #seen < n then socket.sleep(0.1) end
  until #seen >= n or os.time() > deadline
  table.sort(seen)
  return seen
end

function M.stop_all()
  for i = #running, 1, -1 do running[i]:stop() end
  if not os.getenv("SMTPKIT_KEEP_TMP") then
    for _, d in ipairs(tmpdirs) do sh("rm -rf " .. q(d)) end
  end
  tmpdirs = {}
  M._forget_certs()
end

-- Stop everything when the Lua state closes, whatever happened before.
do
  local function gc() pcall(M.stop_all) end
  if _VERSION == "Lua 5.1" then
    local proxy = newproxy(true)   -- luacheck: ignore newproxy
    getmetatable(proxy).__gc = gc
    M._guard = proxy
  else
    M._guard = setmetatable({}, { __gc = gc })
  end
end

local certs
function M._forget_certs() certs = nil end
function M.certs()
  if certs then return certs end
  local d = M.tmpdir()
  local out, ok = sh("bash " .. q(here .. "/make_certs.sh") .. " " .. q(d))
  assert(ok, "make_certs.sh failed: " .. out)
  certs = { dir = d, ca = d .. "/ca.pem", ca_key = d .. "/ca.key" }
  for _, n in ipairs { "server", "wronghost", "expired", "selfsigned", "client" } do
    certs[n .. "_cert"] = d .. "/" .. n .. ".pem"
    certs[n .. "_key"] = d .. "/" .. n .. ".key"
  end
  return certs
end

local function list_dir(d, pattern)
  local out = sh("ls -1 " .. q(d) .. " 2>/dev/null")
  local names = {}
  for name in out:gmatch("[^\n]+") do
    if name:match(pattern) then names[#names + 1] = name end
  end
  return names
end

-- aiosmtpd with scripted replies ------------------------------------------

local function scripted_messages(self)
  local names = list_dir(self.dir .. "/out", "^%d+%.eml$")
  table.sort(names, function(a, b) return tonumber(a:match("%d+")) < tonumber(b:match("%d+")) end)
  local msgs = {}
  for _, name in ipairs(names) do
    local n = name:match("%d+")
    local env = read_file(self.dir .. "/out/" .. n .. ".env") or ""
    local m = { to = {}, rcpt_params = {}, data = read_file(self.dir .. "/out/" .. name) }
    for line in env:gmatch("[^\n]+") do
      local verb, addr, rest = line:match("^(%u+) <(.-)> ?(.*)$")
      if verb == "MAIL" then
        m.from, m.mail_params = addr, rest
      elseif verb == "RCPT" then
        m.to[#m.to + 1] = addr
        m.rcpt_params[#m.rcpt_params + 1] = rest
      else
        local k, v = line:match("^(%u+) (.*)$")
        if k == "TLS" then m.tls = v == "yes" end
        if k == "AUTH" and v ~= "-" then m.auth = v end
        if k == "CLIENT" then m.client_cert = v end
      end
    end
    msgs[#msgs + 1] = m
  end
  return msgs
end

function M.scripted(cfg)
  cfg = cfg or {}
  local d = M.tmpdir()
  local conf = {}
  for k, v in pairs(cfg) do conf[k] = v end
  if conf.tls and not conf.cert then
    local c = M.certs()
    conf.cert, conf.key = c.server_cert, c.server_key
  end
  if conf.tls == "implicit" then conf.implicit = true end
  conf.tls = nil
  conf.ready_file = d .. "/ready"
  conf.out_dir = d .. "/out"
  conf.max_seconds = conf.max_seconds or 600
  sh("mkdir -p " .. q(d .. "/out"))
  local f = assert(io.open(d .. "/config.json", "w"))
  f:write(json.encode(conf))
  f:close()
  local pid = spawn(PY .. " " .. q(here .. "/scripted_smtpd.py") .. " " .. q(d .. "/config.json"),
    d .. "/server.log", conf.max_seconds + 5)
  local srv = register { kind = "aiosmtpd", host = "127.0.0.1", dir = d, pid = pid,
    messages = scripted_messages,
    stop_fn = function(s) kill_group(s.pid) end }
  local ok, err = pcall(wait_until, function() return read_file(d .. "/ready") end, 10,
    "the scripted aiosmtpd server")
  if not ok then
    srv:stop()
    error(tostring(err) .. "\n" .. (read_file(d .. "/server.log") or ""), 2)
  end
  srv.port = tonumber(read_file(d .. "/ready"):match("%d+"))
  return srv
end

-- smtp-sink ------------------------------------------------------------------

function M.smtp_sink(opts)
  opts = opts or {}
  local d = M.tmpdir()
  local port = M.free_port()
  local args = { "-u", "nobody", "-c" }
  for _, a in ipairs(opts.args or {}) do args[#args + 1] = a end
  local qa = {}
  for i, a in ipairs(args) do qa[i] = q(a) end
  local pid = spawn("/usr/sbin/smtp-sink " .. table.concat(qa, " ") .. " 127.0.0.1:" .. port
    .. " " .. (opts.backlog or 256), d .. "/sink.log", opts.max_seconds)
  local srv = register { kind = "smtp-sink", host = "127.0.0.1", port = port, dir = d, pid = pid,
    stop_fn = function(s) kill_group(s.pid) end }
  local ok, err = pcall(wait_until, function() return can_connect(port) end, 10, "smtp-sink")
  if not ok then
    srv:stop()
    error(tostring(err) .. "\n" .. (read_file(d .. "/sink.log") or ""), 2)
  end
  return srv
end

-- Postfix --------------------------------------------------------------------

local function postfix_messages(self)
  local by_id, order = {}, {}
  for _, name in ipairs(list_dir(self.dir .. "/mail", "%.eml$")) do
    local base = name:gsub("%.eml$", "")
    local qid = base:match("^([^.]+)")
    local env = read_file(self.dir .. "/mail/" .. base .. ".env") or ""
    local lines = {}
    for l in env:gmatch("[^\n]+") do lines[#lines + 1] = l end
    if lines[1] ~= "MAILER-DAEMON" then
      local m = by_id[qid]
      if not m then
        m = { queue_id = qid, from = lines[1], to = {},
          data = read_file(self.dir .. "/mail/" .. name) }
        by_id[qid] = m
        order[#order + 1] = m
      end
      for i = 2, #lines do m.to[#m.to + 1] = lines[i] end
    end
  end
  for _, m in ipairs(order) do table.sort(m.to) end
  return order
end

local function start_postfix(opts)
  local c = M.certs()
  local d = M.tmpdir()
  local port, sport = M.free_port(), M.free_port()
  while sport == port do sport = M.free_port() end
  local user, password = opts.user or "alice", opts.password or "s3cret-pw"
  local srv = register { kind = "postfix", host = "127.0.0.1", port = port, smtps_port = sport,
    dir = d, user = user, password = password, ca = opts.ca or c.ca,
    messages = postfix_messages,
    log = function(s) return read_file(s.dir .. "/log/maillog") or "" end,
    stop_fn = function(s)
      if s.watchdog then kill_group(s.watchdog) end
      sh("bash " .. q(here .. "/postfix.sh") .. " stop " .. q(s.dir))
    end }
  local env = opts.main and ("POSTFIX_EXTRA_MAIN=" .. q(opts.main) .. " ") or ""
  local out, ok = sh(env .. "bash " .. q(here .. "/postfix.sh") .. " start " .. q(d) .. " " .. port .. " "
    .. sport .. " " .. q(opts.cert or c.server_cert) .. " " .. q(opts.key or c.server_key) .. " "
    .. q(user) .. " " .. q(password) .. (opts.open and " open" or ""))
  if not ok then
    srv:stop()
    error("postfix.sh start failed: " .. out, 2)
  end
  -- a watchdog: the instance goes away after max_seconds even if nobody stops it
  local max = opts.max_seconds or 600
  srv.watchdog = spawn("sh -c " .. q("sleep " .. max .. "; bash " .. q(here .. "/postfix.sh")
    .. " stop " .. q(d)), "/dev/null", max + 30)
  local ok2, err = pcall(wait_until, function() return can_connect(port) and can_connect(sport) end,
    15, "postfix")
  if not ok2 then
    local log = srv:log()
    srv:stop()
    error(tostring(err) .. "\n" .. log, 2)
  end
  return srv
end

-- True when the server on port sends its 220 greeting within `seconds`.
local function greets(port, seconds)
  local c = socket.tcp()
  c:settimeout(seconds)
  if not c:connect("127.0.0.1", port) then c:close() return false end
  local line = c:receive("*l")
  if line then c:send("QUIT\r\n") end
  c:close()
  return line ~= nil and line:find("^220") ~= nil
end

--- Starts a private Postfix (see postfix.sh). A listening port is not enough:
-- now and then the instance's postlogd blocks on its own socket at start-up,
-- and then smtpd blocks on its first log line and never greets. Such an
-- instance is replaced (three tries), so no spec waits out its timeouts.
function M.postfix(opts)
  opts = opts or {}
  for _ = 1, 2 do
    local srv = start_postfix(opts)
    if greets(srv.port, 10) then return srv end
    srv:stop()
  end
  local srv = start_postfix(opts)
  if not greets(srv.port, 10) then
    local log = srv:log()
    srv:stop()
    error("postfix: no 220 greeting within 10 s, three times\n" .. log, 2)
  end
  return srv
end

--- The body of a message: what follows the first empty line, with CRLF -> LF.
--- What Postfix stored, without the Received: header it put on top.
function M.without_received(data)
  local pos = 1
  if data:sub(1, 10) == "Received: " then
    pos = data:find("\n", 1, true) + 1
    while data:find("^[ \t]", pos) do pos = data:find("\n", pos, true) + 1 end
  end
  return data:sub(pos)
end

function M.body_of(data)
  data = data:gsub("\r\n", "\n")
  local _, e = data:find("\n\n", 1, true)
  return e and data:sub(e + 1) or ""
end

return M
