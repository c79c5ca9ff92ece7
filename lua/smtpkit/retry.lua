--- Retry policies driven by the classification of SMTP replies.
--
-- A policy is a pure function of send results, a clock and a random source:
-- `policy:decide(result, state)` says whether a message is retried, when, or
-- why it is given up, and returns the message's updated retry state (a plain
-- table, storable as JSON). The policy also keeps a per-domain table (slowed
-- down after rate-limit advice, paused after a block) that later decisions
-- and `policy:ready(domain)` respect; `policy:domains()` returns it as plain
-- data to save, `retry.policy{ domains = saved }` restores it.
--
-- The rules, from the seed (4xx retried for up to 72 hours, fewer messages to
-- a domain that defers, 5xx never retried, some 5xx mean "remove the address"):
--
-- * `deferred` (any 4xx), `too_many_recipients`, and errors of kind
--   `connect`, `timeout`, `dns`, `network`, `protocol` are retried with
--   exponential backoff: `min(cap, base * factor^(n-1))`, times a jitter
--   factor in `[1 - jitter, 1 + jitter)`, and at most `cap` again (the cap
--   is a hard bound on the wait between two attempts).
-- * 5xx replies to a message or a recipient are never retried. A `blocked`
--   outcome also pauses the recipient's domain (`pause`, doubling while blocks
--   repeat, up to `pause_cap`), so other mail to it waits instead of
--   hammering it.
-- * Errors that happen before the message was offered (kind `auth`, `tls`,
--   `tls_required`, or `server` with a `blocked` classification: the session
--   was refused) are not the message's fault: it is retried after a pause of
--   its domains, within `max_age`.
-- * `maybe_delivered` (no reply after the end of DATA) is retried only when
--   `retry_maybe_delivered` is true; otherwise it ends as `unknown`.
-- * Rate advice (action `reduce_rate`, codes 421/450/452, reasons
--   `rate_limited`, `too_many_connections`, `reputation`) doubles the domain's
--   minimum spacing between messages (`slow`, up to `slow_cap`); each delivery
--   to the domain halves it again until it is gone.
-- * After `max_age` seconds (72 hours) from the first attempt, a message is
--   given up (`why` says so, reason `expired`); the last retry is scheduled
--   no later than that deadline.
-- @module smtpkit.retry
local M = {}

local HOUR = 3600

M.defaults = {
  base = 300,            -- first retry delay, seconds
  factor = 2,            -- backoff multiplier per attempt
  cap = HOUR,            -- longest delay between two attempts
  jitter = 0.2,          -- fraction of the delay randomised either way
  max_age = 72 * HOUR,   -- give up this long after the first attempt
  retry_maybe_delivered = false,
  slow = 10,             -- first minimum spacing for a domain that asked to slow down
  slow_cap = 900,        -- largest spacing
  pause = 900,           -- first pause of a domain that blocked us
  pause_cap = 6 * HOUR,  -- longest pause
  history = 50,          -- at most this many entries in state.log
}

local RETRY_KINDS = { connect = true, timeout = true, dns = true, network = true, protocol = true }
local SESSION_KINDS = { auth = true, tls = true, tls_required = true }
local RATE_REASONS = { rate_limited = true, too_many_connections = true, reputation = true }
local RATE_CODES = { [421] = true, [450] = true, [452] = true }

--- The domain of an address (`"Name <a@B.example>"` gives `"b.example"`), or nil.
function M.domain_of(address)
  if type(address) ~= "string" then return nil end
  local a = address:match("<([^>]*)>") or address
  local d = a:match("@([^@%s>]+)%s*$")
  return d and d:lower() or nil
end

local Policy = {}
Policy.__index = Policy

