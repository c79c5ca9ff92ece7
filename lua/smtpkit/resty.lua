--- smtpkit for OpenResty: the same `connect`, `send`, `close` API and the same
-- result tables as `smtpkit`, over nginx cosockets (`ngx.socket.tcp`).
--
-- The SMTP protocol is `smtpkit.core`'s engine (csrc/session.c, which does no
-- I/O); this file only moves bytes between the engine and a cosocket, does
-- TLS with the cosocket's `sslhandshake` (nginx's own OpenSSL: smtpkit.core
-- links none), applies the per-phase timeouts, and pools connections with
-- `setkeepalive`. Nothing here blocks a worker.
--
--     local mail = require "smtpkit.resty"
--     local res, err = mail.send({ host = "smtp.example.com", port = 587,
--       username = "u", password = "p" }, { from = "a@example.com",
--       to = "b@example.org", body = "Subject: hi\r\n\r\nHello" })
--     if not res then ngx.log(ngx.ERR, tostring(err)) end   -- nil, err: no message went out
--     -- res.ok, res.outcome, res.reason, res.action, res.retry, res.queue_id, ...
--
-- Works in rewrite, access, content and timer phases (where cosockets are).
-- Run-time failures (network, TLS, server, validation) are returned as
-- `nil, err`, never raised; `error()` only for wrong argument types.
--
-- Trust for certificate verification is nginx's `lua_ssl_trusted_certificate`
-- (and `lua_ssl_verify_depth`): the `cafile`/`capath` options of the plain-Lua
-- client cannot be set per connection in this ngx_lua, and are refused.
-- @module smtpkit.resty
local core = require "smtpkit.core"
local E = require "smtpkit.error"
local envelope = require "smtpkit.envelope"
local batch = require "smtpkit.batch"

local ngx = ngx
local type, tostring, pairs, ipairs, pcall, setmetatable =
  type, tostring, pairs, ipairs, pcall, setmetatable
local concat = table.concat

local M = { _VERSION = core.version }

local DEFAULTS = {
  pool_size = 10,            -- connections per pool and worker (open at once, and idle kept)
  backlog = 1000,            -- sends waiting for one of them (beyond: kind connect)
  keepalive_timeout = 60,    -- seconds an idle pooled connection is kept
  max_messages = 100,        -- messages per connection before it is retired
  read_size = 65536,         -- receiveany() size
}

-- Which engine phases each of the plain client's timeout groups covers.
local TIMEOUT_GROUP = {
  connect = "connect", greeting = "greeting",
  ehlo = "command", starttls = "command", auth = "command", mail = "command",
  rcpt = "command", data = "command", quit = "command",
  data_block = "data", dot = "data",
}

-- -------------------------------------------------------------------------
-- errors

local new_error = E.new
M.new_error = new_error

-- -------------------------------------------------------------------------
-- options

local TLS_MODES = { starttls = true, implicit = true, none = true, opportunistic = true }

local function check_type(v, want, name, level)
  if v ~= nil and type(v) ~= want then
    error(("smtpkit.resty: option %s must be a %s, not %s"):format(name, want, type(v)), level + 1)
  end
end

