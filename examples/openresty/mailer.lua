--- Handlers for the OpenResty example (examples/openresty/nginx.conf):
--
--   POST /mail   form fields from, to (comma list), subject, text: composes a
--                message (smtpkit.message) and sends it with smtpkit.resty
--                over a pooled connection; answers "sent", "deferred",
--                "failed" or "unknown" with the reason, as "key=value" lines.
--   GET /mail/status   this worker's counters.
--
-- Mail the server defers (4xx, a connection that failed...) is handed to
-- smtpkit.retry: the policy says when to try again and ngx.timer.at does it,
-- for the recipients still to do, until it is delivered or given up. Retries
-- live in this worker's memory: a restart forgets them. When mail must
-- survive restarts, put it in smtpkit.outbox first and let a timer drain it.
local resty = require "smtpkit.resty"
local message = require "smtpkit.message"
local retry = require "smtpkit.retry"

local M = {}

local config = {
  smtp = {                      -- smtpkit.resty options (see its connect())
    host = "127.0.0.1", port = 587, tls = "starttls",
    pool_size = 10, backlog = 200,
  },
  retry = {},                   -- smtpkit.retry.policy options
}
local policy
local stats = { received = 0, attempts = 0, sent = 0, deferred = 0, failed = 0, unknown = 0,
  given_up = 0, retried = 0 }

--- Sets the SMTP options and the retry policy (from init_by_lua or
-- init_worker_by_lua): configure{ smtp = {...}, retry = {...} }.
function M.configure(c)
  for k, v in pairs(c.smtp or {}) do config.smtp[k] = v end
  for k, v in pairs(c.retry or {}) do config.retry[k] = v end
  policy = nil
end

local function get_policy()
  if not policy then
    local o = {}
    for k, v in pairs(config.retry) do o[k] = v end
    o.now = ngx.now
    policy = retry.policy(o)
  end
  return policy
end

local attempt

-- Hands mail that was deferred to a timer, at the time the policy chose.
local function schedule(job, decision)
  local delay = math.max(0, decision.at - ngx.now())
  local ok, err = ngx.timer.at(delay, function(premature)
    if premature then return end   -- nginx is exiting
    stats.retried = stats.retried + 1
    attempt(job)
  end)
  if not ok then
    ngx.log(ngx.ERR, "mailer: cannot schedule a retry: ", err)
    stats.given_up = stats.given_up + 1
  end
end

-- One delivery attempt of job = { from, to = {...}, body = rendered, state }.
-- Returns the result (or nil), the error, and the policy's decision.
attempt = function(job)
  stats.attempts = stats.attempts + 1
  local res, err = resty.send(config.smtp, { from = job.from, to = job.to, body = job.body })
  local decision, state = get_policy():decide(res or err, job.state, job.to)
  job.state = state
  if decision.retry then
    -- only the recipients that are still to do
    local again = {}
    for _, a in ipairs(job.to) do
      local v = decision.recipients[a]
      if v == nil or v == "retry" then again[#again + 1] = a end
    end
    if #again == 0 then again = job.to end
    job.to = again
    stats.deferred = stats.deferred + 1
    schedule(job, decision)
  elseif res and res.ok then
    stats.sent = stats.sent + 1
  elseif decision.maybe_delivered then
    stats.unknown = stats.unknown + 1
  else
    stats.failed = stats.failed + 1
    if decision.give_up then stats.given_up = stats.given_up + 1 end
  end
  ngx.log(ngx.INFO, "mailer: ", job.to[1], ": ", decision.why or (res and res.outcome) or tostring(err))
  return res, err, decision
end

local function say(t)
  ngx.header["Content-Type"] = "text/plain"
  for _, k in ipairs{ "status", "outcome", "reason", "action", "queue_id", "why", "error" } do
    if t[k] ~= nil then ngx.say(k, "=", (tostring(t[k]):gsub("[\r\n]", " "))) end
  end
end

--- POST /mail
function M.post()
  ngx.req.read_body()
  local args, aerr = ngx.req.get_post_args()
  if not args then
    ngx.status = 400
    return say{ status = "invalid", error = aerr }
  end
  stats.received = stats.received + 1
  local to = {}
  for a in tostring(args.to or ""):gmatch("[^,%s]+") do to[#to + 1] = a end
  local msg, err = message{ from = args.from, to = to, subject = args.subject, text = args.text or "" }
  if not msg then
    ngx.status = 400
    return say{ status = "invalid", error = tostring(err) }
  end
  local body, rerr = msg:render()
  if not body then
    ngx.status = 400
    return say{ status = "invalid", error = tostring(rerr) }
  end
  local env = msg:envelope()
  local res, serr, decision = attempt{ from = env.from, to = env.to, body = body }
  local status
  if res and res.ok then
    status = "sent"
  elseif decision.retry then
    status = "deferred"
    ngx.status = 202
  elseif decision.maybe_delivered then
    status = "unknown"
    ngx.status = 202
  else
    status = "failed"
    ngx.status = 502
  end
  return say{ status = status, outcome = res and res.outcome or decision.outcome,
    reason = res and res.reason or decision.reason, action = res and res.action or decision.action,
    queue_id = res and res.queue_id, why = decision.why, error = serr and tostring(serr) }
end

--- GET /mail/status
function M.status()
  ngx.header["Content-Type"] = "text/plain"
  for _, k in ipairs{ "received", "attempts", "sent", "deferred", "retried", "failed", "unknown",
      "given_up" } do
    ngx.say(k, "=", stats[k])
  end
end

return M
