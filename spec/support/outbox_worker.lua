-- The child process of spec/outbox_crash_spec.lua: submits a batch of tagged
-- messages to an outbox (those not already in it) and sends what is due to a
-- local SMTP server. The spec kills it with SIGKILL at random moments.
--
--   $SMTPKIT_LUA spec/support/outbox_worker.lua DIR HOST PORT N
--
-- Prints "submitted TAG ID" (flushed) after each submit returns, so the spec
-- knows which messages were handed over, and "done ..." at the end.
local outbox = require "smtpkit.outbox"
local retry = require "smtpkit.retry"

local dir, host, port, n = arg[1], arg[2], tonumber(arg[3]), tonumber(arg[4])
assert(dir and host and port and n, "usage: outbox_worker.lua DIR HOST PORT N")

local ob = assert(outbox.open(dir))
local have = {}
for _, rec in ipairs(assert(ob:list())) do
  local body = assert(ob:body(rec.id))
  local tag = body:match("Message%-ID: <crash%-(m%d+)@smtpkit%.test>")
  if tag then have[tag] = true end
end
for i = 1, n do
  local tag = "m" .. i
  if not have[tag] then
    local id = assert(ob:submit{
      from = "sender@example.com",
      to = ("rcpt%d@example.net"):format(i),
      body = ("From: sender@example.com\r\nTo: rcpt%d@example.net\r\nSubject: crash test %s\r\n"
        .. "Message-ID: <crash-%s@smtpkit.test>\r\n\r\nmessage %s\r\n"):format(i, tag, tag, tag),
    })
    io.stdout:write("submitted ", tag, " ", id, "\n")
    io.stdout:flush()
  end
end
local policy = retry.policy{ base = 1, cap = 1, jitter = 0 }
local s, e = ob:run{ connect = { host = host, port = port, tls = "none" }, policy = policy }
if not s then
  io.stdout:write("run failed: ", tostring(e and e.message or e), "\n")
  os.exit(2)
end
io.stdout:write(("done attempted=%d delivered=%d deferred=%d unknown=%d recovered=%d error=%s\n"):format(
  s.attempted, s.delivered, s.deferred, s.unknown, s.recovered, tostring(s.error and s.error.message)))
