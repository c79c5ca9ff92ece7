--- A durable outbox: a message handed over is never silently lost.
--
--     local outbox = require "smtpkit.outbox"
--     local ob = assert(outbox.open("/var/spool/myapp-outbox"))
--     local id = assert(ob:submit{ from = "me@example.com", to = "you@example.net",
--       body = "Subject: hi\r\n\r\nhello\r\n" })          -- on disk when it returns
--     local summary = ob:run{ connect = { host = "smtp.example.com", port = 587,
--       username = "apikey", password = key }, policy = smtpkit.retry.policy{} }
--
-- A message's life: `queued` -> `sending` -> `delivered` | `deferred` |
-- `bounced` | `unknown`; `deferred` goes back to `sending` when it is due.
-- `sending` is written durably before the message is handed to the server; a
-- record found in `sending` by the next run belongs to a process that died
-- during the send, so it is flagged `maybe_delivered` and not resent unless
-- the policy allows it (`retry_maybe_delivered`). A message the server
-- accepted is therefore never sent twice.
--
-- The store (default: smtpkit.outbox_dir, a directory) is replaceable: see
-- docs/outbox-store.md for its interface.
-- @module smtpkit.outbox
local retry = require "smtpkit.retry"
local dirstore = require "smtpkit.outbox_dir"
local E = require "smtpkit.error"

local M = {}
local err = dirstore.err

local Outbox = {}
Outbox.__index = Outbox

local STATES = { queued = true, sending = true, deferred = true, delivered = true, bounced = true,
  unknown = true }
M.states = STATES

local HISTORY_CAP = 100
local STREAM_ABOVE = 1024 * 1024   -- bodies larger than this are streamed from the store

--- Opens an outbox.
-- @tparam string|table dir a directory (created if missing), or a store
--   object implementing the store interface
-- @tparam[opt] table opts `now` (clock function, seconds; default `os.time`),
--   `store` (a store object, instead of a directory)
-- @treturn table the outbox, or nil, err
function M.open(dir, opts)
  opts = opts or {}
  local store = opts.store
  if type(dir) == "table" then store = dir end
  if not store then
    if type(dir) ~= "string" then error("outbox.open: directory path or store expected", 2) end
    local e
    store, e = dirstore.open(dir)
    if not store then return nil, e end
  end
  local now = opts.now or os.time
  if type(now) ~= "function" then error("outbox.open: now must be a function", 2) end
  return setmetatable({ store = store, now = now, dir = type(dir) == "string" and dir or nil }, Outbox)
end

-- -------------------------------------------------------------------------
-- Submitting

-- The bare address of "Name <a@b>" or "a@b".
local function bare(a)
  return (a:match("<([^<>]*)>%s*$") or a):gsub("^%s+", ""):gsub("%s+$", "")
end

