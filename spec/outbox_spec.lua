-- smtpkit.outbox and its directory store: records on disk, states,
-- suppression, recovery after a crash, and runs against real SMTP servers.
local outbox = require "smtpkit.outbox"
local dirstore = require "smtpkit.outbox_dir"
local retry = require "smtpkit.retry"
local core = require "smtpkit.core"

local function tmpdir()
  local p = assert(io.popen("mktemp -d /tmp/smtpkit-outbox.XXXXXX"))
  local d = p:read("*l")
  p:close()
  return d
end

local function rmrf(d)
  if d and d:match("^/tmp/smtpkit%-outbox%.") then os.execute("rm -rf '" .. d .. "'") end
end

local read = require("support.servers").read_file

local all_bytes = {}
for i = 0, 255 do all_bytes[#all_bytes + 1] = string.char(i) end
all_bytes = table.concat(all_bytes)

describe("outbox_dir JSON", function()
  it("round-trips records, escapes control bytes and keeps other bytes", function()
    local v = { a = "x\r\n\0\"\\y", b = { 1, 2.5, -3, true, false }, c = { d = { e = "é日本" } },
      n = 1733234567, big = 2 ^ 40 }
    local s = dirstore.encode(v)
    assert.is_nil(s:find("[\r\n%z]"))
    assert.same(v, dirstore.decode(s))
    assert.same({ "\u{1F600}", "é" }, dirstore.decode('["\\ud83d\\ude00", "\\u00e9"]'))
    assert.is_nil((dirstore.decode('{"a": }')))
    assert.is_nil((dirstore.decode('[1, 2')))
    assert.has_error(function() dirstore.encode({ f = print }) end)
  end)
end)

describe("outbox", function()
  local dir, ob, clock
  before_each(function()
    dir = tmpdir()
    clock = { t = 1000000 }
    ob = assert(outbox.open(dir, { now = function() return clock.t end }))
  end)
  after_each(function() rmrf(dir) end)

  it("submits a message: on disk in one file, state queued, body byte for byte", function()
    local body = "Subject: hi\r\nMessage-ID: <1@x>\r\n\r\n" .. all_bytes .. "\r\n.\r\n"
    local id = assert(ob:submit{ from = "Me <me@example.com>", to = { "a@example.net", "B <b@example.org>" },
      cc = "c@example.net", bcc = { "A@example.net", "d@example.com" }, body = body,
      headers = { ["X-Tag"] = "t1" } })
    assert.matches("^%d+%-%d+%-%x+$", id)
    local raw = assert(read(dir .. "/msg/" .. id))
    assert.equal("smtpkit-outbox 1\n", raw:sub(1, 17))
    assert.equal(body, raw:sub(-#body))
    local rec = assert(ob:get(id))
    assert.equal("queued", rec.state)
    assert.equal(id, rec.id)
    assert.equal("me@example.com", rec.from)
    assert.equal(1000000, rec.created)
    assert.equal(1000000, rec.due)
    assert.is_false(rec.maybe_delivered)
    local rcpts = {}
    for _, r in ipairs(rec.rcpts) do rcpts[#rcpts + 1] = r.address .. "=" .. r.status end
    -- duplicates (case-insensitive) once, in to, cc, bcc order
    assert.same({ "a@example.net=pending", "b@example.org=pending", "c@example.net=pending",
      "d@example.com=pending" }, rcpts)
    assert.same({ ["X-Tag"] = "t1" }, rec.msg.headers)
    assert.equal(body, ob:body(id))
    assert.same({}, core.fs.listdir(dir .. "/tmp"))   -- no temporary file left behind
    assert.same({ id }, (function()
      local ids = {}
      for _, r in ipairs(ob:list("queued")) do ids[#ids + 1] = r.id end
      return ids
    end)())
    assert.same({}, ob:list("delivered"))
  end)

  it("reads a body from an open file and from an iterator", function()
    local path = dir .. "/in.eml"
    local f = assert(io.open(path, "wb"))
    local big = ("0123456789abcdef"):rep(20000) -- 320 KB, several chunks
    f:write(big)
    f:close()
    f = assert(io.open(path, "rb"))
    local id1 = assert(ob:submit{ from = "me@example.com", to = "a@example.net", body = f })
    f:close()
    assert.equal(big, ob:body(id1))
    local parts, i = { "one\r\n", "two\r\n" }, 0
    local id2 = assert(ob:submit{ from = "me@example.com", to = "a@example.net",
      body = function() i = i + 1; return parts[i] end })
    assert.equal("one\r\ntwo\r\n", ob:body(id2))
    assert.are_not.equal(id1, id2)
  end)

  it("refuses what it could not send, with kind validation", function()
    local cases = {
      { from = "me@example.com", body = "x" },                                   -- no recipient
      { from = "me@example.com", to = "a@example.net\r\nRCPT TO:<b@x>", body = "x" },
      { from = "me@example.com", to = "not an address", body = "x" },
      { from = "me@example.com", to = "a@example.net" },                         -- no body
      { from = "me@example.com", to = "a@example.net", body = "x", headers = { X = print } },
      { to = "a@example.net", body = "x" },                                      -- no from
    }
    for i, m in ipairs(cases) do
      local id, e = ob:submit(m)
      assert.is_nil(id, "case " .. i)
      assert.equal("validation", e.kind, "case " .. i)
      assert.is_string(tostring(e))
    end
    assert.same({}, ob:list())
    assert.has_error(function() ob:submit("x") end)
  end)

  it("refuses suppressed addresses with the reason, unless allowed", function()
    assert(ob:suppress("Gone@Example.com", { reason = "user_unknown", code = 550,
      text = "Requested action not taken: mailbox unavailable" }))
    local id, e = ob:submit{ from = "me@example.com", to = { "ok@example.com", "gone@example.com" },
      body = "x" }
    assert.is_nil(id)
    assert.equal("suppressed", e.kind)
    assert.equal("gone@example.com", e.address)
    assert.equal("user_unknown", e.reason)
    assert.matches("gone@example.com is suppressed: user_unknown: 550 Requested action not taken", e.message)
    assert.matches("allow_suppressed", tostring(e))
    assert(ob:submit{ from = "me@example.com", to = "gone@example.com", body = "x", allow_suppressed = true })
    assert.equal(1, #ob:list_suppressed())
    assert.is_true(ob:unsuppress("gone@example.com"))
    assert(ob:submit{ from = "me@example.com", to = "gone@example.com", body = "x" })
  end)

  it("turns a record left in 'sending' by a dead process into maybe_delivered, never resending it", function()
    local id = assert(ob:submit{ from = "me@example.com", to = "a@example.net", body = "x" })
    -- what a runner writes just before handing the message to the server
    local rec = assert(ob:get(id))
    rec.state = "sending"
    rec.rcpts[1].sending = true
    assert(ob.store:update(rec, "queued"))
    local s = assert(ob:run{ connector = function() error("must not connect: nothing is due") end })
    assert.equal(1, s.recovered)
    assert.equal(0, s.attempted)
    rec = assert(ob:get(id))
    assert.equal("unknown", rec.state)
    assert.is_true(rec.maybe_delivered)
    assert.equal("unknown", rec.rcpts[1].status)
    assert.matches("^interrupted", rec.history[#rec.history].why)
    assert.same({ id }, { ob:list("maybe_delivered")[1].id })
    -- an operator may requeue it
    assert(ob:requeue(id))
    assert.equal("queued", ob:get(id).state)
  end)

  it("requeues an interrupted message when the policy allows resending maybe-delivered mail", function()
    local id = assert(ob:submit{ from = "me@example.com", to = "a@example.net", body = "x" })
    local rec = assert(ob:get(id))
    rec.state = "sending"
    rec.rcpts[1].sending = true
    assert(ob.store:update(rec, "queued"))
    local p = retry.policy{ now = function() return clock.t end, retry_maybe_delivered = true }
    local s = assert(ob:run{ policy = p, limit = 0 })
    assert.equal(1, s.recovered)
    rec = assert(ob:get(id))
    assert.equal("deferred", rec.state)
    assert.is_true(rec.maybe_delivered)
    assert.equal(clock.t, rec.due)
  end)

  it("lets one runner at a time work on a directory", function()
    local store = assert(dirstore.open(dir))
    local held = assert(store:lock())
    local s, e = ob:run{}
    assert.is_nil(s)
    assert.equal("locked", e.kind)
    held:unlock()
    assert(ob:run{})
  end)

  it("stores with compare-and-set on the state", function()
    local id = assert(ob:submit{ from = "me@example.com", to = "a@example.net", body = "x" })
    local rec = assert(ob:get(id))
    rec.state = "sending"
    local ok, e = ob.store:update(rec, "deferred")
    assert.is_nil(ok)
    assert.equal("conflict", e.kind)
    assert.equal("queued", ob:get(id).state)
    assert.equal("not_found", select(2, ob:get("nope")).kind)
    assert.equal("not_found", select(2, ob:get("../etc/passwd")).kind)
  end)
end)

describe("outbox:run against real SMTP servers", function()
  local servers = require "support.servers"
  local dir, ob, clock, policy
  -- started once (stopping a server takes a while): a server refusing at the
  -- greeting, one with per-address replies, one that accepts everything, one
  -- that drops the connection after DATA
  local greet421, mixed, ok250, drop
  setup(function()
    greet421 = servers.scripted{ replies = {
      greeting = "421 4.7.0 Message from (127.0.0.1) temporarily deferred" } }
    mixed = servers.scripted{ replies = {
      ["RCPT later@example.net"] = "450 4.2.1 too frequent connects from 127.0.0.1, please try again later.",
      ["RCPT local@example.net"] = "451 4.3.0 Temporary local problem - please try later",
      ["RCPT gone@example.net"] = "550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown",
      ["RCPT a1@slow.example"] = "452 4.5.3 Too many recipients received this hour (throttled)",
      ["RCPT x1@blocky.example"] = "554 5.7.1 Service unavailable; Client host [127.0.0.1] blocked using "
        .. "zen.spamhaus.org; https://www.spamhaus.org/query/ip/127.0.0.1" } }
    ok250 = servers.scripted{}
    drop = servers.scripted{ drop_after_data = true }
  end)
  teardown(function() servers.stop_all() end)
  before_each(function()
    dir = tmpdir()
    clock = { t = 2000000 }
    local now = function() return clock.t end
    ob = assert(outbox.open(dir, { now = now }))
    policy = retry.policy{ now = now, random = function() return 0.5 end }
  end)
  after_each(function() rmrf(dir) end)

  local function via(srv, o)
    o = o or {}
    o.connect = { host = srv.host, port = srv.port, tls = "none" }
    o.policy = o.policy or policy
    return assert(ob:run(o))
  end

  local function msg(to, tag)
    return { from = "sender@example.com", to = to,
      body = ("Subject: %s\r\nMessage-ID: <%s@smtpkit.test>\r\n\r\nbody of %s\r\n"):format(tag, tag, tag) }
  end

  -- what `srv` received of the message tagged `tag`
  local function received(srv, tag)
    local out = {}
    for _, m in ipairs(srv:messages()) do
      if m.data:find("Message-ID: <" .. tag .. "@smtpkit.test>", 1, true) then out[#out + 1] = m end
    end
    return out
  end

  it("drives a message through 421, 450 and 250, recording each attempt", function()
    local id = assert(ob:submit(msg("later@example.net", "m421")))
    local s = via(greet421)
    assert.equal(1, s.attempted)
    assert.is_table(s.error)                       -- the route refused us: the run stopped
    local rec = assert(ob:get(id))
    assert.equal("deferred", rec.state)
    assert.equal(clock.t + 300, rec.due)
    assert.equal(421, rec.history[1].reply.code)
    assert.equal("deferred", rec.history[1].outcome)
    assert.is_false(policy:ready("example.net"))  -- 421: fewer messages to that domain

    -- not due yet: nothing happens
    clock.t = clock.t + 299
    s = via(mixed)
    assert.equal(0, s.attempted)
    clock.t = clock.t + 1
    s = via(mixed)
    assert.equal(1, s.attempted)
    assert.equal(1, s.deferred)
    rec = assert(ob:get(id))
    assert.equal("deferred", rec.state)
    assert.equal(clock.t + 600, rec.due)
    assert.equal(450, rec.history[2].reply.code)
    assert.equal(450, rec.rcpts[1].reply.code)

    clock.t = rec.due
    s = via(ok250)
    assert.equal(1, s.delivered)
    rec = assert(ob:get(id))
    assert.equal("delivered", rec.state)
    assert.equal("delivered", rec.rcpts[1].status)
    assert.equal(3, rec.attempts)
    assert.equal(250, rec.history[3].reply.code)
    assert.equal(0, #received(greet421, "m421"))
    assert.equal(0, #received(mixed, "m421"))
    local got = received(ok250, "m421")
    assert.equal(1, #got)
    assert.same({ "later@example.net" }, got[1].to)
    -- nothing more to do
    clock.t = clock.t + 100000
    assert.equal(0, via(ok250).attempted)
    -- finished records can be purged
    assert.equal(0, ob:purge(clock.t - 200000))
    assert.equal(1, ob:purge(clock.t + 1))
    assert.same({}, ob:list())
    assert.has_error(function() ob:purge(clock.t, { "queued" }) end)
  end)

  it("gives a message up when 4xx go on for 72 hours", function()
    local id = assert(ob:submit(msg("local@example.net", "m451")))
    local p = retry.policy{ now = function() return clock.t end, random = function() return 0.5 end,
      base = 3600, cap = 6 * 3600 }
    local start, runs = clock.t, 0
    repeat
      via(mixed, { policy = p })
      runs = runs + 1
      local rec = assert(ob:get(id))
      if rec.state == "deferred" then clock.t = rec.due end
    until rec.state ~= "deferred" or runs > 50
    local rec = assert(ob:get(id))
    assert.equal("bounced", rec.state)
    assert.equal(start + 72 * 3600, clock.t)
    assert.matches("^expired: still deferred", rec.why)
    assert.equal("failed", rec.rcpts[1].status)
    assert.equal(runs, rec.attempts)
    assert.equal(15, runs)                         -- 1, 2, 4, then every 6 h, and one at 72 h
    assert.equal(0, #received(mixed, "m451"))
  end)

  it("does not retry a 550 and suppresses the address", function()
    local id1 = assert(ob:submit(msg("gone@example.net", "m550")))
    local id2 = assert(ob:submit(msg({ "ok@example.net", "ok2@example.net", "gone@example.net" }, "mix")))
    local s = via(mixed)
    assert.equal(2, s.attempted)
    local rec = assert(ob:get(id1))
    assert.equal("bounced", rec.state)
    assert.is_nil(rec.due)
    assert.matches("^not retried: bounced %(user_unknown%) 550", rec.why)
    rec = assert(ob:get(id2))
    assert.equal("delivered", rec.state)            -- delivered to those who accept it
    local st = {}
    for _, r in ipairs(rec.rcpts) do st[r.address] = r.status end
    assert.same({ ["ok@example.net"] = "delivered", ["ok2@example.net"] = "delivered",
      ["gone@example.net"] = "failed" }, st)
    local info = assert(ob:suppressed("GONE@example.net"))
    assert.equal("user_unknown", info.reason)
    assert.equal(550, info.code)
    local id, e = ob:submit(msg("gone@example.net", "again"))
    assert.is_nil(id)
    assert.equal("suppressed", e.kind)
    assert.equal("user_unknown", e.reason)
    assert.is_nil(ob:suppressed("ok@example.net"))
    clock.t = clock.t + 100000
    assert.equal(0, via(mixed).attempted)           -- never retried
    assert.equal(0, #received(mixed, "m550"))
    assert.same({ "ok@example.net", "ok2@example.net" }, received(mixed, "mix")[1].to)
  end)

  it("slows down a domain that advises a lower rate, and keeps sending elsewhere", function()
    local id1 = assert(ob:submit(msg("a1@slow.example", "s1")))
    local id2 = assert(ob:submit(msg("a2@slow.example", "s2")))
    local id3 = assert(ob:submit(msg("b@fast.example", "f1")))
    local s = via(mixed)
    assert.equal(2, s.attempted)
    assert.equal(1, s.skipped)                      -- s2 waits for slow.example
    assert.equal("deferred", ob:get(id1).state)
    assert.equal("queued", ob:get(id2).state)
    assert.equal("delivered", ob:get(id3).state)
    local saved = assert(ob.store:get_state("domains"))
    assert.equal(10, saved["slow.example"].slow)
    -- a new policy object picks the saved domain table up
    local p2 = retry.policy{ now = function() return clock.t end, random = function() return 0.5 end }
    clock.t = clock.t + 5
    s = via(mixed, { policy = p2 })
    assert.equal(0, s.attempted)
    assert.equal(1, s.skipped)
    clock.t = clock.t + 5
    s = via(mixed, { policy = p2 })
    assert.equal(1, s.attempted)
    assert.equal("delivered", ob:get(id2).state)
  end)

  it("pauses a domain that blocks us instead of hammering it", function()
    local id1 = assert(ob:submit(msg("x1@blocky.example", "b1")))
    local id2 = assert(ob:submit(msg("x2@blocky.example", "b2")))
    local id3 = assert(ob:submit(msg("y@fine.example", "b3")))
    local s = via(mixed)
    assert.equal(2, s.attempted)
    assert.equal(1, s.skipped)
    local rec = assert(ob:get(id1))
    assert.equal("bounced", rec.state)               -- a 5xx is never retried
    assert.equal("blocked", rec.history[1].outcome)
    assert.is_nil(ob:suppressed("x1@blocky.example")) -- not the address's fault
    assert.equal("queued", ob:get(id2).state)
    assert.equal("delivered", ob:get(id3).state)
    local ready, at = policy:ready("blocky.example")
    assert.is_false(ready)
    assert.equal(clock.t + 900, at)
    clock.t = at
    s = via(mixed)
    assert.equal(1, s.attempted)
    assert.equal("delivered", ob:get(id2).state)
  end)

  it("stores a composed message's bytes and envelope, and sends them", function()
    local message = require "smtpkit.message"
    local m = assert(message.new{ from = "Sender <sender@example.com>", to = "Ann <ann@example.net>",
      bcc = "hidden@example.org", subject = "請求書のご案内", text = "本文\n",
      message_id = "<composed@smtpkit.test>" })
    local id = assert(ob:submit(m))
    assert.equal(m:render(), ob:body(id))
    local rec = ob:get(id)
    assert.equal("sender@example.com", rec.from)
    assert.same({ "ann@example.net", "hidden@example.org" }, { rec.rcpts[1].address, rec.rcpts[2].address })
    local s = via(ok250)
    assert.equal(1, s.delivered)
    local got = received(ok250, "composed")
    assert.equal(1, #got)
    assert.equal(m:render(), got[1].data)
    assert.same({ "ann@example.net", "hidden@example.org" }, got[1].to)
  end)

  it("validates X-SMTPAPI at submit time and sends the encoded header", function()
    local id, e = ob:submit{ from = "sender@example.com", to = "a@example.net", body = "x\r\n",
      headers = { Subject = "bad" }, smtpapi = { filters = { clicktrack = { settings = { enable = 5 } } } } }
    assert.is_nil(id)
    assert.equal("validation", e.kind)
    assert.is_table(e.problems)
    assert.same({}, ob:list())
    id = assert(ob:submit{ from = "sender@example.com", to = "a@example.net",
      headers = { ["Message-ID"] = "<api@smtpkit.test>", Subject = "api" }, body = "hello\r\n",
      smtpapi = { category = { "newsletter" }, filters = { clicktrack = { settings = { enable = 0 } } } } })
    assert.is_string(ob:get(id).msg.smtpapi)
    assert.equal(1, via(ok250).delivered)
    local got = received(ok250, "api")
    assert.equal(1, #got)
    local value = got[1].data:match("X%-SMTPAPI: (.-)\r\n%S")
    assert.matches('"category":%s*%["newsletter"%]', value:gsub("\r\n ", ""))
  end)

  it("refuses a message whose body iterator fails, storing nothing", function()
    local n = 0
    local id, e = ob:submit{ from = "sender@example.com", to = "a@example.net", body = function()
      n = n + 1
      if n == 1 then return "first part\r\n" end
      return nil, "attachment unreadable"
    end }
    assert.is_nil(id)
    assert.matches("attachment unreadable", tostring(e))
    assert.same({}, ob:list())
    assert.same({}, core.fs.listdir(dir .. "/tmp"))
  end)

  it("streams a large body with 8-bit bytes from the store, byte for byte", function()
    local lines = {}
    for i = 1, 20000 do lines[i] = ("línea %05d ünïcödé ") :rep(3) .. "\r\n" end
    local text = "Message-ID: <large@smtpkit.test>\r\nSubject: large\r\n\r\n" .. table.concat(lines)
    assert.is_true(#text > 1024 * 1024)
    local id = assert(ob:submit{ from = "sender@example.com", to = "a@example.net", body = text })
    assert.equal(1, via(ok250).delivered)
    local got = received(ok250, "large")
    assert.equal(1, #got)
    assert.equal(text, got[1].data)
    assert.equal("delivered", ob:get(id).state)
  end)

  it("gives up a message that waited for a paused domain past max_age, without sending it", function()
    local p = retry.policy{ now = function() return clock.t end, random = function() return 0.5 end,
      max_age = 600 }
    local t0 = clock.t
    local id2 = assert(ob:submit(msg("x2@blocky.example", "late")))
    via(greet421, { policy = p })                   -- first attempt: 421, due at t0 + 300
    assert.equal("deferred", ob:get(id2).state)
    local id1 = assert(ob:submit(msg("x1@blocky.example", "blocker")))
    assert.equal(1, via(mixed, { policy = p }).skipped)  -- the 421 slowed blocky.example: 10 s
    clock.t = t0 + 10
    via(mixed, { policy = p })                      -- 554 blocked: blocky.example paused 900 s
    assert.equal("bounced", ob:get(id1).state)
    clock.t = t0 + 300
    local s = via(mixed, { policy = p })
    assert.equal(0, s.attempted)
    assert.equal(1, s.skipped)
    clock.t = t0 + 601
    s = via(mixed, { policy = p })
    assert.equal(1, s.expired)
    assert.equal(0, s.attempted)
    local rec = assert(ob:get(id2))
    assert.equal("bounced", rec.state)
    assert.equal("failed", rec.rcpts[1].status)
    assert.matches("^expired: not delivered within max_age %(10m%)", rec.why)
    assert.equal(0, #received(mixed, "late"))
  end)

  it("flags a message maybe_delivered when the connection drops after DATA, and never resends it", function()
    local id = assert(ob:submit(msg("rcpt@example.net", "drop")))
    local s = via(drop)
    assert.equal(1, s.attempted)
    assert.equal(1, s.unknown)
    local rec = assert(ob:get(id))
    assert.equal("unknown", rec.state)
    assert.is_true(rec.maybe_delivered)
    assert.equal("unknown", rec.rcpts[1].status)
    clock.t = clock.t + 100000
    assert.equal(0, via(drop).attempted)
    assert.equal(1, #received(drop, "drop"))
    assert.equal(1, #ob:list("maybe_delivered"))
  end)
end)
