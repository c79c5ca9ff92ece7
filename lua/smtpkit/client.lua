--- smtpkit.client: sending mail from plain Lua over the C transport
-- (`smtpkit.net`: sockets with timeouts, OpenSSL). `smtpkit.connect` and
-- `smtpkit.send` are this module's `connect` and `send`.
--
--     local c, err = smtpkit.connect{ host = "smtp.example.com", port = 587,
--       username = "u", password = "p" }
--     local r, err = c:send{ from = "a@example.com", to = "b@example.org",
--       body = "Subject: hi\r\n\r\nHello\r\n" }
--     c:close()
--
-- Errors are `nil, err` (err from smtpkit.error: `kind`, `message`,
-- `tostring(err)`); wrong argument types raise.
-- @module smtpkit.client
local E = require "smtpkit.error"
local envelope = require "smtpkit.envelope"
local batch = require "smtpkit.batch"

local M = {}

local net   -- smtpkit.net, loaded on first connect (it links OpenSSL)

local Client = {}
Client.__index = Client

local function wrap(err)
  if err == nil or E.is(err) then return err end
  return setmetatable(err, E.metatable)
end

local function check(v, types, what)
  envelope.check(v, types, what, 3)
end


-- TLS configurations (an SSL_CTX with the trust store loaded, and the last
-- session of its server) are shared by the clients that use the same options
-- towards the same host and port, while any of them lives: loading the system
-- store costs about 1 MB and a few ms, and a shared one resumes sessions.
local tls_cache = setmetatable({}, { __mode = "v" })

local function build_tls_client(opts, port)
  if opts.verify ~= nil and type(opts.verify) ~= "boolean" then
    error("option 'verify' must be a boolean", 3)
  end
  local key = table.concat({ tostring(opts.cafile), tostring(opts.capath), tostring(opts.system_trust),
    tostring(opts.verify), tostring(opts.client_cert), tostring(opts.client_key), tostring(opts.tls_min),
    opts.host, tostring(port) }, "\0")
  if tls_cache[key] then return tls_cache[key] end
  local tlsc, err = net.tls_client {
    cafile = opts.cafile, capath = opts.capath,
    system_trust = opts.system_trust,
    verify = opts.verify ~= false,
    client_cert = opts.client_cert, client_key = opts.client_key,
    tls_min = opts.tls_min,
  }
  if not tlsc then return nil, wrap(err) end
  tls_cache[key] = tlsc
  return tlsc
end

-- The user's trace gets one line ("C: ...", "S: ...", "* ...") and the direction.
local function trace_fn(user)
  if user == nil then return nil end
  check(user, "function", "option 'trace'")
  local prefix = { send = "C: ", recv = "S: ", info = "* " }
  return function(direction, line)
    user(prefix[direction] .. line, direction)
  end
end

--- Opens a connection and returns a client.
-- @tparam table opts
--   `host` (required), `port` (default 587; 465 means implicit TLS),
--   `tls` ("starttls" default, "implicit" default for port 465, "none",
--   "opportunistic"), `username`, `password` or `xoauth2` (a token),
--   `auth_mechanism` ("PLAIN", "LOGIN", "XOAUTH2"), `helo`,
--   `timeouts` = {connect=, greeting=, command=, data=} in seconds (defaults:
--   RFC 5321's, 30 s for connect), `cafile`, `capath` (ADDED to the system
--   trust store), `system_trust` (false: trust only cafile/capath), `verify`
--   (false turns certificate checks off, traced as insecure), `client_cert`,
--   `client_key`, `tls_min` ("1.2" default, "1.3"), `trace` = function(line,
--   direction) (credentials redacted), `max_messages` per connection,
--   `pipelining` (default true), `allow_plaintext_auth` (default false).
-- @treturn client|nil
-- @treturn err
function M.connect(opts)
  check(opts, "table", "smtpkit.connect options")
  check(opts.host, "string", "option 'host'")
  if opts.port ~= nil then check(opts.port, "number", "option 'port'") end
  if opts.max_messages ~= nil then check(opts.max_messages, "number", "option 'max_messages'") end
  if opts.timeouts ~= nil then
    check(opts.timeouts, "table", "option 'timeouts'")
    for k, v in pairs(opts.timeouts) do
      -- 0 or less would mean no deadline at all: a mistake, not a choice
      if type(v) ~= "number" or v <= 0 or v ~= v then
        error(("option 'timeouts.%s' must be a number of seconds > 0, not %s"):format(
          tostring(k), tostring(v)), 2)
      end
    end
  end
  net = net or require "smtpkit.net"
  local port = opts.port or 587
  local tls = opts.tls or (port == 465 and "implicit" or "starttls")
  local self = setmetatable({
    opts = opts,
    copts = {
      host = opts.host, port = port, tls = tls, helo = opts.helo,
      username = opts.username, password = opts.password, xoauth2 = opts.xoauth2,
      auth_mechanism = opts.auth_mechanism,
      allow_plaintext_auth = opts.allow_plaintext_auth,
      pipelining = opts.pipelining,
      timeouts = opts.timeouts and {
        connect = opts.timeouts.connect or 30, greeting = opts.timeouts.greeting,
        command = opts.timeouts.command, data = opts.timeouts.data,
      } or { connect = 30 },
      trace = trace_fn(opts.trace),
    },
    max_messages = opts.max_messages,
    sent = 0,          -- messages on the current connection
    connections = 0,   -- connections opened so far
  }, Client)
  if tls ~= "none" then
    local tlsc, err = build_tls_client(opts, port)
    if not tlsc then return nil, err end
    self.tlsc = tlsc
  end
  local ok, err = self:_open()
  if not ok then return nil, err end
  return self