--- Builds a policy.
-- @tparam table opts any of `M.defaults`' fields, plus `now` (a function
-- returning seconds, default `os.time`), `random` (a function returning a
-- number in [0,1), default `math.random`) and `domains` (a table saved from
-- `policy:domains()`).
-- @treturn table the policy
function M.policy(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("retry.policy: opts must be a table", 2) end
  local p = setmetatable({}, Policy)
  for k, v in pairs(M.defaults) do
    local o = opts[k]
    if o ~= nil then
      if type(o) ~= type(v) then
        error(("retry.policy: %s must be a %s"):format(k, type(v)), 2)
      end
      p[k] = o
    else
      p[k] = v
    end
  end
  for k in pairs(opts) do
    if M.defaults[k] == nil and k ~= "now" and k ~= "random" and k ~= "domains" then
      error("retry.policy: unknown option " .. tostring(k), 2)
    end
  end
  for k, v in pairs(M.defaults) do
    local o = p[k]
    local may_be_huge = k == "max_age" or k == "cap" or k == "slow_cap" or k == "pause_cap"
    if type(v) == "number" and (o ~= o or o == -math.huge or (o == math.huge and not may_be_huge)) then
      error(("retry.policy: %s must be a finite number"):format(k), 2)
    end
  end
  if not (p.base > 0 and p.factor >= 1 and p.cap >= p.base and p.jitter >= 0 and p.jitter < 1
    and p.max_age > 0) then
    error("retry.policy: need base > 0, factor >= 1, cap >= base, 0 <= jitter < 1, max_age > 0", 2)
  end
  if not (p.slow > 0 and p.slow_cap >= p.slow and p.pause > 0 and p.pause_cap >= p.pause
    and p.history >= 1) then
    error("retry.policy: need slow > 0, slow_cap >= slow, pause > 0, pause_cap >= pause, history >= 1", 2)
  end
  p.now = opts.now or os.time
  p.random = opts.random or math.random
  if type(p.now) ~= "function" or type(p.random) ~= "function" then
    error("retry.policy: now and random must be functions", 2)
  end
  p.domain_table = {}
  if opts.domains ~= nil then p:load_domains(opts.domains) end
  return p
end

--- The per-domain table, as plain data (save it; restore with `load_domains`).
-- Each entry: `{ slow = seconds between messages or nil, paused_until = t or nil,
-- pause = last pause length, next = earliest next send, why = text }`.
function Policy:domains()
  return self.domain_table
end

--- Replaces the per-domain table with a saved one.
function Policy:load_domains(t)
  if type(t) ~= "table" then error("load_domains: table expected", 2) end
  self.domain_table = t
end

local function entry(self, domain, create)
  local e = self.domain_table[domain]
  if not e and create then
    e = {}
    self.domain_table[domain] = e
  end
  return e
end

--- Whether a message may go to `domain` now.
-- @treturn boolean true, or false and the earliest time it may, and why
function Policy:ready(domain, now)
  now = now or self.now()
  local e = domain and self.domain_table[domain]
  if not e then return true end
  local at = math.max(e.paused_until or 0, e.next or 0)
  if at > now then return false, at, e.why end
  return true
end

--- Records that a message is being sent to `domain` now, so a slowed domain
-- gets its spacing.
function Policy:sent(domain, now)
  now = now or self.now()
  local e = domain and self.domain_table[domain]
  if e and e.slow then e.next = now + e.slow end
end

local function tidy(self, domain, e)
  if not e.slow and not e.paused_until then self.domain_table[domain] = nil end
end

local function slow_down(self, domain, now, why)
  local e = entry(self, domain, true)
  e.slow = math.min(self.slow_cap, e.slow and e.slow * 2 or self.slow)
  e.next = math.max(e.next or 0, now + e.slow)
  e.why = why
end

local function pause(self, domain, now, why)
  local e = entry(self, domain, true)
  if e.paused_until and e.paused_until > now - (e.pause or 0) then
    e.pause = math.min(self.pause_cap, (e.pause or self.pause) * 2)
  else
    e.pause = self.pause
  end
  e.paused_until = now + e.pause
  e.why = why
end

local function delivered_to(self, domain, now)
  local e = self.domain_table[domain]
  if not e then return end
  if e.paused_until and e.paused_until <= now then
    e.paused_until, e.pause = nil, nil
  end
  if e.slow then
    e.slow = e.slow / 2
    if e.slow < self.slow then e.slow, e.next = nil, nil end
  end
  tidy(self, domain, e)
end

-- The classification fields of a result, a recipient entry or an error.
local function class_of(t)
  local c = t.classification
  if type(c) == "table" and t.outcome == nil then
    return c.outcome, c.reason, c.action, c.code or (c.reply and c.reply.code), c.retry
  end
  local code = t.code or (type(t.reply) == "table" and t.reply.code) or nil
  return t.outcome, t.reason, t.action, code, t.retry
end

local function advises_slow(outcome, reason, action, code)
  if outcome == "delivered" then return false end
  return action == "reduce_rate" or RATE_REASONS[reason] or (code and RATE_CODES[code]) or false
end

-- Verdict for one class: "delivered", "retry", "failed" or "unknown".
local function verdict(outcome, reason, code, retry_flag)
  if outcome == "delivered" then return "delivered" end
  if reason == "too_many_recipients" then return "retry" end
  if code and code >= 500 then return "failed" end
  if outcome == "deferred" then return "retry" end
  if code and code >= 400 and code < 500 then return "retry" end
  if outcome == "unknown" then return retry_flag and "retry" or "failed" end
  return "failed"
end

local function text_of(outcome, reason, code, extra)
  local s = tostring(outcome or "?")
  if reason then s = s .. " (" .. reason .. ")" end
  if code then s = s .. " " .. tostring(code) end
  if extra and extra ~= "" then s = s .. ": " .. extra end
  return s
end

local function reply_text(t)
  local r = t.reply
  if type(r) == "table" then return r.text end
  if type(t.classification) == "table" then return t.classification.text end
  return t.message
end

--- Decides what to do after one attempt.
-- @param result what `client:send` returned: the result table, or the error
--   table of `nil, err` (it has `kind`); `nil` is an error of kind `network`.
-- @tparam[opt] table state the message's retry state from the last decision
--   (nil on the first attempt)
-- @tparam[opt] table rcpts envelope recipients of this attempt; used when the
--   result has no per-recipient entries (errors), for the domain table
-- @treturn table the decision: `retry` (boolean), `at` (time of the next
--   attempt, when retry), `give_up` (boolean), `why` (text), `outcome`,
--   `reason`, `action`, `maybe_delivered`, `recipients` (address -> verdict:
--   `delivered`, `retry`, `failed`, `unknown`), `suppress` (list of
--   `{address=, reason=, text=}` to remove from lists), `domains` (the domain
--   entries this decision touched)
-- @treturn table the new state: `{first=, attempts=, last=, next=, why=}`
function Policy:decide(result, state, rcpts)
  local now = self.now()
  state = state or {}
  local st = {
    first = state.first or now,
    attempts = (state.attempts or 0) + 1,
    last = now,
  }
  if result == nil then result = { kind = "network", message = "no result" } end
  if type(result) ~= "table" then error("decide: result must be a table", 2) end

  local d = { recipients = {}, suppress = {}, domains = {}, maybe_delivered = false }
  local touched = {}
  local is_error = result.kind ~= nil and result.ok == nil and result.recipients == nil
  local outcome, reason, action, code, rflag = class_of(result)
  local session_hold = false -- not the message's fault: keep it and pause its domains

  local msg_verdict
  if result.maybe_delivered then
    -- the end of DATA went out and no reply came back: the server may have it
    msg_verdict = "unknown"
    d.maybe_delivered = true
  elseif is_error then
    local k = result.kind
    if k == "validation" then
      msg_verdict = "failed"
      outcome, reason, action = "bounced", reason or "message_invalid", action or "fix_message"
    elseif RETRY_KINDS[k] then
      msg_verdict = "retry"
      if not outcome then
        outcome, reason, action = "deferred", k == "protocol" and "protocol_error" or "network_error", "retry"
      elseif outcome ~= "deferred" and k ~= "protocol" then
        outcome = "deferred"
      end
    elseif SESSION_KINDS[k] or outcome == "blocked" then
      msg_verdict = "retry"
      session_hold = true
      outcome = outcome or "blocked"
      reason = reason or (k == "auth" and "auth_failed") or (k == "tls_required" and "tls_required")
        or "policy"
      action = action or "fix_configuration"
    else
      msg_verdict = verdict(outcome, reason, code, rflag)
      if msg_verdict == "failed" and not code and not outcome then msg_verdict = "retry" end
    end
  elseif result.ok then
    msg_verdict = "delivered"
    outcome = outcome or "delivered"
  else
    msg_verdict = verdict(outcome, reason, code, rflag)
  end
  d.outcome, d.reason, d.action = outcome, reason, action
  if msg_verdict == "unknown" then
    d.outcome, d.reason = "unknown", d.reason or "unknown"
  end

  -- Per recipient: a RCPT refused has its own verdict; a RCPT accepted shares
  -- the message's fate (the reply to the end of DATA).
  local list = result.recipients
  if type(list) ~= "table" or #list == 0 then
    list = {}
    for i, a in ipairs(rcpts or {}) do list[i] = { address = a, shared = true } end
  end
  local counts = { delivered = 0, retry = 0, failed = 0, unknown = 0 }
  for _, r in ipairs(list) do
    local addr = r.address
    local v, ro, rr, ra, rc
    local rcode = type(r.reply) == "table" and r.reply.code or nil
    if r.shared or r.ok or (rcode and rcode >= 200 and rcode < 300) or r.outcome == "unknown"
      or (r.ok == nil and r.outcome == nil) then
      -- RCPT accepted: the recipient shares the fate of the message's data
      v, ro, rr, ra, rc = msg_verdict, outcome, reason, action, code
      if msg_verdict == "unknown" and self.retry_maybe_delivered then v = "retry" end
    else
      local rflag2
      ro, rr, ra, rc, rflag2 = class_of(r)
      v = verdict(ro, rr, rc, rflag2)
    end
    if addr then d.recipients[addr] = v end
    counts[v] = counts[v] + 1
    local dom = M.domain_of(addr)
    if dom then
      if v == "delivered" then
        delivered_to(self, dom, now)
      else
        if session_hold or ro == "blocked" then
          pause(self, dom, now, text_of(ro, rr, rc, reply_text(r.shared and result or r)))
          touched[dom] = true
        end
        if advises_slow(ro, rr, ra, rc) then
          slow_down(self, dom, now, text_of(ro, rr, rc, reply_text(r.shared and result or r)))
          touched[dom] = true
        end
      end
    end
    -- remove_address advice: a refused recipient, or the message's own reply
    -- when it had a single recipient (a 550 to DATA names that address).
    if v == "failed" and ra == "remove_address" and addr and not (is_error and r.shared)
      and (not r.shared or #list == 1) then
      d.suppress[#d.suppress + 1] = { address = addr, reason = rr, code = rc,
        text = reply_text(r.shared and result or r) }
    end
  end
  if #list == 0 then counts[msg_verdict == "unknown" and self.retry_maybe_delivered and "retry"
    or msg_verdict] = 1 end
  for dom in pairs(touched) do d.domains[dom] = self.domain_table[dom] end

  -- The message as a whole.
  local deadline = st.first + self.max_age
  if counts.retry > 0 then
    if now >= deadline then
      d.retry, d.give_up = false, true
      d.why = ("expired: still %s after %d attempts over %s (max_age %s)"):format(
        text_of(outcome, reason, code), st.attempts, M.duration(now - st.first), M.duration(self.max_age))
      d.expired = true
      for a, v in pairs(d.recipients) do if v == "retry" then d.recipients[a] = "failed" end end
    else
      local delay = math.min(self.cap, self.base * self.factor ^ (st.attempts - 1))
      -- jittered, but never longer than the cap: the cap is the longest wait
      delay = math.min(self.cap, delay * (1 - self.jitter + 2 * self.jitter * self.random()))
      local at = now + delay
      for a, v in pairs(d.recipients) do
        if v == "retry" then
          local dom = M.domain_of(a)
          local ok, when = self:ready(dom, now)
          if not ok and when > at then at = when end
        end
      end
      if at > deadline then at = deadline end
      d.retry, d.give_up, d.at = true, false, at
      d.why = ("retry in %s: %s"):format(M.duration(at - now), text_of(d.outcome, d.reason, code,
        reply_text(result)))
      st.next = at
    end
  else
    d.retry = false
    d.give_up = counts.failed > 0 or counts.unknown > 0
    if counts.failed > 0 then
      d.why = ("not retried: %s"):format(text_of(outcome, reason, code, reply_text(result)))
      if counts.delivered > 0 then d.why = "partly delivered; " .. d.why end
      -- the reason of a refused recipient when the message itself went through
      if outcome == "delivered" then
        for _, r in ipairs(list) do
          if not r.shared and d.recipients[r.address] == "failed" then
            local ro, rr, _, rc = class_of(r)
            d.why = ("partly delivered; %s not retried: %s"):format(r.address,
              text_of(ro, rr, rc, reply_text(r)))
            break
          end
        end
      end
    elseif counts.unknown > 0 then
      d.why = "maybe delivered: no reply after the end of DATA; not resent (retry_maybe_delivered is off)"
    else
      d.why = "delivered"
    end
  end
  st.why = d.why
  return d, st
end

--- Whether a state is past `max_age` at `now` (for a message that waited for
-- a paused domain and never got its next attempt). The deadline itself is
-- not past: the last retry is scheduled there.
function Policy:expired(state, now)
  now = now or self.now()
  return state ~= nil and state.first ~= nil and now > state.first + self.max_age
end

--- "1h 5m", "30s": a duration for messages.
function M.duration(s)
  s = math.floor(s + 0.5)
  if s < 60 then return s .. "s" end
  local floor = math.floor
  if s < HOUR then
    return s % 60 == 0 and floor(s / 60) .. "m" or ("%dm %ds"):format(floor(s / 60), s % 60)
  end
  local h, m = floor(s / HOUR), floor((s % HOUR) / 60)
  return m == 0 and h .. "h" or ("%dh %dm"):format(h, m)
end

return M
