-- client:send_many over the C transport: each message's MAIL, RCPT and DATA
-- in the same write as the previous message's end of data (one round trip a
-- message), against real servers on 127.0.0.1: a private Postfix (STARTTLS +
-- SASL AUTH) that stores what it receives, and scripted aiosmtpd servers for
-- refusals and drops in the middle of a batch. Nothing is mocked.
local smtpkit = require "smtpkit"
local servers = require "support.servers"

local function lf(s) return (s:gsub("\r\n", "\n")) end

local without_received = servers.without_received

local function msgs(n, from)
  local list = {}
  for i = 1, n do
    list[i] = { from = from or "a@example.com", to = "b@example.com",
      body = "Subject: m" .. i .. "\r\n\r\nmessage " .. i .. "\r\n" }
  end
  return list
end

-- How many times the trace shows a MAIL sent after an end of data and before
-- that end of data's reply: the next message pipelined behind it.
local function overlapped(lines)
  local n, awaiting = 0, false
  for _, l in ipairs(lines) do
    if l == "C: ." then awaiting = true
    elseif l:match("^C: MAIL FROM") and awaiting then n = n + 1
    elseif l:match("^S: 250 ") and l:find("queued", 1, true) then awaiting = false
    end
  end
  return n
end

describe("client:send_many against Postfix (STARTTLS + AUTH)", function()
  local pf
  setup(function() pf = servers.postfix() end)
  teardown(function() servers.stop_all() end)

  it("sends a batch pipelined, and Postfix stores each message's bytes once", function()
    local lines = {}
    local c = assert(smtpkit.connect { host = "127.0.0.1", port = pf.port, cafile = pf.ca,
      username = pf.user, password = pf.password, timeouts = { connect = 5, command = 10, data = 20 },
      trace = function(l) lines[#lines + 1] = l end })
    local f = assert(io.tmpfile())
    f:write("Subject: from a file\r\n\r\n", ("file line .\r\n.starts with a dot\r\n"):rep(2000))
    f:seek("set", 0)
    local parts, k = { "Subject: iterator\r", "\n\r\n", ".", "dot at a chunk start\r\n" }, 0
    local batch = {
      { from = "a@smtpkit.test", to = "bob@example.com", body = "Subject: one\r\n\r\n.x\r\none\r\n" },
      { from = "a@smtpkit.test", to = { "carol@example.org", "dave@example.net" }, body = f },
      { from = "a@smtpkit.test", to = "bob@example.com",
        headers = { Subject = "bad\r\nBcc: x@y" }, body = "x" },
      { from = "a@smtpkit.test", to = "erin@example.com",
        body = function() k = k + 1 return parts[k] end },
      { from = "a@smtpkit.test", to = "bob@example.com", body = "Subject: five\r\n\r\nlast\r\n" },
    }
    local results, errs = c:send_many(batch)
    c:close()
    f:close()
    assert.is_false(results[3])   -- the header with a line end: nothing sent
    assert.equal("validation", errs[3].kind)
    for _, i in ipairs { 1, 2, 4, 5 } do
      assert.is_nil(errs[i], i)
      assert.is_true(results[i].ok, i)
      assert.equal("delivered", results[i].outcome)
    end
    assert.equal(2, results[2].accepted)
    -- 1 -> 2 and 4 -> 5 went behind an end of data (3 was never begun, and
    -- 2's long body ends a write of its own before 4 begins, or behind it)
    assert.truthy(overlapped(lines) >= 2)
    local stored = {}
    for _, i in ipairs { 1, 2, 4, 5 } do
      stored[i] = pf:wait_message(results[i].queue_id, 10, #results[i].recipients)
    end
    assert.equal("Subject: one\n\n.x\none\n", without_received(stored[1].data))
    assert.equal(lf("Subject: from a file\r\n\r\n" .. ("file line .\r\n.starts with a dot\r\n"):rep(2000)),
      without_received(stored[2].data))
    table.sort(stored[2].to)
    assert.same({ "carol@example.org", "dave@example.net" }, stored[2].to)
    assert.equal("Subject: iterator\n\n.dot at a chunk start\n", without_received(stored[4].data))
    assert.equal("Subject: five\n\nlast\n", without_received(stored[5].data))
    -- each queue id once: nothing was sent twice
    local seen = {}
    for _, m in ipairs(pf:messages()) do
      assert.is_nil(seen[m.queue_id])
      seen[m.queue_id] = true
    end
  end)
end)

describe("client:send_many against scripted aiosmtpd servers", function()
  teardown(function() servers.stop_all() end)

  local function connect(srv, extra)
    local o = { host = "127.0.0.1", port = srv.port, tls = "none",
      timeouts = { connect = 5, command = 5, data = 5 } }
    for k, v in pairs(extra or {}) do o[k] = v end
    return assert(smtpkit.connect(o))
  end

  local function bodies_of(list)
    local out = {}
    for i, m in ipairs(list) do out[i] = m.data end
    return out
  end

  it("a refused end of data ends only that message; the others go", function()
    local srv = servers.scripted { replies = { ["EOD 2"] = "554 5.6.0 message content rejected" } }
    local lines = {}
    local c = connect(srv, { trace = function(l) lines[#lines + 1] = l end })
    local results, errs = c:send_many(msgs(4))
    c:close()
    assert.is_nil(next(errs))
    assert.is_true(results[1].ok)
    assert.is_false(results[2].ok)
    assert.equal(554, results[2].reply.code)
    assert.equal("5.6.0", results[2].reply.enhanced)
    assert.is_false(results[2].retry)
    assert.is_true(results[3].ok)
    assert.is_true(results[4].ok)
    assert.equal(3, overlapped(lines))
    assert.same({ "Subject: m1\r\n\r\nmessage 1\r\n", "Subject: m3\r\n\r\nmessage 3\r\n",
      "Subject: m4\r\n\r\nmessage 4\r\n" }, bodies_of(srv:wait_messages(3)))
    srv:stop()
  end)

  it("a drop after an end of data: that message maybe delivered, the one behind it sent again", function()
    local srv = servers.scripted { drop_after_data = 2 }
    local c = connect(srv)
    local results, errs = c:send_many(msgs(5))
    c:close()
    assert.is_true(results[1].ok)
    local second = results[2]
    assert.is_true(second.maybe_delivered)
    assert.equal("unknown", second.outcome)
    assert.equal("connect", second.error.kind)
    assert.is_nil(errs[2])
    for i = 3, 5 do
      assert.is_nil(errs[i], i)
      assert.is_true(results[i].ok, i)
    end
    assert.equal(2, c.connections)
    -- message 2 reached the server (it dropped without a reply); 3 was in
    -- flight behind it, never answered, and went again on the new connection:
    -- each message arrived once
    local got = bodies_of(srv:wait_messages(5))
    table.sort(got)
    local want = {}
    for i = 1, 5 do want[i] = "Subject: m" .. i .. "\r\n\r\nmessage " .. i .. "\r\n" end
    assert.same(want, got)
    srv:stop()
  end)

  it("a 421 behind an end of data: the connection is replaced and nothing is lost or doubled", function()
    local srv = servers.scripted { close_after = 2 }
    local c = connect(srv)
    local results, errs = c:send_many(msgs(5))
    c:close()
    for i = 1, 5 do
      assert.is_nil(errs[i], i)
      assert.is_true(results[i].ok, i)
    end
    assert.equal(3, c.connections)
    assert.equal(5, #srv:wait_messages(5))
    srv:stop()
  end)

  it("without PIPELINING it sends one message after the other", function()
    local srv = servers.scripted { pipelining = false }
    local lines = {}
    local c = connect(srv, { trace = function(l) lines[#lines + 1] = l end })
    local results, errs = c:send_many(msgs(3))
    c:close()
    assert.is_nil(next(errs))
    for i = 1, 3 do assert.is_true(results[i].ok) end
    assert.equal(0, overlapped(lines))
    assert.equal(3, #srv:wait_messages(3))
    srv:stop()
  end)

  it("keeps max_messages per connection", function()
    local srv = servers.scripted {}
    local c = connect(srv, { max_messages = 2 })
    local results = c:send_many(msgs(5))
    c:close()
    for i = 1, 5 do assert.is_true(results[i].ok) end
    assert.equal(3, c.connections)
    srv:stop()
  end)

  it("every message gets a definite result when the server takes nothing", function()
    local srv = servers.scripted { replies = { MAIL = "421 4.7.0 try again later" } }
    local c = connect(srv)
    local results, errs = c:send_many(msgs(3))
    c:close()
    for i = 1, 3 do
      -- the first on each fresh connection is refused with the 421 (a
      -- result), and that answer is final: nothing is sent twice
      local r = results[i] or errs[i].result
      assert.truthy(r or errs[i], i)
      if results[i] then
        assert.is_false(results[i].ok)
        assert.equal("deferred", results[i].outcome)
        assert.equal(421, results[i].reply.code)
      else
        assert.truthy(errs[i].kind)
      end
    end
    assert.equal(0, #srv:messages())
    srv:stop()
  end)

  it("an empty batch sends nothing; a wrong argument raises", function()
    local srv = servers.scripted {}
    local c = connect(srv)
    local results, errs = c:send_many {}
    assert.same({}, results)
    assert.same({}, errs)
    assert.has_error(function() c:send_many("not a list") end)
    -- a wrong type is a programming mistake: it raises before anything is
    -- sent, naming the message
    local ok, e = pcall(c.send_many, c, { msgs(1)[1], { from = "a@x", to = "b@x", body = 42 } })
    assert.is_false(ok)
    assert.matches("send_many's message #2: message 'body' must be a string, a file handle or an "
      .. "iterator function, not number", e, 1, true)
    ok, e = pcall(c.send_many, c, { msgs(1)[1], nil, msgs(1)[1] })
    assert.is_false(ok)
    assert.matches("send_many's message #2 must be a table, not nil", e, 1, true)
    assert.equal(0, #srv:messages())
    assert.is_true(c:send(msgs(1)[1]).ok)   -- still usable
    c:close()
    srv:stop()
  end)
end)
