-- smtpkit.connect / smtpkit.send over the C transport (smtpkit.net), against
-- real servers on 127.0.0.1 started by spec/support/servers.lua: a private
-- Postfix (STARTTLS + SASL AUTH) that stores what it receives, and aiosmtpd
-- servers with scripted replies. Nothing is mocked.
local smtpkit = require "smtpkit"
local servers = require "support.servers"

local function lf(s) return (s:gsub("\r\n", "\n")) end

local without_received = servers.without_received

local function tracer()
  local lines = {}
  return lines, function(line) lines[#lines + 1] = line end
end

local function has_line(lines, pattern)
  for _, l in ipairs(lines) do
    if l:find(pattern) then return true end
  end
  return false
end

describe("smtpkit.send against Postfix (STARTTLS + AUTH)", function()
  local pf
  setup(function()
    pf = servers.postfix()
  end)
  teardown(function() servers.stop_all() end)

  local function opts(extra)
    local o = { host = "127.0.0.1", port = pf.port, cafile = pf.ca,
      username = pf.user, password = pf.password, timeouts = { connect = 5, command = 10, data = 20 } }
    for k, v in pairs(extra or {}) do o[k] = v end
    return o
  end

  it("sends several messages over one connection and Postfix stores the same bytes", function()
    local lines, trace = tracer()
    local c = assert(smtpkit.connect(opts { trace = trace }))
    assert.is_true(c:info().tls)
    assert.equal("PLAIN", c:info().auth)
    -- the capabilities have one shape on both transports (auth: the mechanisms)
    assert.is_true(c:info().capabilities.pipelining)
    assert.is_true(c:info().capabilities.auth.PLAIN)
    local body1 = "Subject: one\r\nFrom: a@smtpkit.test\r\n\r\n.leading dot\r\n..two dots\r\nend\r\n"
    local r1 = assert(c:send { from = "a@smtpkit.test", to = "bob@example.com", body = body1 })
    assert.is_true(r1.ok)
    assert.equal("delivered", r1.outcome)
    assert.is_string(r1.queue_id)
    -- body 2: bare LF line ends, a line that is only a dot, no final newline
    local body2 = "Subject: two\n\nline\n.\nlast line without newline"
    local r2 = assert(c:send { from = "a@smtpkit.test", to = { "carol@example.org" }, body = body2 })
    assert.is_true(r2.ok)
    -- body 3: an iterator, cut in odd places (CR | LF, "." at a chunk start)
    local parts = { "Subject: three\r", "\n\r\n", ".", "dot at chunk start\r\nx", "\r", "\n" }
    local i = 0
    local r3 = assert(c:send { from = "a@smtpkit.test", to = "dave@example.net",
      body = function() i = i + 1 return parts[i] end })
    assert.is_true(r3.ok)
    c:close()
    assert.is_true(has_line(lines, "^C: STARTTLS"))
    assert.is_true(has_line(lines, "^C: AUTH PLAIN %[redacted%]$"))
    local b64 = require("mime").b64("\0" .. pf.user .. "\0" .. pf.password)
    for _, l in ipairs(lines) do assert.is_nil(l:find(b64, 1, true)) end
    for _, l in ipairs(lines) do assert.is_nil(l:find(pf.password, 1, true)) end

    local by_id = {}
    for _, r in ipairs { r1, r2, r3 } do by_id[r.queue_id] = pf:wait_message(r.queue_id) end
    assert.equal(lf(body1), without_received(by_id[r1.queue_id].data))
    assert.same({ "bob@example.com" }, by_id[r1.queue_id].to)
    assert.equal("Subject: two\n\nline\n.\nlast line without newline\n",
      without_received(by_id[r2.queue_id].data))
    assert.equal("Subject: three\n\n.dot at chunk start\nx\n", without_received(by_id[r3.queue_id].data))
    assert.equal("a@smtpkit.test", by_id[r3.queue_id].from)
  end)

  it("streams a body from a file handle, several MB, and the bytes arrive intact", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    f:write("Subject: big\r\n\r\n")
    local rows = {}
    for n = 1, 40000 do rows[n] = string.format("%06d %s", n, ("abcdefghij"):rep(7)) end
    local text = table.concat(rows, "\r\n") .. "\r\n"
    f:write(text)
    f:close()
    f = assert(io.open(path, "rb"))
    local r = assert(smtpkit.send(opts(), { from = "big@smtpkit.test", to = "big@example.com", body = f }))
    f:close()
    os.remove(path)
    assert.is_true(r.ok)
    local m = pf:wait_message(r.queue_id)
    assert.equal("Subject: big\n\n" .. lf(text), without_received(m.data))
  end)

  it("refuses a body line over 998 octets unless long_lines is set, then sends it as is", function()
    local line = ("x"):rep(1500)
    local msg = { from = "a@smtpkit.test", to = "bob@example.com",
      body = "Subject: long\r\n\r\n" .. line .. "\r\n" }
    local r, err = smtpkit.send(opts(), msg)
    assert.is_nil(r)
    assert.equal("validation", err.kind)
    assert.truthy(err.message:find("set long_lines", 1, true), err.message)
    msg.long_lines = true
    r = assert(smtpkit.send(opts(), msg))
    assert.is_true(r.ok)
    assert.equal("Subject: long\n\n" .. line .. "\n", without_received(pf:wait_message(r.queue_id).data))
    assert.has_error(function()
      smtpkit.send(opts(), { from = "a@x", to = "b@x", body = "x", long_lines = 1 })
    end, "message 'long_lines' must be boolean, not number")
  end)

  it("keeps bcc out of the message and puts to, cc, bcc in the envelope", function()
    local r = assert(smtpkit.send(opts(), { from = "a@smtpkit.test", to = "to@example.com",
      cc = { "cc@example.com" }, bcc = "hidden@example.com",
      headers = { { "Subject", "with bcc" }, { "To", "to@example.com" }, { "Cc", "cc@example.com" } },
      body = "hello\r\n" }))
    assert.is_true(r.ok)
    assert.equal(3, #r.recipients)
    local m = pf:wait_message(r.queue_id, 10, 3)   -- each recipient is delivered on its own
    assert.same({ "cc@example.com", "hidden@example.com", "to@example.com" }, m.to)
    assert.is_nil(m.data:find("hidden", 1, true))
    assert.equal("Subject: with bcc\nTo: to@example.com\nCc: cc@example.com\n\nhello\n",
      without_received(m.data))
  end)

  it("sends over implicit TLS (smtps)", function()
    local c = assert(smtpkit.connect(opts { port = pf.smtps_port, tls = "implicit",
      helo = "client.example" }))
    assert.is_true(c:info().tls)
    local r = assert(c:send { from = "a@smtpkit.test", to = "tls@example.com",
      body = "Subject: s\r\n\r\nx\r\n" })
    c:close()
    assert.is_true(r.ok)
    -- Postfix's Received: header names the HELO we sent
    assert.matches("^Received: from client%.example ", pf:wait_message(r.queue_id).data)
  end)

  it("reports a wrong password as kind auth", function()
    local c, err = smtpkit.connect(opts { password = "wrong" })
    assert.is_nil(c)
    assert.equal("auth", err.kind)
    assert.equal(535, err.reply.code)
    assert.equal(err.message, tostring(err))
  end)

  it("returns a refused recipient as a result: relaying without AUTH is denied", function()
    local o = opts()
    o.username, o.password = nil, nil
    local r, err = smtpkit.send(o, { from = "a@smtpkit.test", to = "x@example.com", body = "x\r\n" })
    assert.is_nil(err)
    assert.is_false(r.ok)
    assert.equal(554, r.recipients[1].reply.code)
    assert.equal("relay_denied", r.recipients[1].reason)
  end)
end)

describe("smtpkit.send against scripted aiosmtpd servers", function()
  teardown(function() servers.stop_all() end)

  local function send(srv, msg, extra)
    local o = { host = "127.0.0.1", port = srv.port, tls = "none",
      timeouts = { connect = 5, command = 5, data = 5 } }
    for k, v in pairs(extra or {}) do o[k] = v end
    return smtpkit.send(o, msg or { from = "a@example.com", to = "b@example.com",
      body = "Subject: x\r\n\r\nx\r\n" })
  end

  it("MAIL refused: a result with ok false, the reply and its classification", function()
    local srv = servers.scripted { replies = { MAIL = "550 5.7.1 Sender blocked by policy" } }
    local r, err = send(srv)
    assert.is_nil(err)
    assert.is_false(r.ok)
    assert.equal(550, r.reply.code)
    assert.equal("5.7.1", r.reply.enhanced)
    assert.is_truthy(r.outcome == "bounced" or r.outcome == "blocked", r.outcome)
    assert.is_false(r.retry)
    assert.equal(0, #srv:messages())
    srv:stop()
  end)

  it("replies in results have parse_reply's shape, as smtpkit.resty's do", function()
    local srv = servers.scripted { replies = { MAIL = "550 5.7.1 Sender blocked by policy" } }
    local r = assert(send(srv))
    -- text without the enhanced code RFC 2034 repeats; the raw line in lines
    assert.same({ code = 550, enhanced = "5.7.1", text = "Sender blocked by policy",
      lines = { "5.7.1 Sender blocked by policy" } }, r.reply)
    srv:stop()
  end)

  it("one recipient refused, the other accepted: per-recipient results", function()
    local srv = servers.scripted { replies = { ["RCPT bad@example.com"] = "550 5.1.1 No such user" } }
    local r = assert(send(srv, { from = "a@example.com", to = { "good@example.com", "bad@example.com" },
      body = "x\r\n" }))
    assert.is_true(r.ok)
    assert.equal(1, r.accepted)
    assert.is_true(r.recipients[1].ok)
    assert.is_false(r.recipients[2].ok)
    assert.equal("user_unknown", r.recipients[2].reason)
    assert.equal("remove_address", r.recipients[2].action)
    local got = srv:wait_messages(1)
    assert.same({ "good@example.com" }, got[1].to)
    srv:stop()
  end)

  it("every recipient refused: no DATA, ok false", function()
    local srv = servers.scripted { replies = { RCPT = "450 4.2.1 Mailbox busy, try later" } }
    local r = assert(send(srv))
    assert.is_false(r.ok)
    assert.is_true(r.retry)
    assert.equal("deferred", r.recipients[1].outcome)
    assert.equal(0, #srv:messages())
    srv:stop()
  end)

  it("DATA refused (354 never comes)", function()
    local srv = servers.scripted { replies = { DATA = "554 5.5.1 No valid recipients" } }
    local r = assert(send(srv))
    assert.is_false(r.ok)
    assert.equal(554, r.reply.code)
    srv:stop()
  end)

  it("end of data refused: ok false with the final reply", function()
    local srv = servers.scripted { replies = { EOD = "552 5.3.4 Message too big" } }
    local r = assert(send(srv))
    assert.is_false(r.ok)
    assert.equal(552, r.reply.code)
    assert.equal("message_too_large", r.reason)
    assert.is_false(r.maybe_delivered)
    srv:stop()
  end)

  it("a 421 to RCPT: the recipient is classified by that reply, as the message is", function()
    local srv = servers.scripted { replies = {
      ["RCPT limited@example.com"] = "421 4.7.0 Too many messages, rate limited, try again later" } }
    local r, err = send(srv, { from = "a@example.com", to = { "limited@example.com", "b@example.com" },
      body = "x\r\n" })
    assert.is_nil(err)
    assert.is_false(r.ok)
    assert.equal("server", r.error.kind)
    assert.equal(421, r.reply.code)
    for i = 1, 2 do
      local rc = r.recipients[i]
      assert.is_false(rc.ok)
      assert.equal(421, rc.reply.code)
      assert.equal(r.reason, rc.reason)
      assert.equal(r.outcome, rc.outcome)
      assert.are_not.equal("network_error", rc.reason)
    end
    assert.equal(0, #srv:messages())
    srv:stop()
  end)

  it("greeting 554: kind server, with the reply", function()
    local srv = servers.scripted { replies = { greeting = "554 5.3.2 Not accepting mail" } }
    local r, err = send(srv)
    assert.is_nil(r)
    assert.equal("server", err.kind)
    assert.equal(554, err.reply.code)
    srv:stop()
  end)

  it("a drop after DATA is unknown, maybe delivered - never failed", function()
    local srv = servers.scripted { drop_after_data = true }
    local r, err = send(srv)
    assert.is_nil(err)
    assert.is_false(r.ok)
    assert.is_true(r.maybe_delivered)
    assert.equal("unknown", r.outcome)
    assert.is_table(r.error)
    srv:stop()
  end)

  it("a slow greeting runs into the greeting timeout", function()
    local srv = servers.scripted { delay = { greeting = 5 } }
    local r, err = send(srv, nil, { timeouts = { connect = 5, greeting = 0.5 } })
    assert.is_nil(r)
    assert.equal("timeout", err.kind)
    srv:stop()
  end)

  it("a server that trickles bytes is cut off at the phase deadline", function()
    -- a byte every 0.1 s, forever: the greeting never ends, but bytes keep coming
    local srv = servers.scripted { trickle = { greeting = 0.1 } }
    local r, err = send(srv, nil, { timeouts = { connect = 5, greeting = 1 } })
    assert.is_nil(r)
    assert.equal("timeout", err.kind)
    srv:stop()
  end)

  it("a slow end-of-data reply times out as maybe delivered", function()
    local srv = servers.scripted { delay = { EOD = 5 } }
    local r = send(srv, nil, { timeouts = { connect = 5, command = 5, data = 0.5 } })
    assert.is_true(r.maybe_delivered)
    assert.equal("timeout", r.error.kind)
    srv:stop()
  end)

  it("a timeout before the end of data is nil, err with the partial result", function()
    local srv = servers.scripted { delay = { RCPT = 3 } }
    local r, err = send(srv, nil, { timeouts = { connect = 5, command = 0.5, data = 5 } })
    assert.is_nil(r)
    assert.equal("timeout", err.kind)
    assert.equal("deferred", err.result.recipients[1].outcome)
    assert.is_false(err.result.maybe_delivered)
    srv:stop()
  end)

  it("a server that stops reading the body is cut off by the data timeout", function()
    local srv = servers.scripted { stall_data = true }
    local big = ("x"):rep(998) .. "\r\n"
    local n = 0
    local r, err = send(srv, { from = "a@example.com", to = "b@example.com",
      body = function() n = n + 1 if n <= 20000 then return big end end },   -- 20 MB
      { timeouts = { connect = 5, command = 5, data = 1 } })
    assert.is_nil(r)
    assert.equal("timeout", err.kind)
    assert.is_true(n < 20000)   -- the body was not read to its end
    srv:stop()
  end)

  it("STARTTLS required but not offered: kind tls_required, nothing sent", function()
    local srv = servers.scripted {}
    local r, err = send(srv, nil, { tls = "starttls" })
    assert.is_nil(r)
    assert.equal("tls_required", err.kind)
    assert.equal(0, #srv:messages())
    -- opportunistic goes on in plain text
    local r2 = assert(send(srv, nil, { tls = "opportunistic" }))
    assert.is_true(r2.ok)
    srv:stop()
  end)

  it("plaintext injected after the STARTTLS 220 aborts the session", function()
    local srv = servers.scripted { tls = "starttls",
      inject_after_starttls = "250-injected\r\n250 PIPELINING" }
    local r, err = send(srv, nil, { tls = "starttls", cafile = servers.certs().ca })
    assert.is_nil(r)
    assert.is_truthy(err.kind == "tls_required" or err.kind == "protocol" or err.kind == "tls")
    assert.equal(0, #srv:messages())
    srv:stop()
  end)

  it("reconnects when the server closed the idle connection (EOF), sending each message once", function()
    local srv = servers.scripted { eof_after = 1 }
    local c = assert(smtpkit.connect { host = "127.0.0.1", port = srv.port, tls = "none" })
    for n = 1, 3 do
      local r, err = c:send { from = "a@example.com", to = "b@example.com",
        body = "Subject: " .. n .. "\r\n\r\nx\r\n" }
      assert.is_nil(err)
      assert.is_true(r.ok)
    end
    c:close()
    local got = srv:wait_messages(3)
    assert.equal(3, #got)
    for n = 1, 3 do assert.equal("Subject: " .. n .. "\r\n\r\nx\r\n", got[n].data) end
    srv:stop()
  end)

  it("reconnects after a 421 on an idle connection", function()
    local srv = servers.scripted { close_after = 1 }
    local c = assert(smtpkit.connect { host = "127.0.0.1", port = srv.port, tls = "none" })
    for n = 1, 3 do
      local r, err = c:send { from = "a@example.com", to = "b@example.com", body = "n" .. n .. "\r\n" }
      assert.is_nil(err)
      assert.is_true(r.ok)
    end
    c:close()
    assert.equal(3, #srv:wait_messages(3))
    srv:stop()
  end)

  it("max_messages opens a new connection after that many messages", function()
    local srv = servers.scripted {}
    local c = assert(smtpkit.connect { host = "127.0.0.1", port = srv.port, tls = "none", max_messages = 2 })
    for n = 1, 5 do
      assert.is_true(c:send { from = "a@example.com", to = "b@example.com", body = n .. "\r\n" }.ok)
    end
    c:close()
    assert.equal(3, c.connections)
    srv:stop()
  end)

  it("validates the X-SMTPAPI header before anything is sent", function()
    local srv = servers.scripted {}
    local lines, trace = tracer()
    local c = assert(smtpkit.connect { host = "127.0.0.1", port = srv.port, tls = "none", trace = trace })
    local r, err = c:send { from = "a@example.com", to = "b@example.com", body = "x\r\n",
      smtpapi = { category = { 1, 2, 3 }, unique_args = "not a table" } }
    assert.is_nil(r)
    assert.equal("validation", err.kind)
    assert.is_false(has_line(lines, "^C: MAIL"))
    -- a valid one is written into the message
    r = assert(c:send { from = "a@example.com", to = "b@example.com",
      headers = { Subject = "api" }, body = "x\r\n", smtpapi = { category = { "newsletter" } } })
    assert.is_true(r.ok)
    c:close()
    local got = srv:wait_messages(1)
    assert.equal(1, #got)
    assert.is_truthy(got[1].data:find("X-SMTPAPI: ", 1, true))
    assert.is_truthy(got[1].data:find("newsletter", 1, true))
    srv:stop()
  end)

  it("smtpkit.send does not even connect when the X-SMTPAPI header is invalid", function()
    local port = servers.free_port()   -- nothing listens there
    local r, err = smtpkit.send({ host = "127.0.0.1", port = port, tls = "none" },
      { from = "a@example.com", to = "b@example.com", body = "x\r\n", smtpapi = "{not json" })
    assert.is_nil(r)
    assert.equal("validation", err.kind)
  end)

  it("refuses a header with a line end (no injection)", function()
    local srv = servers.scripted {}
    local r, err = send(srv, { from = "a@example.com", to = "b@example.com",
      headers = { Subject = "x\r\nBcc: evil@example.com" }, body = "x\r\n" })
    assert.is_nil(r)
    assert.equal("validation", err.kind)
    r, err = send(srv, { from = "a@example.com>\r\nRCPT TO:<evil@example.com", to = "b@example.com",
      body = "x" })
    assert.is_nil(r)
    assert.equal("validation", err.kind)
    assert.equal(0, #srv:messages())
    srv:stop()
  end)

  it("sends a composed smtpkit.message", function()
    local srv = servers.scripted { smtputf8 = false }
    local msg = assert(smtpkit.message.new { from = "a@example.com", to = "b@example.com",
      bcc = "c@example.com", subject = "composed", text = "hello\n.world\n" })
    local r = assert(send(srv, msg))
    assert.is_true(r.ok)
    local got = srv:wait_messages(1)
    assert.same({ "b@example.com", "c@example.com" }, got[1].to)
    assert.equal(msg:render(), got[1].data)
    srv:stop()
  end)

  it("a composed message declares its size in MAIL (SIZE=), as smtpkit.resty does", function()
    local srv = servers.scripted { smtputf8 = false, ehlo_extra = { "SIZE 10000000" } }
    local msg = assert(smtpkit.message.new { from = "a@example.com", to = "b@example.com",
      subject = "sized", text = "hello\n" })
    local r = assert(send(srv, msg))
    assert.is_true(r.ok)
    local got = srv:wait_messages(1)
    assert.matches("SIZE=" .. msg:size(), got[1].mail_params, 1, true)
    srv:stop()
  end)

  it("AUTH over the scripted server after STARTTLS, and a refused login", function()
    local srv = servers.scripted { tls = "starttls", auth = { u1 = "p1" } }
    local o = { host = "127.0.0.1", port = srv.port, cafile = servers.certs().ca,
      username = "u1", password = "p1" }
    local r = assert(smtpkit.send(o, { from = "a@example.com", to = "b@example.com", body = "x\r\n" }))
    assert.is_true(r.ok)
    assert.equal("u1", srv:wait_messages(1)[1].auth)
    o.password = "nope"
    local r2, err = smtpkit.send(o, { from = "a@example.com", to = "b@example.com", body = "x\r\n" })
    assert.is_nil(r2)
    assert.equal("auth", err.kind)
    srv:stop()
  end)

  it("an 8-bit body goes with BODY=8BITMIME, and is refused before MAIL without 8BITMIME", function()
    local srv = servers.scripted {}
    local body = "Subject: caf\195\169\r\n\r\nd\195\169j\195\160 vu\r\n"
    local r = assert(send(srv, { from = "a@example.com", to = "b@example.com", body = body }))
    assert.is_true(r.ok)
    local got = srv:wait_messages(1)
    assert.matches("BODY=8BITMIME", got[1].mail_params, 1, true)
    assert.equal(body, got[1].data)
    srv:stop()
    local old = servers.scripted { replies = { EHLO = "250-old.example\r\n250 PIPELINING" } }
    local r2, err = send(old, { from = "a@example.com", to = "b@example.com", body = body })
    assert.is_nil(r2)
    assert.equal("validation", err.kind)
    assert.equal(0, #old:messages())
    old:stop()
  end)

  it("AUTH XOAUTH2 with a bearer token", function()
    local srv = servers.scripted { tls = "starttls", xoauth2 = { ["u@example.com"] = "tok-123" } }
    local o = { host = "127.0.0.1", port = srv.port, cafile = servers.certs().ca,
      username = "u@example.com", xoauth2 = "tok-123" }
    local c = assert(smtpkit.connect(o))
    assert.equal("XOAUTH2", c:info().auth)
    assert.is_true(assert(c:send { from = "u@example.com", to = "b@example.com", body = "x\r\n" }).ok)
    c:close()
    assert.equal("u@example.com", srv:wait_messages(1)[1].auth)
    o.xoauth2 = "expired-token"
    local c2, err = smtpkit.connect(o)
    assert.is_nil(c2)
    assert.equal("auth", err.kind)
    srv:stop()
  end)

  it("connection refused and an unknown host: kinds connect and dns", function()
    local port = servers.free_port()
    local c, err = smtpkit.connect { host = "127.0.0.1", port = port, tls = "none" }
    assert.is_nil(c)
    assert.equal("connect", err.kind)
    assert.is_truthy(err.message:find(tostring(port), 1, true))
    c, err = smtpkit.connect { host = "no-such-host.invalid", port = 25, tls = "none" }
    assert.is_nil(c)
    assert.equal("dns", err.kind)
  end)
end)
