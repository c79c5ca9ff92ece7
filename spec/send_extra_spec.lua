-- smtpkit.send from an adversarial review: a Postfix with restrictions
-- (message_size_limit, smtpd_recipient_limit, a rejected recipient), 8-bit
-- streamed bodies, DSN ORCPT, Gmail's XOAUTH2 failure challenge. Real servers
-- on 127.0.0.1 (spec/support/servers.lua); nothing is mocked.
local smtpkit = require "smtpkit"
local servers = require "support.servers"

local function tracer()
  local lines = {}
  return lines, function(line) lines[#lines + 1] = line end
end

local function find_line(lines, pattern)
  for _, l in ipairs(lines) do
    if l:find(pattern) then return l end
  end
  return nil
end

local function iter(parts)
  local i = 0
  return function()
    i = i + 1
    return parts[i]
  end
end

describe("smtpkit.send against a Postfix with restrictions", function()
  local pf
  setup(function()
    pf = servers.postfix { open = true, main = table.concat({
      "message_size_limit = 4000",
      "smtpd_recipient_limit = 2",
      "smtpd_recipient_restrictions = reject_non_fqdn_recipient,"
        .. " check_recipient_access inline:{bad@x.test=REJECT}",
    }, "\n") }
  end)
  teardown(function() servers.stop_all() end)

  local function opts(trace)
    return { host = "127.0.0.1", port = pf.port, tls = "none", trace = trace }
  end

  it("a SIZE= over the limit is refused at MAIL: no body byte is sent", function()
    local lines, trace = tracer()
    local r = assert(smtpkit.send(opts(trace), { from = "a@x.test", to = "big@x.test",
      body = "Subject: big\r\n\r\n" .. ("y"):rep(5000) .. "\r\n" }))
    assert.is_false(r.ok)
    assert.equal("bounced", r.outcome)
    assert.equal("message_too_large", r.reason)
    assert.equal(552, r.reply.code)
    assert.equal("message_too_large", r.recipients[1].reason)
    assert.truthy(find_line(lines, "^C: MAIL FROM:<a@x%.test> SIZE=50%d%d"))
    assert.is_nil(find_line(lines, "%[body:"))
  end)

  it("a streamed body over the limit (no SIZE=) gets its 552 after the data", function()
    local lines, trace = tracer()
    local chunk = ("z"):rep(70) .. "\r\n"
    local n = 0
    local r = assert(smtpkit.send(opts(trace), { from = "a@x.test", to = "big2@x.test",
      body = function()
        n = n + 1
        if n == 1 then return "Subject: big\r\n\r\n" end
        if n < 200 then return chunk end
      end }))
    assert.is_false(r.ok)
    assert.equal("message_too_large", r.reason)
    assert.equal(552, r.reply.code)
    assert.is_false(r.maybe_delivered)
    assert.truthy(find_line(lines, "%[body:"))
  end)

  it("5 recipients against a limit of 2 with one refused: each other one delivered once", function()
    local to = { "r1@x.test", "bad@x.test", "r2@x.test", "r3@x.test", "r4@x.test" }
    local c = assert(smtpkit.connect(opts()))
    local r = assert(c:send { from = "lim@x.test", to = to, body = "Subject: lim\r\n\r\nhi\r\n" })
    -- the connection goes on after the extra transaction
    local r2 = assert(c:send { from = "lim@x.test", to = "after@x.test",
      body = "Subject: after\r\n\r\nhi\r\n" })
    c:close()
    assert.is_true(r.ok)
    assert.is_true(r2.ok)
    assert.equal(4, r.accepted)
    for i, addr in ipairs(to) do
      assert.equal(addr, r.recipients[i].address)
      assert.equal(addr ~= "bad@x.test", r.recipients[i].ok)
    end
    assert.equal("user_unknown", r.recipients[2].reason)
    -- two transactions, two queue ids: each recipient names its own
    assert.equal(r.queue_id, r.recipients[1].queue_id)
    assert.equal(r.queue_id, r.recipients[3].queue_id)
    assert.is_nil(r.recipients[2].queue_id)
    assert.equal(2, r.recipients[4].pass)
    assert.truthy(r.recipients[4].queue_id)
    assert.are_not.equal(r.queue_id, r.recipients[4].queue_id)
    assert.equal(r.recipients[4].queue_id, r.recipients[5].queue_id)
    assert.same({ "r3@x.test", "r4@x.test" }, pf:wait_message(r.recipients[4].queue_id, 10, 2).to)
    assert.same({ "r1@x.test", "r2@x.test" }, pf:wait_message(r.queue_id, 10, 2).to)
    local seen = pf:wait_recipients("lim@x.test", 5)
    assert.same({ "after@x.test", "r1@x.test", "r2@x.test", "r3@x.test", "r4@x.test" }, seen)
  end)

  it("a body with dots, bare LF/CR and an early '.' line arrives byte-exact", function()
    local body = "line1\n.\nline2\r\n.\r\n..dots\r\n.x\rlone cr\r\n.\r\n\r\n.."
    local r = assert(smtpkit.send(opts(), { from = "exact@x.test", to = "exact@x.test",
      body = "Subject: exact\r\n\r\n" .. body }))
    assert.is_true(r.ok)
    local m = pf:wait_message(r.queue_id)
    assert.equal("line1\n.\nline2\n.\n..dots\n.x\nlone cr\n.\n\n..\n", servers.body_of(m.data))
  end)

  it("a streamed 8-bit body (iterator or file) goes with BODY=8BITMIME when offered", function()
    local lines, trace = tracer()
    local c = assert(smtpkit.connect(opts(trace)))
    local r1 = assert(c:send { from = "a@x.test", to = "eight@x.test",
      body = iter { "Subject: 8bit\r\n\r\n", "caf\xc3\xa9\r\n" } })
    local name = os.tmpname()
    local f = assert(io.open(name, "wb"))
    f:write("Subject: 8bitfile\r\n\r\nna\xc3\xafve\r\n")
    f:close()
    f = assert(io.open(name, "rb"))
    local r2 = assert(c:send { from = "a@x.test", to = "eightf@x.test", body = f })
    f:close()
    os.remove(name)
    c:close()
    assert.is_true(r1.ok)
    assert.is_true(r2.ok)
    local mails = {}
    for _, l in ipairs(lines) do
      if l:find("^C: MAIL FROM") then mails[#mails + 1] = l end
    end
    assert.same({ "C: MAIL FROM:<a@x.test> BODY=8BITMIME", "C: MAIL FROM:<a@x.test> BODY=8BITMIME" },
      mails)
    assert.equal("caf\xc3\xa9\n", servers.body_of(pf:wait_message(r1.queue_id).data))
    assert.equal("na\xc3\xafve\n", servers.body_of(pf:wait_message(r2.queue_id).data))
  end)

  it("STARTTLS to an implicit-TLS port: the greeting timeout says to set tls = implicit", function()
    local c, err = smtpkit.connect { host = "127.0.0.1", port = pf.smtps_port, cafile = pf.ca,
      timeouts = { greeting = 1 } }
    assert.is_nil(c)
    assert.equal("timeout", err.kind)
    assert.truthy(tostring(err):find('tls = "implicit"', 1, true), tostring(err))
    -- and with tls = "implicit" it works
    local r = assert(smtpkit.send({ host = "127.0.0.1", port = pf.smtps_port, cafile = pf.ca,
      tls = "implicit" }, { from = "a@x.test", to = "imp@x.test", body = "x\r\n" }))
    assert.is_true(r.ok)
  end)

  it("a DSN orcpt given as rfc822;addr is written with one prefix", function()
    local lines, trace = tracer()
    local r = assert(smtpkit.send(opts(trace), { from = "a@x.test",
      to = { { address = "dsn@x.test", notify = "SUCCESS,FAILURE", orcpt = "rfc822;dsn@x.test" },
             { address = "dsn2@x.test", orcpt = "RFC822;orig+1@x.test" } },
      body = "Subject: dsn\r\n\r\nhi\r\n" }))
    assert.is_true(r.ok)
    assert.truthy(find_line(lines,
      "^C: RCPT TO:<dsn@x%.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;dsn@x%.test$"))
    assert.truthy(find_line(lines, "^C: RCPT TO:<dsn2@x%.test> ORCPT=rfc822;orig%+2B1@x%.test$"))
  end)
end)

describe("smtpkit.send against aiosmtpd: 8-bit streams, DSN, XOAUTH2", function()
  teardown(function() servers.stop_all() end)

  it("a streamed 8-bit body to a server without 8BITMIME fails before its end of data", function()
    local srv = servers.scripted { replies = { EHLO = "250-x\r\n250 PIPELINING" } }
    local lines, trace = tracer()
    local o = { host = "127.0.0.1", port = srv.port, tls = "none", trace = trace }
    local r, err = smtpkit.send(o, { from = "a@x.test", to = "b@x.test",
      body = iter { "Subject: 8\r\n\r\n", "abc\r\n", "caf\xc3\xa9\r\n" } })
    assert.is_nil(r)
    assert.equal("validation", err.kind)
    assert.truthy(tostring(err):find("8BITMIME", 1, true))
    assert.is_nil(find_line(lines, "^C: %.$"))
    -- a 7-bit stream still goes, without BODY=
    local r2 = assert(smtpkit.send(o, { from = "a@x.test", to = "b@x.test",
      body = iter { "Subject: 7\r\n\r\n", "abc\r\n" } }))
    assert.is_true(r2.ok)
    local msgs = srv:wait_messages(1)
    require("socket").sleep(0.3)
    assert.equal(1, #srv:messages())
    assert.equal("", msgs[1].mail_params)
  end)

  it("10,000 recipients: nil, err (validation) before connecting, never raised", function()
    local to = {}
    for i = 1, 10000 do to[i] = "r" .. i .. "@x.test" end
    local port = servers.free_port()   -- nothing listens: a connection would fail
    local ok, r, err = pcall(smtpkit.send, { host = "127.0.0.1", port = port, tls = "none" },
      { from = "a@x.test", to = to, body = "x\r\n" })
    assert.is_true(ok, tostring(r))
    assert.is_nil(r)
    assert.equal("validation", err.kind)
    assert.truthy(tostring(err):find("10000 recipients", 1, true))
    -- on an open client: refused, and the connection still sends
    local srv = servers.scripted {}
    local c = assert(smtpkit.connect { host = "127.0.0.1", port = srv.port, tls = "none" })
    ok, r, err = pcall(c.send, c, { from = "a@x.test", to = to, body = "x\r\n" })
    assert.is_true(ok, tostring(r))
    assert.equal("validation", err.kind)
    assert.is_true(assert(c:send { from = "a@x.test", to = "b@x.test", body = "x\r\n" }).ok)
    c:close()
  end)

  it("a timeout of 0 or less (no deadline at all) is a mistake: error()", function()
    local srv = servers.scripted { delay = { greeting = 3 } }
    for _, v in ipairs { 0, -1, "5" } do
      local ok, why = pcall(smtpkit.send, { host = "127.0.0.1", port = srv.port, tls = "none",
        timeouts = { greeting = v } }, { from = "a@x.test", to = "b@x.test", body = "x\r\n" })
      assert.is_false(ok, "timeouts.greeting = " .. tostring(v))
      assert.truthy(tostring(why):find("timeouts.greeting", 1, true), tostring(why))
    end
    assert.equal(0, #srv:messages())
  end)

  it("a 421 to MAIL on a connection opened a moment ago is a refusal: no second connection", function()
    local srv = servers.scripted { replies = { MAIL = "421 4.3.2 too busy, try later" } }
    local lines, trace = tracer()
    local r = assert(smtpkit.send({ host = "127.0.0.1", port = srv.port, tls = "none", trace = trace },
      { from = "a@x.test", to = "b@x.test", body = "x\r\n" }))
    assert.is_false(r.ok)
    assert.equal("deferred", r.outcome)
    assert.equal(421, r.reply.code)
    local n = 0
    for _, l in ipairs(lines) do
      if l:find("connected to", 1, true) then n = n + 1 end
    end
    assert.equal(1, n)
  end)

  it("DSN parameters are left out when the server does not offer DSN", function()
    local srv = servers.scripted {}
    local r = assert(smtpkit.send({ host = "127.0.0.1", port = srv.port, tls = "none" },
      { from = "a@x.test", to = { { address = "d@x.test", notify = "NEVER", orcpt = "d@x.test" } },
        body = "x\r\n" }))
    assert.is_true(r.ok)
    assert.equal("", srv:wait_messages(1)[1].rcpt_params[1])
  end)

  it("XOAUTH2 refused with a 334 JSON challenge: empty answer, kind auth, nothing leaks", function()
    local srv = servers.scripted { auth = { alice = "pw" }, xoauth2 = { alice = "tok" },
      xoauth2_challenge = true }
    local lines, trace = tracer()
    local token = "badtoken-SECRET"
    local r, err = smtpkit.send({ host = "127.0.0.1", port = srv.port, tls = "none",
      username = "alice", xoauth2 = token, allow_plaintext_auth = true, trace = trace,
      timeouts = { command = 5 } }, { from = "a@x.test", to = "b@x.test", body = "x\r\n" })
    assert.is_nil(r)
    assert.equal("auth", err.kind)
    assert.equal(535, err.reply.code)
    local f = assert(io.open(srv.dir .. "/out/xoauth2_answer", "rb"))
    assert.equal("", f:read("*a"))
    f:close()
    local b64 = require("mime").b64   -- LuaSocket's
    local all = table.concat(lines, "\n")
    assert.is_nil(all:find(token, 1, true))
    assert.is_nil(all:find((b64("user=alice\1auth=Bearer " .. token .. "\1\1")), 1, true))
    assert.truthy(find_line(lines, "^S: 334 %[redacted%]"))
    assert.equal(0, #srv:messages())
  end)
end)