local function addresses(v, field)
  if v == nil then return {} end
  if type(v) == "string" then v = { v } end
  if type(v) ~= "table" then
    return nil, err("validation", ("outbox: %s must be a string or a list of strings"):format(field))
  end
  local out = {}
  for i, a in ipairs(v) do
    if type(a) ~= "string" then
      return nil, err("validation", ("outbox: %s[%d] must be a string"):format(field, i))
    end
    local b = bare(a)
    if a:find("[%z\1-\31\127]") or b == "" or b:find("[%z\1-\31\127<>%s]") or not b:find("@") then
      return nil, err("validation", ("outbox: %s[%d] is not a valid address: %s"):format(field, i,
        E.quote(a)))
    end
    out[#out + 1] = b
  end
  return out
end

-- A plain copy of the storable fields of `t` (no functions, no userdata).
local function plain(t, path, depth)
  if depth > 32 then return nil, path .. " is nested too deep" end
  local out = {}
  for k, v in pairs(t) do
    local tv = type(v)
    if tv == "table" then
      local c, e = plain(v, path .. "." .. tostring(k), depth + 1)
      if not c then return nil, e end
      out[k] = c
    elseif tv == "string" or tv == "number" or tv == "boolean" then
      out[k] = v
    else
      return nil, ("%s.%s is a %s: the outbox stores only data"):format(path, tostring(k), tv)
    end
  end
  return out
end

-- The message's bytes as a string or a chunk function; `failed` is a table
-- that receives the error of an iterator that returned nil, err.
local function body_source(body, failed)
  if type(body) == "string" then return body end
  if io.type(body) == "file" then
    return function()
      local c, e = body:read(65536)
      if c == nil and e then failed.err = err("store", "outbox: cannot read the body: " .. tostring(e)) end
      return c, e
    end
  end
  if type(body) == "function" then
    return function()
      local c, e = body()
      if c == nil and e ~= nil then
        failed.err = type(e) == "table" and e or err("validation", "outbox: body: " .. tostring(e))
        return nil, e
      end
      if c ~= nil and type(c) ~= "string" then
        failed.err = err("validation", "outbox: body iterator returned a " .. type(c))
        return nil, failed.err
      end
      return c
    end
  end
  return nil
end

-- The X-SMTPAPI value as header text: encoded (and so validated) by
-- smtpkit.smtpapi; or nil, err (kind validation).
local function smtpapi_text(v)
  local ok, smtpapi = pcall(require, "smtpkit.smtpapi")
  if not ok or type(smtpapi) ~= "table" or type(smtpapi.encode) ~= "function" then
    if type(v) == "string" then return v end
    return nil, err("validation", "outbox: smtpapi needs smtpkit.smtpapi to encode a table")
  end
  local text, problems = smtpapi.encode(v)
  if not text then
    local first = type(problems) == "table" and problems[1]
    return nil, err("validation", "outbox: invalid X-SMTPAPI header"
      .. (type(first) == "table" and first.message and (": " .. tostring(first.message)) or ""),
      { problems = problems })
  end
  return text
end

--- Stores a message; returns its id only once it is safely on disk.
-- @tparam table msg what `client:send` accepts: `from`, `to`, `cc`, `bcc`
--   (strings or lists), `body` (a string, an open file or an iterator
--   function, read now), `headers`, `smtpapi` (table, JSON text or builder);
--   or a message composed with `smtpkit.message` (its rendered bytes are
--   stored). `allow_suppressed = true` sends to suppressed addresses anyway.
-- @treturn string the id, or nil, err (kind `validation`, `suppressed` with
--   `address`, `reason`, `suppressed_at`, or `store`)
function Outbox:submit(msg)
  if type(msg) ~= "table" then error("outbox:submit: message table expected", 2) end
  local now = self.now()
  local rec = { state = "queued", created = now, due = now, attempts = 0, history = {},
    maybe_delivered = false }
  local fields, body
  if type(msg.envelope) == "function"
    and (type(msg.chunks) == "function" or type(msg.render) == "function") then
    -- a composed message (smtpkit.message): its bytes, streamed, and its envelope
    local env = msg:envelope()
    if type(env) ~= "table" then error("outbox:submit: message:envelope() must return a table", 2) end
    fields = { from = env.from, to = env.to, body_8bit = msg.eightbit and true or nil }
    if type(msg.chunks) == "function" then body = msg:chunks() else body = msg:render() end
    rec.composed = true
  else
    local copy = {}
    for k, v in pairs(msg) do
      if k ~= "body" and k ~= "allow_suppressed" and k ~= "smtpapi" then copy[k] = v end
    end
    if msg.smtpapi ~= nil then
      -- validated and encoded now: a bad header is refused before it is queued
      local text, problems = smtpapi_text(msg.smtpapi)
      if not text then return nil, problems end
      copy.smtpapi = text
    end
    local e
    fields, e = plain(copy, "msg", 0)
    if not fields then return nil, err("validation", "outbox: " .. e) end
    body = msg.body
  end
  local failed = {}
  local src = body_source(body, failed)
  if not src then
    return nil, err("validation", "outbox: body must be a string, an open file or an iterator function")
  end
  local from = fields.from
  if type(from) ~= "string" or from:find("[%z\1-\31\127]") or (bare(from) ~= "" and not bare(from):find("@"))
    or bare(from):find("[%z\1-\31\127<>%s]") then
    return nil, err("validation", "outbox: from must be an address (\"\" only as <> in from = \"<>\")")
  end
  local rcpts, seen = {}, {}
  for _, f in ipairs({ "to", "cc", "bcc" }) do
    local list, e = addresses(fields[f], f)
    if not list then return nil, e end
    for _, a in ipairs(list) do
      if not seen[a:lower()] then
        seen[a:lower()] = true
        rcpts[#rcpts + 1] = { address = a, status = "pending" }
      end
    end
  end
  if #rcpts == 0 then return nil, err("validation", "outbox: no recipient (to, cc or bcc)") end
  if not msg.allow_suppressed then
    for _, r in ipairs(rcpts) do
      local info = self.store:suppressed(r.address)
      if info then
        return nil, err("suppressed",
          ("outbox: %s is suppressed: %s%s (set allow_suppressed = true to send anyway)"):format(
            r.address, info.reason or "remove_address",
            info.text and (": " .. tostring(info.code or "") .. " " .. info.text) or ""),
          { address = r.address, reason = info.reason, code = info.code, text = info.text,
            suppressed_at = info.at })
      end
    end
  end
  rec.from = bare(from)
  rec.rcpts = rcpts
  rec.msg = fields
  rec.id = self.store:new_id(now)
  local ok, e = self.store:put(rec, src)
  if not ok then return nil, failed.err or e end
  return rec.id
end

-- -------------------------------------------------------------------------
-- Reading

--- The record of message `id` (state, rcpts, history, ...), or nil, err.
function Outbox:get(id)
  return self.store:get(id)
end

--- The stored bytes of message `id`.
function Outbox:body(id)
  return self.store:body(id)
end

--- Records in `state` (`queued`, `sending`, `deferred`, `delivered`,
-- `bounced`, `unknown`, or `maybe_delivered` for every flagged record; nil
-- for all), oldest first.
function Outbox:list(state)
  if state == "maybe_delivered" then
    local all, e = self.store:list()
    if not all then return nil, e end
    local out = {}
    for _, r in ipairs(all) do if r.maybe_delivered then out[#out + 1] = r end end
    return out
  end
  if state ~= nil and not STATES[state] then error("outbox:list: unknown state " .. tostring(state), 2) end
  return self.store:list(state)
end

--- Message files the store cannot read as records (damaged outside the
-- outbox), as a list of `{ id =, why = }`; `list` and `run` skip them (and
-- `run`'s summary counts them in `damaged`). Stores without the method
-- return an empty list.
function Outbox:damaged()
  if type(self.store.damaged) ~= "function" then return {} end
  return self.store:damaged()
end

--- Suppression list: add, look up, remove, list.
function Outbox:suppress(address, info)
  info = info or {}
  info.at = info.at or self.now()
  return self.store:suppress(bare(address), info)
end
function Outbox:suppressed(address) return self.store:suppressed(bare(address)) end
function Outbox:unsuppress(address) return self.store:unsuppress(bare(address)) end
function Outbox:list_suppressed() return self.store:list_suppressed() end

--- Puts a message that ended `unknown` (maybe delivered), `bounced` or
-- `deferred` back in the queue, due now: an operator's decision (it may
-- deliver a second copy of a maybe-delivered message).
function Outbox:requeue(id)
  local lock, le = self.store:lock()
  if not lock then return nil, le end
  local ok, res, e2 = pcall(self._requeue_locked, self, id)
  lock:unlock()
  if not ok then error(res, 0) end
  return res, e2
end

function Outbox:_requeue_locked(id)
  local rec, e = self.store:get(id)
  if not rec then return nil, e end
  if rec.state == "sending" or rec.state == "queued" then
    return nil, err("conflict", "outbox: message " .. id .. " is " .. rec.state)
  end
  local old = rec.state
  rec.state, rec.due, rec.retry = "queued", self.now(), nil
  for _, r in ipairs(rec.rcpts) do
    if r.status ~= "delivered" then r.status = "pending" end
  end
  return self.store:update(rec, old)
end

--- Removes finished records (`delivered`, `bounced`, `unknown`; or the
-- states listed in `states`) last updated before `before` (seconds, the
-- outbox's clock). Returns how many were removed. The directory store scans
-- every record on each run, so a busy outbox should purge what it no longer
-- needs.
function Outbox:purge(before, states)
  if type(before) ~= "number" then error("outbox:purge: a time (number) expected", 2) end
  local wanted = {}
  for _, st in ipairs(states or { "delivered", "bounced", "unknown" }) do
    if st == "queued" or st == "sending" or st == "deferred" or not STATES[st] then
      error("outbox:purge: cannot purge state " .. tostring(st), 2)
    end
    wanted[st] = true
  end
  local lock, le = self.store:lock()
  if not lock then return nil, le end
  local all, e = self.store:list()
  local n = 0
  for _, rec in ipairs(all or {}) do
    if wanted[rec.state] and (rec.updated or rec.created or 0) < before then
      if self.store:remove(rec.id) then n = n + 1 end
    end
  end
  lock:unlock()
  if not all then return nil, e end
  return n
end

-- -------------------------------------------------------------------------
-- Running

local function push_history(rec, h)
  local hist = rec.history
  hist[#hist + 1] = h
  if #hist > HISTORY_CAP then table.remove(hist, 2) end  -- keep the first attempt
end

local function compact_reply(r)
  if type(r) ~= "table" then return nil end
  return { code = r.code, enhanced = r.enhanced, text = r.text }
end

-- Final state when no recipient is pending.
local function final_state(rec)
  local n = { delivered = 0, failed = 0, unknown = 0, pending = 0 }
  for _, r in ipairs(rec.rcpts) do n[r.status] = (n[r.status] or 0) + 1 end
  if n.pending > 0 then return "deferred" end
  if n.delivered > 0 then return "delivered" end
  if n.unknown > 0 then return "unknown" end
  return "bounced"
end

-- Applies a decision to the record.
local function apply(self, rec, d, st, r, now)
  rec.updated = now
  rec.retry = st
  rec.attempts = st.attempts
  rec.why = d.why
  local per = {}
  for _, x in ipairs(type(r.recipients) == "table" and r.recipients or {}) do
    if x.address then per[x.address] = x end
  end
  local h = { at = now, outcome = d.outcome, reason = d.reason, action = d.action, why = d.why,
    kind = r.kind, message = r.kind and r.message or nil,
    reply = compact_reply(r.reply) or compact_reply(r.classification),
    queue_id = r.queue_id, maybe_delivered = d.maybe_delivered or nil, recipients = {} }
  for _, rc in ipairs(rec.rcpts) do
    local v = d.recipients[rc.address]
    if v then
      rc.status = (v == "retry" and "pending") or v
      local x = per[rc.address]
      rc.reply = x and compact_reply(x.reply) or rc.reply
      h.recipients[rc.address] = v
      if v == "unknown" then rec.maybe_delivered = true end
    end
  end
  if d.maybe_delivered then rec.maybe_delivered = true end
  push_history(rec, h)
  local state = final_state(rec)
  rec.state = state
  if state == "deferred" then
    rec.due = d.at or now
  else
    rec.due = nil
  end
  for _, s in ipairs(d.suppress or {}) do
    self.store:suppress(s.address, { reason = s.reason, code = s.code, text = s.text, at = now, id = rec.id })
  end
end

--- Records an attempt made outside `run` on a message just submitted (or
-- waiting): e.g. a direct `client:send` whose recipients were deferred, then
-- handed to the outbox. The policy's decision is applied as for an attempt
-- of `run` (recipients delivered or refused are done, the others wait with
-- the backoff; rate advice slows their domains down), and written.
-- @tparam string id the message's id (state `queued` or `deferred`)
-- @tparam table result what `client:send` returned: the result table, or the
--   error table of `nil, err`
-- @tparam[opt] table o `policy` (from `smtpkit.retry.policy`; default: the
--   defaults with the outbox's clock), `rcpts` (the recipients of that
--   attempt, used when `result` has no per-recipient entries; default: the
--   message's pending recipients)
-- @treturn table the decision (see `smtpkit.retry`), and the updated record;
--   or nil, err (kind `not_found`, `conflict` when the message is not
--   waiting, `locked`, `store`)
function Outbox:record(id, result, o)
  o = o or {}
  if type(result) ~= "table" then error("outbox:record: result table expected", 2) end
  local policy = o.policy or retry.policy{ now = self.now }
  local lock, le = self.store:lock()
  if not lock then return nil, le end
  local ok, d, rec = pcall(function()
    local r, e = self.store:get(id)
    if not r then return nil, e end
    if r.state ~= "queued" and r.state ~= "deferred" then
      return nil, err("conflict", "outbox: message " .. id .. " is " .. tostring(r.state))
    end
    if next(policy:domains()) == nil then
      local saved = self.store:get_state("domains")
      if type(saved) == "table" then policy:load_domains(saved) end
    end
    local rcpts = o.rcpts
    if not rcpts then
      rcpts = {}
      for _, rc in ipairs(r.rcpts) do
        if rc.status == "pending" then rcpts[#rcpts + 1] = rc.address end
      end
    end
    local t = policy.now()
    for _, a in ipairs(rcpts) do policy:sent(retry.domain_of(a), t) end
    local dec, st = policy:decide(result, r.retry, rcpts)
    local prev = r.state
    apply(self, r, dec, st, result, policy.now())
    local uok, ue = self.store:update(r, prev)
    if not uok then return nil, ue end
    self.store:put_state("domains", policy:domains())
    return dec, r
  end)
  lock:unlock()
  if not ok then error(d, 0) end
  return d, rec
end

-- Records left in `sending` by a process that died mid-send.
local function recover(self, policy, now, summary)
  local stuck, e = self.store:list_stale(now)
  if not stuck then return nil, e end
  for _, rec in ipairs(stuck) do
    rec.maybe_delivered = true
    local h = { at = now, outcome = "unknown", reason = "network_error",
      why = "interrupted: the sending process stopped after handing the message over; "
        .. "the server may have it", maybe_delivered = true, recipients = {} }
    for _, rc in ipairs(rec.rcpts) do
      if rc.status == "pending" and rc.sending then
        rc.status = policy.retry_maybe_delivered and "pending" or "unknown"
        h.recipients[rc.address] = policy.retry_maybe_delivered and "retry" or "unknown"
      end
      rc.sending = nil
    end
    push_history(rec, h)
    rec.why, rec.updated = h.why, now
    rec.state = final_state(rec)
    rec.due = rec.state == "deferred" and now or nil
    local ok, ue = self.store:update(rec, "sending")
    if not ok then return nil, ue end
    summary.recovered = summary.recovered + 1
  end
  return true
end

local SESSION_ERRORS = { dns = true, connect = true, timeout = true, tls = true, tls_required = true,
  auth = true, protocol = true, network = true, server = true }

--- Sends what is due, over reused connections, applies the policy and
-- records each result. One runner per store at a time.
-- @tparam table o `connect` (options for `smtpkit.connect`), `policy` (from
--   `smtpkit.retry.policy`; default: a policy with the defaults and the
--   outbox's clock), `limit` (most messages to attempt; default all due),
--   `transport` (a module with `connect(opts)`, e.g. `require "smtpkit.resty"`;
--   default `require "smtpkit"`), `connector` (a function(opts) returning a
--   client, instead of `transport`), `on_result` (function(rec, decision)
--   called after each recorded attempt), `now` (true: an operator's forced
--   retry: every `queued` or `deferred` message is due now, whatever its
--   `due` time and its domains' pause or spacing; `max_age` still applies)
-- @treturn table summary: `attempted`, `delivered`, `deferred`, `bounced`,
--   `unknown`, `skipped` (due but their domain is paused or slowed),
--   `expired`, `recovered`, `damaged` (message files that are not readable
--   records, skipped: see `damaged()`), `error` (the connection error that stopped the
--   run, if any); or nil, err (kind `locked` when another runner holds the
--   outbox, or `store`)
function Outbox:run(o)
  o = o or {}
  if type(o) ~= "table" then error("outbox:run: options table expected", 2) end
  local policy = o.policy or retry.policy{ now = self.now }
  local lock, le = self.store:lock()
  if not lock then return nil, le end
  local ok, res, e2 = pcall(self._run_locked, self, o, policy)
  lock:unlock()
  if not ok then error(res, 0) end
  return res, e2
end

function Outbox:_run_locked(o, policy)
  local now = policy.now
  local summary = { attempted = 0, delivered = 0, deferred = 0, bounced = 0, unknown = 0,
    skipped = 0, expired = 0, recovered = 0 }
  if next(policy:domains()) == nil then
    local saved = self.store:get_state("domains")
    if type(saved) == "table" then policy:load_domains(saved) end
  end
  local ok, e = recover(self, policy, now(), summary)
  if not ok then return nil, e end

  local connector = o.connector
  if not connector then
    local transport = o.transport or require("smtpkit")
    connector = function(opts) return transport.connect(opts) end
  end
  local limit = o.limit or math.huge
  local due, de = self.store:list_due(o.now and math.huge or now())
  if not due then return nil, de end
  if type(self.store.last_damaged) == "table" then summary.damaged = #self.store.last_damaged end

  local client
  for _, rec in ipairs(due) do
    if summary.attempted >= limit or summary.error then break end
    local t = now()
    if rec.retry and policy:expired(rec.retry, t) then
      -- waited past max_age (a paused domain): give up without sending
      local h = { at = t, outcome = "bounced", reason = "expired", recipients = {},
        why = ("expired: not delivered within max_age (%s); last: %s"):format(
          retry.duration(policy.max_age), tostring(rec.why)) }
      for _, rc in ipairs(rec.rcpts) do
        if rc.status == "pending" then rc.status = "failed"; h.recipients[rc.address] = "failed" end
      end
      push_history(rec, h)
      local prev = rec.state
      rec.why, rec.state, rec.due, rec.updated = h.why, final_state(rec), nil, t
      local uok, ue = self.store:update(rec, prev)
      if uok then
        summary.expired = summary.expired + 1
      elseif ue.kind ~= "conflict" then
        return nil, ue
      end
    else
      -- recipients whose domain takes mail now
      local ready, wait_until = {}, nil
      for _, rc in ipairs(rec.rcpts) do
        if rc.status == "pending" then
          local dom = retry.domain_of(rc.address)
          local rok, at = policy:ready(dom, t)
          if o.now then rok = true end
          if rok then ready[#ready + 1] = rc.address
          elseif not wait_until or at < wait_until then wait_until = at end
        end
      end
      if #ready == 0 then
        summary.skipped = summary.skipped + 1
      else
        local cerr
        if not client then client, cerr = connector(o.connect or {}) end
        if not client then
          -- the route is down: record it on this message, stop the run
          cerr = cerr or err("connect", "connect failed")
          local d, st = policy:decide(cerr, rec.retry, ready)
          local prev = rec.state
          apply(self, rec, d, st, cerr, t)
          local uok, ue = self.store:update(rec, prev)
          if not uok and ue.kind ~= "conflict" then return nil, ue end
          summary.attempted = summary.attempted + 1
          summary[rec.state] = (summary[rec.state] or 0) + 1
          summary.error = cerr
          if o.on_result then o.on_result(rec, d) end
        else
          local res, serr = self:_send_one(client, rec, ready, policy, o, summary)
          if res == nil then
            if client.close then pcall(client.close, client) end
            return nil, serr
          end
          if serr and SESSION_ERRORS[serr.kind] then
            -- the connection is gone or refused: stop; the next run reconnects
            if client.close then pcall(client.close, client) end
            client = nil
            summary.error = serr
          end
        end
      end
    end
  end
  if client and client.close then pcall(client.close, client) end
  self.store:put_state("domains", policy:domains())
  return summary
end

-- One message: mark it sending (durably), send, decide, record.
function Outbox:_send_one(client, rec, ready, policy, o, summary)
  local t = policy.now()
  local prev = rec.state
  local in_batch = {}
  for _, a in ipairs(ready) do in_batch[a] = true end
  for _, rc in ipairs(rec.rcpts) do rc.sending = in_batch[rc.address] or nil end
  rec.state = "sending"
  rec.sending_since = t
  local ok, e = self.store:update(rec, prev)
  if not ok then
    -- another worker of a shared store claimed it first
    if e.kind == "conflict" then summary.skipped = summary.skipped + 1; return true end
    return nil, e
  end
  local m = {}
  for k, v in pairs(rec.msg) do m[k] = v end
  local fh
  if self.store.body_reader then
    -- large bodies stream from the record; small ones go as strings (the
    -- client then also announces SIZE)
    local be
    fh, be = self.store:body_reader(rec.id)
    if not fh then return nil, be end
    local start, size, eight = fh:seek(), 0, false
    while true do
      local c = fh:read(65536)
      if not c then break end
      size = size + #c
      if not eight and c:find("[\128-\255]") then eight = true end
    end
    fh:seek("set", start)
    if size <= STREAM_ABOVE then
      m.body = fh:read("*a") or ""
      fh:close()
      fh = nil
    else
      m.body = fh
      if m.body_8bit == nil then m.body_8bit = eight end
    end
  else
    local body, be = self.store:body(rec.id)
    if not body then return nil, be end
    m.body = body
  end
  if #ready < #rec.rcpts then
    -- only the recipients still pending and ready: the others are done
    -- (the message's own To/Cc headers, when it has them, are unchanged)
    m.to, m.cc, m.bcc = ready, nil, nil
  end
  for _, a in ipairs(ready) do policy:sent(retry.domain_of(a), t) end
  local sok, res, serr, partial = pcall(client.send, client, m)
  if fh then fh:close() end
  if not sok then
    -- client:send raised (a programming mistake: wrong argument types), so
    -- nothing was sent: put the record back as it was, then raise
    for _, rc in ipairs(rec.rcpts) do rc.sending = nil end
    rec.state, rec.sending_since = prev, nil
    self.store:update(rec, "sending")
    error(res, 0)
  end
  local r = res or serr or { kind = "network", message = "send returned nothing" }
  if not res and type(partial) == "table" and partial.maybe_delivered then
    r = partial   -- the connection broke after the end of DATA: maybe delivered
  end
  local d, st = policy:decide(r, rec.retry, ready)
  for _, rc in ipairs(rec.rcpts) do rc.sending = nil end
  rec.sending_since = nil
  apply(self, rec, d, st, r, policy.now())
  ok, e = self.store:update(rec, "sending")
  if not ok then return nil, e end
  if next(d.domains) ~= nil then self.store:put_state("domains", policy:domains()) end
  summary.attempted = summary.attempted + 1
  summary[rec.state] = (summary[rec.state] or 0) + 1
  if o.on_result then o.on_result(rec, d) end
  return true, serr
end

return M