end

function Client:_open()
  local conn, err = net.connect(self.copts, self.tlsc)
  if not conn then return nil, wrap(err) end
  self.conn = conn
  self.sent = 0
  self.opened = os.time()
  self.connections = self.connections + 1
  return true
end

function Client:_drop()
  if self.conn then
    self.conn:close()
    self.conn = nil
  end
end

--- Sends one message.
-- @tparam table msg `from`, `to` (string or list), `cc`, `bcc` (envelope
--   only: never written into the message), `body` (a string, a file handle or
--   an iterator function returning chunks then nil), `headers` ({Name = value}
--   or a list of {name, value}: then `body` is the text after the header
--   block), `smtpapi` (a table, JSON text or builder, validated and encoded as
--   the X-SMTPAPI header before anything is sent), `body_8bit`. Or a composed
--   message from smtpkit.message.
-- @treturn table result `{ok=, outcome=, reason=, action=, retry=,
--   explanation=, queue_id=, reply=, maybe_delivered=, accepted=,
--   recipients = {{address=, ok=, reply=, outcome=, reason=, action=, retry=,
--   pass=, queue_id=}, ...}}` (queue_id: the one of the transaction that
--   carried that recipient: a "too many recipients" split makes several)
--   (also when the server refused the message: ok = false); or nil, err when
--   the message could not be handed over (connection, TLS, validation...).
--   A result whose end-of-data reply never came has outcome "unknown" and
--   maybe_delivered = true, and carries the error as `result.error` (so does
--   a transaction the server ended with a reply such as 421). Other failures
--   are nil, err, with `err.result` the partial result when one began.
function Client:send(msg)
  local env, body = envelope.prepare(msg)
  if not env then return nil, body end
  return self:_send(env, body)
end

-- A connection for the next message: the open one (retired after
-- max_messages) or a new one. Returns idle, fresh; or nil, err. idle: it
-- waited since its last message or since it opened, so a 421 or EOF before
-- MAIL is the server closing it, and the message may go again on another
-- (on a connection opened a moment ago that is a refusal: not idle).
function Client:_ready()
  if self.conn and self.max_messages and self.sent >= self.max_messages then
    self.conn:quit()
    self.conn = nil
  end
  if not self.conn or not self.conn:ready() then
    self:_drop()
    local ok, err = self:_open()
    if not ok then return nil, err end
    return false, true
  end
  return self.sent > 0 or os.time() - self.opened >= 2, false
end

function Client:_send(env, body)
  local idle, rerr = self:_ready()
  if idle == nil then return nil, rerr end
  local res, err, partial = self.conn:send(env, body)
  if not res and err and err.resendable and idle then
    -- the server closed the idle connection (EOF or 421 before MAIL was
    -- answered): nothing of this message reached it, so send it again once
    self:_drop()
    local ok, oerr = self:_open()
    if not ok then return nil, oerr end
    res, err, partial = self.conn:send(env, body)
  end
  if res then
    self.sent = self.sent + 1
    return res
  end
  if err.kind ~= "validation" then self:_drop() end
  return E.outcome(partial, err)
end

--- Sends many messages over one connection (reconnecting when needed), each
-- message's MAIL, RCPT and DATA pipelined in the same write as the previous
-- message's end of data when the server offers PIPELINING: one round trip
-- per message instead of two. Each message gets what `send` would return.
-- @tparam table msgs a list of messages, as for `send`
-- @treturn table results: `results[i]` is the result of `msgs[i]` (as from
--   `send`), or false when it could not be handed over
-- @treturn table errs: `errs[i]` is why `results[i]` is false (as from
--   `send`: err.result holds what is known), else nil
function Client:send_many(msgs)
  local envs, bodies
  return batch.run(msgs, {
    prepare = envelope.prepare,
    ready = function()
      local idle, fresh = self:_ready()
      if idle == nil then return nil, fresh end
      return idle, fresh, self.max_messages and self.max_messages - self.sent or nil
    end,
    send = function(items, pos, last)
      if not envs then
        envs, bodies = {}, {}
        for k, it in ipairs(items) do envs[k], bodies[k] = it[1], it[2] end
      end
      local res, errl, done, cerr = self.conn:send_many(envs, bodies, pos, last)
      local got = {}
      for k = pos, done do
        local e = errl[k]
        got[k] = { res = res[k] or nil, err = e, resendable = e ~= nil and e.resendable }
        if e == nil then self.sent = self.sent + 1 end
      end
      if cerr or not self.conn:ready() then self:_drop() end
      return got, done, wrap(cerr)
    end,
  })
end

--- Facts about the open connection: `{peer=, tls=, tls_version=, tls_cipher=,
-- tls_resumed=, auth=, capabilities={...}}`, or nil when none is open.
function Client:info()
  return self.conn and self.conn:info() or nil
end

--- Sends QUIT and closes the connection (the client may send again: it
-- then reconnects).
function Client:close()
  if self.conn then
    self.conn:quit()
    self.conn = nil
  end
  return true
end

--- Connects, sends one message, closes: `smtpkit.send(opts, msg)`.
-- @return what client:send returns
function M.send(opts, msg)
  -- the message is checked (addresses aside: the engine checks those before
  -- MAIL) before any connection is made
  local env, body = envelope.prepare(msg)
  if not env then return nil, body end
  local c, err = M.connect(opts)
  if not c then return nil, err end
  local res, serr = c:_send(env, body)
  c:close()
  return res, serr
end

return M