-- Checks and completes the options: error() for wrong types, nil, err for
-- values that cannot work.
local function normalise_opts(opts)
  if type(opts) ~= "table" then
    error("smtpkit.resty: options must be a table", 3)
  end
  for _, k in ipairs{ "host", "tls", "username", "password", "xoauth2", "helo", "server_name",
      "auth_mechanism", "pool", "cafile", "capath", "client_cert", "client_key" } do
    if k ~= "pool" then check_type(opts[k], "string", k, 3) end
  end
  for _, k in ipairs{ "port", "max_messages", "pool_size", "keepalive_timeout" } do
    check_type(opts[k], "number", k, 3)
  end
  if opts.backlog ~= nil and opts.backlog ~= false then check_type(opts.backlog, "number", "backlog", 3) end
  check_type(opts.timeouts, "table", "timeouts", 3)
  for k, v in pairs(opts.timeouts or {}) do
    -- 0 or less would mean no deadline at all: a mistake, not a choice
    if type(v) ~= "number" or v <= 0 or v ~= v then
      error(("smtpkit.resty: option timeouts.%s must be a number of seconds > 0, not %s"):format(
        tostring(k), tostring(v)), 3)
    end
  end
  check_type(opts.trace, "function", "trace", 3)
  if opts.host == nil then error("smtpkit.resty: option host is required", 3) end

  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.port = o.port or (o.tls == "implicit" and 465 or 587)
  o.tls = o.tls or (o.port == 465 and "implicit" or "starttls")
  if not TLS_MODES[o.tls] then
    return nil, new_error("validation", ("tls must be starttls, implicit, opportunistic or none, not %q")
      :format(o.tls))
  end
  if o.cafile or o.capath then
    return nil, new_error("validation", "cafile/capath cannot be set per connection in OpenResty: "
      .. "put the CA bundle in nginx.conf's lua_ssl_trusted_certificate (and lua_ssl_verify_depth)")
  end
  if (o.client_cert == nil) ~= (o.client_key == nil) then
    return nil, new_error("validation", "client_cert and client_key go together")
  end
  o.verify = o.verify ~= false
  o.server_name = o.server_name or o.host
  o.pool_size = o.pool_size or DEFAULTS.pool_size
  -- With a backlog, ngx_lua caps the pool's open connections at pool_size and
  -- queues further connects (its pool is made by the first connect, with
  -- that connect's options). backlog = false: no cap, pool_size idle kept.
  if o.backlog == nil then o.backlog = DEFAULTS.backlog end
  if o.backlog == false then o.backlog = nil end
  o.keepalive_timeout = o.keepalive_timeout or DEFAULTS.keepalive_timeout
  o.max_messages = o.max_messages or DEFAULTS.max_messages
  o.timeouts = o.timeouts or {}
  if o.pool ~= false then
    -- An authenticated connection is never shared across accounts, nor a
    -- verified one with a client that does not verify (and the reverse).
    o.pool_name = concat({ "smtpkit", o.host, o.port, o.tls, o.username or "",
      o.verify and "verify" or "noverify", o.server_name, o.client_cert or "" }, "|")
  end
  return o
end

-- The timeout (seconds) of an engine phase: timeouts[phase] first, then the
-- phase's group (connect, greeting, command, data), then the engine default.
local function phase_timeout(o, phase, default)
  local t = o.timeouts
  return t[phase] or t[TIMEOUT_GROUP[phase] or ""] or default or 300
end

-- -------------------------------------------------------------------------
-- per-worker state: TLS sessions to resume, what a pool's connections are

local tls_sessions, tls_session_count = {}, 0   -- pool/host key -> SSL session userdata
local pool_tls = {}                              -- pool name -> channel is TLS (opportunistic)
local pool_caps = {}                             -- pool name -> its server's EHLO capabilities

local function remember_tls_session(key, sess)
  if type(sess) ~= "userdata" and type(sess) ~= "cdata" then return end
  if tls_sessions[key] == nil then
    tls_session_count = tls_session_count + 1
    if tls_session_count > 256 then  -- bounded: forget them all, they are only an optimisation
      tls_sessions, tls_session_count = {}, 1
    end
  end
  tls_sessions[key] = sess
end

-- -------------------------------------------------------------------------
-- TLS errors with their fix

local function tls_error_message(o, err)
  local where = ("%s:%d; trust: lua_ssl_trusted_certificate"):format(o.host, o.port)
  local e = tostring(err)
  if e:find("host mismatch", 1, true) or e:find("hostname mismatch", 1, true) then
    return ("certificate verify failed: the certificate does not name %s (%s) - connect with the "
      .. "name the certificate carries (server_name option), or fix the server's certificate")
      :format(o.server_name, where)
  elseif e:find("expired", 1, true) then
    return ("certificate verify failed: %s (%s) - the server's certificate has expired: renew it on "
      .. "the server"):format(e, where)
  elseif e:find("self.signed") or e:find("local issuer", 1, true) or e:find("unable to get", 1, true)
      or e:find("verify", 1, true) then
    return ("certificate verify failed: %s (%s) - set lua_ssl_trusted_certificate in nginx.conf to "
      .. "the relay's CA bundle (and lua_ssl_verify_depth if its chain is long)"):format(e, where)
  end
  return ("TLS handshake failed: %s (%s:%d)"):format(e, o.host, o.port)
end

local function connect_error(o, err)
  local e = tostring(err)
  if e:find("resolve", 1, true) or e:find("resolver", 1, true) then
    return new_error("dns", ("cannot resolve %s: %s - nginx needs a `resolver` directive to "
      .. "look up host names from Lua"):format(o.host, e))
  elseif e == "timeout" then
    return new_error("timeout", ("connect to %s:%d timed out"):format(o.host, o.port))
  end
  return new_error("connect", ("cannot connect to %s:%d: %s"):format(o.host, o.port, e))
end

-- -------------------------------------------------------------------------
-- the client

local Client = {}
Client.__index = Client

-- Sets the cosocket's send/read timeouts to what is left of the phase's
-- budget: a phase is bounded as a whole, however the bytes trickle in.
local function arm(self, tls_phase)
  local s = self.session
  local phase, default = s:phase()
  local now = ngx.now()
  if phase ~= self.phase then
    self.phase = phase
    self.deadline = now + phase_timeout(self.opts, phase, default)
  end
  local left = self.deadline - now
  if left < 0.001 then return false end
  local ms = left * 1000
  -- (the TLS handshake runs under the connect timeout: it gets the phase's too)
  self.sock:settimeouts(tls_phase and ms or self.connect_ms, ms, ms)
  return true
end

local function restart_phase(self)
  self.phase = nil
end

-- A TLS handshake on the cosocket, for implicit TLS and STARTTLS.
local function handshake(self)
  local o, sock = self.opts, self.sock
  if not arm(self, true) then
    self.session:timeout()
    return
  end
  if not o.verify and self.trace then
    self.trace("info", "[TLS certificate verification disabled: insecure]")
  end
  if o.client_cert_cdata then
    local ok, err = sock:setclientcert(o.client_cert_cdata, o.client_key_cdata)
    if not ok then
      self.session:abort("tls", "client certificate: " .. tostring(err))
      return
    end
  end
  local key = self.tls_key
  local okp, sess, err = pcall(sock.sslhandshake, sock, tls_sessions[key], o.server_name, o.verify)
  if not okp then
    -- lua-resty-core (0.1.25 and older) raises "assertion failed!" instead
    -- of returning the error when a handshake that completed at once then
    -- fails verification (openresty/lua-resty-core#499, fixed upstream)
    if tostring(sess):find("assertion failed", 1, true) then
      sess, err = nil, "the certificate did not verify (lua-resty-core did not say why: "
        .. "openresty/lua-resty-core#499)"
    else
      sess, err = nil, sess
    end
  end
  if not sess then
    self.session:abort("tls", tls_error_message(o, err))
    return
  end
  remember_tls_session(key, sess)
  local ok, terr = self.session:tls_done()
  if not ok and self.trace then self.trace("info", "[tls_done: " .. tostring(terr) .. "]") end
end

-- Moves bytes until the engine wants something other than I/O: returns the
-- want ("body", "ready", "done", "failed").
local function pump(self)
  local s, sock = self.session, self.sock
  while true do
    local want = s:want()
    if want == "write" then
      local out = s:output()
      if not out then
        s:abort("connect", "the engine wanted to write but had nothing to write")
      else
        if not arm(self) then
          s:timeout()
        else
          local ok, err = sock:send(out)
          if not ok then
            if err == "timeout" then s:timeout() else s:closed() end
          end
        end
      end
    elseif want == "read" then
      if not arm(self) then
        s:timeout()
      else
        local data, err = sock:receiveany(DEFAULTS.read_size)
        if data then
          s:receive(data)
        elseif err == "timeout" then
          s:timeout()
        else
          s:closed()
        end
      end
    elseif want == "tls" then
      handshake(self)
    else
      return want
    end
  end
end

-- Gives the body to the engine, writing as the output fills up. Returns the
-- want after the body (normally "read" handled in pump, then a final want).
local function send_body(self, source)
  local s = self.session
  local pass, iter, chunk, pos = nil, nil, nil, 1
  while true do
    local want = pump(self)
    if want ~= "body" then return want end
    local p = s:body_pass()
    if p ~= pass then
      pass = p
      local err
      iter, err = source()
      if not iter then
        s:abort("connect", "message body: " .. tostring(err))
        return pump(self)
      end
      chunk, pos = nil, 1
    end
    if chunk == nil or pos > #chunk then
      local ok, c, cerr = pcall(iter)
      if not ok or (c == nil and cerr ~= nil) then
        -- DATA has begun: end the connection without the final dot, so
        -- nothing is delivered.
        s:abort("connect", "message body: " .. tostring(ok and cerr or c))
        return pump(self)
      end
      if c == nil then
        local eok, err = s:body_end()
        if not eok then
          if self.trace then self.trace("info", "[body_end: " .. tostring(err) .. "]") end
          return pump(self)
        end
        restart_phase(self)
        chunk = nil
      elseif type(c) ~= "string" then
        s:abort("connect", "message body: the iterator gave a " .. type(c) .. ", not a string")
        return pump(self)
      else
        chunk, pos = c, 1
      end
    end
    if chunk then
      local n, err = s:body(chunk, pos)
      if not n then
        if self.trace then self.trace("info", "[body: " .. tostring(err) .. "]") end
        return pump(self)
      end
      pos = pos + n
    end
  end
end

local function close_socket(self)
  if self.sock then
    self.sock:close()
    self.sock = nil
  end
  self.closed = true
end

-- A session for the connection; reused: a pooled connection, resumed (the
-- engine starts ready with the pool's capabilities, and sends RSET with the
-- first MAIL: no round trip of its own).
local function new_session(self, reused)
  local o = self.opts
  local user_trace = o.trace
  local trace
  if user_trace then
    -- as smtpkit.client: trace("C: EHLO x", "send"), "S: ..." recv, "* ..." info
    local prefix = { send = "C: ", recv = "S: ", info = "* " }
    trace = function(direction, line) user_trace((prefix[direction] or "") .. line, direction) end
    self.trace = trace
  end
  local tls_active = false
  if reused then
    if o.tls == "opportunistic" then
      tls_active = pool_tls[o.pool_name] or false
    else
      tls_active = o.tls ~= "none"
    end
  end
  local s, err = core.session{
    helo = o.helo,
    tls = o.tls,
    tls_active = tls_active,
    -- A pooled connection is already logged in as this pool's user.
    username = not reused and o.username or nil,
    password = not reused and o.password or nil,
    xoauth2_token = not reused and o.xoauth2 or nil,
    auth_mechanism = not reused and o.auth_mechanism or nil,
    allow_plaintext_auth = o.allow_plaintext_auth,
    pipelining = o.pipelining,
    resume = reused and pool_caps[o.pool_name] or nil,
    trace = trace,
  }
  if not s then return nil, err end
  self.session = s
  return s
end

-- One connection attempt: a socket from the pool or a new one, brought to
-- READY. Returns true, or nil, err, stale (stale: a pooled connection that
-- turned out dead; try again).
local function open(self)
  local o = self.opts
  if type(ngx) ~= "table" then
    return nil, new_error("connect", "smtpkit.resty runs inside OpenResty/nginx: from plain Lua, "
      .. "use smtpkit.connect")
  end
  local okc, sock = pcall(ngx.socket.tcp)
  if not okc or not sock then
    return nil, new_error("connect", "cosockets are not available here (" .. tostring(sock)
      .. "): send from a rewrite/access/content handler or an ngx.timer.at callback")
  end
  self.sock = sock
  self.connect_ms = phase_timeout(o, "connect", 30) * 1000
  sock:settimeouts(self.connect_ms, self.connect_ms, self.connect_ms)
  local okp, ok, err
  if o.pool_name then
    okp, ok, err = pcall(sock.connect, sock, o.host, o.port,
      { pool = o.pool_name, pool_size = o.pool_size, backlog = o.backlog })
  else
    okp, ok, err = pcall(sock.connect, sock, o.host, o.port)
  end
  if not okp then
    self.sock = nil
    return nil, new_error("connect", "cosockets are not available here (" .. tostring(ok)
      .. "): send from a rewrite/access/content handler or an ngx.timer.at callback")
  end
  if not ok then
    self.sock = nil
    return nil, connect_error(o, err)
  end
  local reused = o.pool_name and sock:getreusedtimes() or 0
  if reused > 0 and not pool_caps[o.pool_name] then
    -- (pooled by code that did not record the capabilities: not ours to resume)
    close_socket(self)
    return nil, new_error("connect", "a pooled connection of unknown state"), true
  end
  self.reused = reused
  self.messages = 0
  local s, serr = new_session(self, reused > 0)
  if not s then
    close_socket(self)
    return nil, serr
  end
  restart_phase(self)
  if reused > 0 and self.trace then
    self.trace("info", ("[pooled connection, reused %d times: RSET goes with the first MAIL]")
      :format(reused))
  end
  local want = pump(self)
  if want == "ready" then
    if reused == 0 and o.pool_name then
      pool_caps[o.pool_name] = s:capabilities()
      if o.tls == "opportunistic" then pool_tls[o.pool_name] = s:tls() and true or false end
    end
    self.closed = false
    return true
  end
  local e = s:error() or new_error("protocol", "the session ended before it was ready")
  close_socket(self)
  -- A pooled connection that turned out dead (EOF, or 421) is replaced; one
  -- that timed out is not (each try would wait the whole timeout again).
  return nil, e, reused > 0 and (e.kind == "connect" or e.kind == "server")
end

-- Opens a connection; a pooled connection found dead is replaced (at most
-- pool_size + 1 tries). Returns true or nil, err.
function Client:_open()
  local last
  for _ = 1, (self.opts.pool_name and self.opts.pool_size + 1 or 1) do
    local ok, e, stale = open(self)
    if ok then return true end
    last = e
    if not stale then break end
  end
  return nil, last
end

--- Opens a connection (or takes one from the pool) and brings it to the
-- point where messages can be sent: greeting, EHLO, STARTTLS, AUTH.
-- opts: host, port (587; 465 implies implicit TLS), tls ("starttls" default,
-- "implicit" on port 465, "opportunistic", "none"), username, password,
-- xoauth2 (token), auth_mechanism, allow_plaintext_auth, helo, server_name
-- (SNI and the name checked; default host), verify (default true), timeouts
-- ({connect, greeting, command, data} or per engine phase, seconds), trace
-- (function(line, direction), as smtpkit.client's: "C: ...", "S: ...",
-- "* ..."; credentials redacted), client_cert/client_key (PEM file paths),
-- max_messages (100: a connection is retired, with QUIT, once it carried
-- this many; each earlier use from the pool counts as one message, since
-- ngx_lua tells how often a connection was reused, not what it carried),
-- pool (false: no pooling), pool_size (10: connections
-- per worker to this server, TLS mode and account, open at once; ngx_lua
-- 0.10.23 keeps to it loosely under contention: a connect woken from the
-- backlog may open one more), backlog (1000 sends may wait for a connection;
-- false: no cap, pool_size idle connections kept), keepalive_timeout (60 s
-- idle in the pool).
--
-- A connection from the pool is already past the greeting, TLS and AUTH:
-- the engine is given a greeting and sends EHLO, which resets the server's
-- transaction state as RSET does (RFC 5321 4.1.4) and proves the connection
-- alive before any part of a message goes out; a dead one is replaced.
-- TLS sessions are kept per pool and offered again on reconnect (this works
-- with TLS 1.2, lua_ssl_protocols' default in ngx_lua 0.10.23; with TLS 1.3
-- the session sslhandshake returns predates the server's ticket).
-- @treturn table client, or nil, err
function M.connect(opts)
  local o, err = normalise_opts(opts)
  if not o then return nil, err end
  if o.client_cert then
    local ok, perr = pcall(function()
      local ssl = require "ngx.ssl"
      local function slurp(path)
        local f, ferr = io.open(path, "rb")
        if not f then error(ferr, 0) end
        local s = f:read("*a")
        f:close()
        return s
      end
      local function parse(fn, path)
        local v, why = fn(slurp(path))
        if not v then error(path .. ": " .. tostring(why), 0) end
        return v
      end
      o.client_cert_cdata = parse(ssl.parse_pem_cert, o.client_cert)
      o.client_key_cdata = parse(ssl.parse_pem_priv_key, o.client_key)
    end)
    if not ok then
      return nil, new_error("tls", "client certificate/key: " .. tostring(perr))
    end
  end
  local self = setmetatable({ opts = o, messages = 0, reused = 0,
    tls_key = o.pool_name or (o.host .. "|" .. o.port .. "|" .. o.server_name) }, Client)
  local ok, cerr = self:_open()
  if not ok then return nil, cerr end
  return self
end

-- -------------------------------------------------------------------------
-- messages: smtpkit.envelope, shared with smtpkit.client

-- Turns msg into (envelope, body source: a function giving a chunk iterator
-- per pass of the engine), or nil, err. error() for wrong types.
local function prepare(msg)
  local env, body, again = envelope.prepare(msg)
  if not env then return nil, body end
  if env.body_8bit == nil and type(body) == "string" then
    -- a string body is scanned; a streamed one stays unknown (nil): see
    -- transact
    env.body_8bit = body:find("[\128-\255]") ~= nil
  end
  return env, envelope.source(body, again)
end

local function retire(self)
  return self.reused + self.messages >= self.opts.max_messages
end

-- Sends on the current connection. Returns result, or nil, err, resendable
-- (resendable: the server went away - EOF or 421 - before it answered MAIL,
-- as a server that closed an idle connection does: the engine's rule,
-- smtpkit_session_resendable; the client may try a new connection).

local function transact(self, env, source)
  local s = self.session
  local said = env.body_8bit
  if said == nil then
    -- a streamed body of unknown 8-bitness: BODY=8BITMIME when offered;
    -- otherwise 7 bit, and the engine fails the send on an 8-bit octet
    env.body_8bit = s:capabilities()["8bitmime"] == true
  end
  local ok, err = s:begin(env)
  env.body_8bit = said
  if not ok then return nil, err end   -- validation: nothing was sent, still ready
  restart_phase(self)
  local want = send_body(self, source)
  local res = s:result()
  if want == "ready" then
    self.messages = self.messages + 1
    return res
  end
  local e = s:error() or new_error("protocol", "the session failed")
  local resendable = s:resendable()
  close_socket(self)
  if resendable and self.idle then return nil, e, true end
  if res and res.maybe_delivered then self.messages = self.messages + 1 end
  -- a result with the error when it says something definite (maybe
  -- delivered, a 421...), else nil, err: the same rule as smtpkit.client
  return E.outcome(res, e)
end

-- QUIT (when idle) and close.
local function quit(self)
  local s = self.session
  if self.sock and s and s:want() == "ready" then
    s:quit()
    restart_phase(self)
    pump(self)
  end
  close_socket(self)
end

--- Sends one message (see smtpkit.client's send: the same msg and result).
-- msg: from, to, cc, bcc (a string or a list; cc and bcc are envelope only,
-- never written into the message), body (a string, a file handle or an
-- iterator function returning chunks then nil), headers ({Name = value} or
-- a list of {name, value}: then body is the text after the header block),
-- smtpapi (a table, JSON text or builder: validated and encoded as the
-- X-SMTPAPI header before anything is sent), body_8bit; or a composed
-- message (smtpkit.message: :envelope(), :chunks(), eightbit).
-- @treturn table result `{ ok, outcome, reason, action, retry, explanation,
-- queue_id, reply, maybe_delivered, accepted, recipients = {...} }` (ok =
-- false when the server refused the message; with maybe_delivered, the
-- error is result.error), or nil, err when the message was not handed over.
function Client:send(msg)
  local env, source = prepare(msg)
  if not env then return nil, source end
  return self:_send(env, source)
end

function Client:_send(env, source)
  if not self.closed and self.session and retire(self) then quit(self) end
  if self.closed or not self.session or self.session:want() ~= "ready" then
    local ok, err = self:_open()
    if not ok then return nil, err end
  end
  -- The connection had waited since its last use (pooled, or an earlier
  -- message on it), so the server may have dropped it meanwhile: a failure
  -- before MAIL was answered (EOF or 421 to the RSET or MAIL) sends the
  -- message on another connection - the next pooled one may be stale too,
  -- so up to pool_size + 1 of them, then a new one, whose failure stands.
  local res, err, resendable
  for _ = 1, (self.opts.pool_name and self.opts.pool_size + 2 or 2) do
    self.idle = self.reused > 0 or self.messages > 0
    res, err, resendable = transact(self, env, source)
    if not resendable then return res, err end
    if self.trace then self.trace("info", "[connection lost before the message: reconnecting]") end
    local ok, oerr = self:_open()
    if not ok then return nil, oerr end
  end
  return transact(self, env, source)
end

-- One run on the open connection: items[pos..last] ({envelope, body source}), each begun
-- behind the previous one's end of data (the engine's overlap) when the
-- server offers PIPELINING, so its MAIL, RCPT and DATA go in the same write.
-- report(k, res, err, resendable) once for each message begun or refused at
-- begin. Returns the index of the last message handled, and the session's
-- error when the connection failed (it is closed then; messages after the
-- index returned were never begun).
local function run_batch(self, items, pos, last, report)
  local s = self.session
  local k, cur, prev = pos, nil, nil
  -- prev's result is final once its end-of-data reply came (by the time the
  -- message behind it had its 354), or once the session failed
  local function take_prev(failed)
    if not prev then return end
    local r = s:result_prev()
    if failed or (r and r.complete) then
      report(prev, r, r and r.maybe_delivered and failed or nil, false)
      prev = nil
    end
  end
  while pump(self) == "ready" do
    take_prev(nil)
    if k > last then
      if not cur then break end
      local r = s:result()
      if r.complete then
        report(cur, r, nil, false)
        cur = nil
        break
      end
      s:overlap(false)   -- the last end-of-data reply is awaited
      restart_phase(self)
    else
      local env = items[k][1]
      local said = env.body_8bit
      if said == nil then env.body_8bit = s:capabilities()["8bitmime"] == true end   -- as transact
      s:overlap(true)
      local ok, err = s:begin(env)
      env.body_8bit = said
      if ok then
        prev, cur = cur, k
        k = k + 1
        self.messages = self.messages + 1
        s:overlap(k <= last)
        restart_phase(self)
        send_body(self, items[cur][2])
        take_prev(nil)
      elseif s:want() == "failed" then
        break
      else
        report(k, nil, err, false)   -- validation: nothing of it was sent
        k = k + 1
      end
    end
  end
  if s:want() ~= "ready" then
    local e = s:error() or new_error("protocol", "the session failed")
    take_prev(e)
    if cur then report(cur, s:result(), e, s:resendable()) end
    close_socket(self)
    return k - 1, e
  end
  return k - 1
end

--- Sends many messages, reconnecting when needed (see smtpkit.client's
-- send_many): each message's MAIL, RCPT and DATA go in the same write as the
-- previous message's end of data when the server offers PIPELINING.
-- @tparam table msgs a list of messages, as for `send`
-- @treturn table results: `results[i]` is the result of `msgs[i]` (as from
--   `send`), or false when it could not be handed over
-- @treturn table errs: `errs[i]` is why `results[i]` is false, else nil
function Client:send_many(msgs)
  local o = self.opts
  return batch.run(msgs, {
    prepare = prepare,
    ready = function()
      if not self.closed and self.session and retire(self) then quit(self) end
      local fresh = false
      if self.closed or not self.session or self.session:want() ~= "ready" then
        local ok, err = self:_open()
        if not ok then return nil, err end
        fresh = self.reused == 0
      end
      return self.reused > 0 or self.messages > 0, fresh, o.max_messages - self.reused - self.messages
    end,
    send = function(items, pos, last)
      local got = {}
      local done, cerr = run_batch(self, items, pos, last, function(k, res, err, resendable)
        got[k] = { res = res, err = err, resendable = resendable }
      end)
      return got, done, cerr
    end,
    unsend = function() self.messages = self.messages - 1 end,
    -- the next connection may be a stale pooled one too: as send, up to
    -- pool_size + 1 of them
    resends = o.pool_name and o.pool_size + 1 or 1,
  })
end

--- How many times this connection had been taken from the pool (0: new).
function Client:reused_times()
  return self.reused
end

--- Facts about the open connection: `{peer=, tls=, reused=, messages=,
-- auth=, capabilities={...}}`, or nil when none is open.
function Client:info()
  local s = self.session
  if self.closed or not s then return nil end
  return { peer = self.opts.host .. ":" .. self.opts.port, tls = s:tls(), reused = self.reused,
    messages = self.messages, auth = s:auth_mechanism(), capabilities = s:capabilities() }
end

--- Whether the channel is TLS.
function Client:tls()
  return self.session ~= nil and self.session:tls() or false
end

--- Ends the use of this connection: back to the pool when it is idle and
-- healthy (and has sent fewer than max_messages), else QUIT and close.
function Client:close()
  if self.closed or not self.sock then
    self.closed = true
    return true
  end
  local s, o = self.session, self.opts
  if o.pool_name and s:want() == "ready" and not retire(self) then
    local ok = self.sock:setkeepalive(o.keepalive_timeout * 1000, o.pool_size)
    if ok then
      self.sock = nil
      self.closed = true
      return true
    end
  end
  quit(self)
  return true
end

--- Connects, sends one message and closes (the connection goes back to the
-- pool). Returns the result, or nil, err.
function M.send(opts, msg)
  local env, source = prepare(msg)   -- an invalid message does not even connect
  if not env then return nil, source end
  local c, err = M.connect(opts)
  if not c then return nil, err end
  local res, serr = c:_send(env, source)
  c:close()
  return res, serr
end

return M
