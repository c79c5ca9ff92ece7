-- The SMTP engine (csrc/session.c) driven from Lua with scripted server byte
-- streams: the engine does no I/O, so a server here is a small table of
-- replies per command, and bytes move between the two in this file. No socket.
local core = require "smtpkit.core"

local EHLO_FULL = "250-test.example\r\n250-PIPELINING\r\n250-SIZE 1000000\r\n250-8BITMIME\r\n"
  .. "250-SMTPUTF8\r\n250-STARTTLS\r\n250-DSN\r\n250-AUTH PLAIN LOGIN XOAUTH2\r\n"
  .. "250 ENHANCEDSTATUSCODES\r\n"
local EHLO_TLS = EHLO_FULL:gsub("250%-STARTTLS\r\n", "")

-- A scripted server. cfg[VERB] is a reply string or function(line, srv) ->
-- reply; cfg.DOT answers the end of data; cfg.greeting the greeting.
local function new_server(cfg)
  local srv = { out = {}, log = {}, writes = {}, mode = "cmd", buf = "", messages = {},
                tls = false, closed = false, cfg = cfg }
  srv.out[1] = cfg.greeting or "220 test.example ESMTP\r\n"
  local defaults = {
    EHLO = function(_, s) return s.tls and EHLO_TLS or EHLO_FULL end,
    HELO = "250 test.example\r\n",
    STARTTLS = "220 2.0.0 go ahead\r\n",
    AUTH = "235 2.7.0 ok\r\n",
    MAIL = "250 2.1.0 ok\r\n",
    RCPT = "250 2.1.5 ok\r\n",
    DATA = "354 go ahead\r\n",
    DOT = "250 2.0.0 Ok: queued as ABC123\r\n",
    RSET = "250 2.0.0 ok\r\n",
    QUIT = "221 2.0.0 bye\r\n",
    NOOP = "250 ok\r\n",
  }
  local function answer(verb, line)
    local r = cfg[verb]
    if r == nil then r = defaults[verb] end
    if r == nil then r = "500 5.5.1 unknown command\r\n" end
    if type(r) == "function" then r = r(line, srv) end
    return r
  end
  function srv.write(_, bytes)
    srv.writes[#srv.writes + 1] = bytes
    if srv.closed then return end
    srv.buf = srv.buf .. bytes
    local ncmds = 0
    while true do
      if srv.mode == "data" then
        local prefixed = "\r\n" .. srv.buf
        local p = prefixed:find("\r\n.\r\n", 1, true)
        if not p then break end
        local raw = prefixed:sub(3, p + 1)
        srv.buf = prefixed:sub(p + 5)
        srv.messages[#srv.messages + 1] = raw
        srv.log[#srv.log + 1] = "."
        srv.mode = "cmd"
        srv.out[#srv.out + 1] = answer("DOT", raw)
      else
        local i = srv.buf:find("\r\n", 1, true)
        if not i then break end
        local line = srv.buf:sub(1, i - 1)
        srv.buf = srv.buf:sub(i + 2)
        srv.log[#srv.log + 1] = line
        ncmds = ncmds + 1
        if cfg.punish_pipelining and ncmds > 1 then
          -- OpenSMTPD: commands in one write without PIPELINING offered
          srv.out[#srv.out + 1] = "500 5.5.1 Invalid command: Pipelining not supported\r\n"
          srv.closed = true
          return
        end
        local verb
        if srv.auth_cont then
          verb = "AUTHCONT"
        else
          verb = (line:match("^(%S+)") or ""):upper()
        end
        local r = answer(verb, line)
        srv.out[#srv.out + 1] = r
        if verb == "DATA" and r:match("^354") then srv.mode = "data" end
        if verb == "QUIT" then srv.closed = true end
      end
    end
  end
  function srv.read()
    local s = table.concat(srv.out)
    srv.out = {}
    return s
  end
  return srv
end

-- Runs a whole session. opts: session options; jobs: list of
-- {env=, body=} transactions; how: {split = 1 (feed replies byte by byte),
-- chunk = n (body chunk size), on_tls = function(srv) (after the handshake),
-- eof_at = function(srv) -> true to close instead of answering, overlap = true
-- (each next job begun behind the previous end of data, as net.c's batch)}.
local function run(opts, srvcfg, jobs, how)
  how = how or {}
  local trace = {}
  opts = opts or {}
  opts.helo = opts.helo or "client.example"
  if opts.tls == nil then opts.tls = "none" end
  opts.trace = function(dir, line) trace[#trace + 1] = dir .. " " .. line end
  local s = assert(core.session(opts))
  local srv = new_server(srvcfg or {})
  local results, errors = {}, {}
  local job, body_i, pass_seen = 0, 1, 0
  local inflight, prev_job   -- overlap: the jobs of s:result() and s:result_prev()
  local steps = 0
  while true do
    steps = steps + 1
    assert(steps < 100000, "the loop does not end")
    local w = s:want()
    if w == "write" then
      srv:write(assert(s:output()))
    elseif w == "read" then
      if how.eof_at and how.eof_at(srv, s) then
        s:closed()
      else
        local bytes = srv:read()
        if bytes == "" then
          if how.timeout_on_silence then
            srv.phase_at_timeout = s:phase()
            s:timeout()
          else
            s:closed()
          end
        elseif how.split then
          for i = 1, #bytes do
            if s:want() == "failed" then break end
            s:receive(bytes:sub(i, i))
          end
        else
          s:receive(bytes)
        end
      end
    elseif w == "tls" then
      srv.tls = true
      if how.on_tls then how.on_tls(srv) end
      s:tls_done()
    elseif w == "body" then
      local body = jobs[inflight or job].body or "Subject: hi\r\n\r\nhello\r\n"
      if s:body_pass() ~= pass_seen then
        pass_seen = s:body_pass()
        body_i = 1
      end
      if body_i > #body then
        assert(s:body_end())
      else
        local chunk = body:sub(body_i, body_i + (how.chunk or 1e9) - 1)
        local n = s:body(chunk)
        if n then body_i = body_i + n end
      end
    elseif w == "ready" and how.overlap then
      if prev_job then
        results[prev_job] = s:result_prev()
        assert(results[prev_job].complete, "the previous transaction is over at ready")
        prev_job = nil
      end
      if inflight and s:result().complete then
        results[inflight] = s:result()
        inflight = nil
      end
      if job >= #jobs then
        if inflight then s:overlap(false) else s:quit() end
      else
        job = job + 1
        pass_seen = 0
        s:overlap(true)
        local ok, err = s:begin(jobs[job].env)
        if ok then
          if s:result_prev() then prev_job = inflight end
          inflight = job
          s:overlap(job < #jobs)
        else
          results[job] = false
          errors[job] = err
        end
      end
    elseif w == "ready" then
      if job > 0 and not results[job] then results[job] = s:result() end
      job = job + 1
      if job > #jobs then
        s:quit()
      else
        pass_seen = 0
        local ok, err = s:begin(jobs[job].env)
        if not ok then
          results[job] = false
          errors[job] = err
        end
      end
    else
      if how.overlap then
        if prev_job then results[prev_job] = s:result_prev() end
        if inflight then results[inflight] = s:result() end
      elseif job > 0 and job <= #jobs and results[job] == nil then
        results[job] = s:result()
      end
      break
    end
  end
  return { s = s, srv = srv, results = results, errors = errors, trace = trace,
           want = s:want(), err = s:error() }
end

local function env(to, extra)
  local e = { from = "sender@example.org", to = to or { "rcpt@example.com" } }
  for k, v in pairs(extra or {}) do e[k] = v end
  return e
end

local function count(s, pat)
  local n = 0
  for _ in s:gmatch(pat) do n = n + 1 end
  return n
end

describe("session engine", function()
  it("sends one message, pipelined, and parses the queue id", function()
    local r = run({}, {}, { { env = env() } })
    assert.equal("done", r.want)
    local res = r.results[1]
    assert.is_true(res.ok)
    assert.equal("ABC123", res.queue_id)
    assert.equal("delivered", res.outcome)
    assert.equal(250, res.reply.code)
    assert.equal(1, #res.recipients)
    assert.is_true(res.recipients[1].ok)
    assert.is_false(res.maybe_delivered)
    -- MAIL, RCPT and DATA in one write
    local grouped = false
    for _, w in ipairs(r.srv.writes) do
      if w:match("^MAIL FROM:<sender@example.org> SIZE") or w:match("^MAIL FROM") then
        grouped = w:find("RCPT TO:<rcpt@example.com>\r\nDATA\r\n", 1, true) ~= nil
      end
    end
    assert.is_true(grouped)
    assert.equal("Subject: hi\r\n\r\nhello\r\n", r.srv.messages[1])
    assert.same({ "EHLO client.example", "MAIL FROM:<sender@example.org>",
                  "RCPT TO:<rcpt@example.com>", "DATA", ".", "QUIT" }, r.srv.log)
  end)

  it("gives the same result when every reply arrives one byte at a time", function()
    local a = run({}, {}, { { env = env({ "a@x", "b@x" }) } })
    local b = run({}, {}, { { env = env({ "a@x", "b@x" }) } }, { split = true })
    assert.same(a.srv.log, b.srv.log)
    assert.same(a.results, b.results)
    assert.equal("done", b.want)
  end)

  it("puts the last body bytes and the end of data in one write", function()
    local body = ("x"):rep(100) .. "\r\n"
    local r = run({}, {}, { { env = env(), body = body } }, { chunk = 7 })
    local found = false
    for _, w in ipairs(r.srv.writes) do
      if w:sub(-5) == "\r\n.\r\n" then
        found = w == body .. ".\r\n"
      end
    end
    assert.is_true(found)
  end)

  it("streams a body larger than the output buffer in bounded writes", function()
    local line = ("y"):rep(70) .. "\n"
    local body = line:rep(5000)   -- 355 000 octets
    local r = run({ output_max = 16384 }, {}, { { env = env(), body = body } }, { chunk = 3000 })
    assert.is_true(r.results[1].ok)
    for _, w in ipairs(r.srv.writes) do assert.is_true(#w <= 16384) end
    assert.equal(body:gsub("\n", "\r\n"), r.srv.messages[1])
  end)

  it("does not pipeline when PIPELINING is not offered (OpenSMTPD punishes it)", function()
    local ehlo = "250-opensmtpd\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 SIZE 100\r\n"
    local r = run({}, { EHLO = ehlo, punish_pipelining = true },
      { { env = env({ "a@x", "b@x" }) }, { env = env() } })
    assert.is_true(r.results[1].ok)
    assert.is_true(r.results[2].ok)
    assert.equal("done", r.want)
    for _, w in ipairs(r.srv.writes) do
      assert.is_true(count(w, "\r\n") <= 1 or w:sub(-5) == "\r\n.\r\n")
    end
  end)

  it("does not pipeline when the caller turned pipelining off", function()
    local r = run({ pipelining = false }, { punish_pipelining = true }, { { env = env() } })
    assert.is_true(r.results[1].ok)
  end)

  it("reports each recipient and goes on when at least one is accepted", function()
    local n = 0
    local r = run({}, {
      RCPT = function()
        n = n + 1
        if n == 2 then return "550 5.1.1 <b@x>: Recipient address rejected: User unknown\r\n" end
        return "250 2.1.5 ok\r\n"
      end,
    }, { { env = env({ "a@x", "b@x", "c@x" }) } })
    local res = r.results[1]
    assert.is_true(res.ok)
    assert.equal(2, res.accepted)
    assert.is_true(res.recipients[1].ok)
    assert.is_false(res.recipients[2].ok)
    assert.equal(550, res.recipients[2].reply.code)
    assert.equal("5.1.1", res.recipients[2].reply.enhanced)
    assert.equal("bounced", res.recipients[2].outcome)
    assert.is_true(res.recipients[3].ok)
    assert.equal(1, #r.srv.messages)
  end)

  it("sends RSET and reports when no recipient is accepted", function()
    local r = run({}, { RCPT = "550 5.1.1 no such user\r\n", DATA = "554 5.5.1 no valid recipients\r\n" },
      { { env = env({ "a@x", "b@x" }) }, { env = env() } })
    local res = r.results[1]
    assert.is_false(res.ok)
    assert.equal(550, res.reply.code)
    assert.equal("bounced", res.outcome)
    assert.equal(0, #r.srv.messages)
    assert.truthy(table.concat(r.srv.log, "|"):find("DATA|RSET|MAIL", 1, true))
    assert.equal("done", r.want)
  end)

  it("sends RSET without DATA when not pipelining and no recipient is accepted", function()
    local r = run({ pipelining = false }, { RCPT = "550 5.1.1 no such user\r\n" },
      { { env = env({ "a@x" }) } })
    assert.is_false(r.results[1].ok)
    assert.same({ "EHLO client.example", "MAIL FROM:<sender@example.org>", "RCPT TO:<a@x>",
                  "RSET", "QUIT" }, r.srv.log)
  end)

  it("ends an empty message when a server answers 354 with no recipient accepted", function()
    local r = run({}, { RCPT = "550 5.1.1 no\r\n", DATA = "354 go\r\n", DOT = "554 no recipients\r\n" },
      { { env = env() } })
    assert.is_false(r.results[1].ok)
    assert.equal("", r.srv.messages[1])
    assert.equal("done", r.want)
  end)

  it("reports a refused MAIL for every recipient", function()
    local r = run({}, { MAIL = "553 5.7.1 sender rejected\r\n", RCPT = "503 5.5.1 need MAIL\r\n",
                        DATA = "503 5.5.1 need RCPT\r\n" },
      { { env = env({ "a@x", "b@x" }) } })
    local res = r.results[1]
    assert.is_false(res.ok)
    assert.equal(553, res.reply.code)
    assert.equal(553, res.recipients[1].reply.code)
    assert.equal(553, res.recipients[2].reply.code)
    assert.equal("done", r.want)
  end)

  it("reports a refused DATA and a refused end of data", function()
    local r = run({}, { DATA = "451 4.3.0 try later\r\n" }, { { env = env() } })
    assert.is_false(r.results[1].ok)
    assert.equal(451, r.results[1].reply.code)
    assert.is_true(r.results[1].retry)
    local r2 = run({}, { DOT = "554 5.7.1 spam\r\n" }, { { env = env() }, { env = env() } })
    assert.is_false(r2.results[1].ok)
    assert.equal(554, r2.results[1].reply.code)
    assert.equal(554, r2.results[1].recipients[1].reply.code)
    assert.is_false(r2.results[1].maybe_delivered)
    assert.equal("done", r2.want)
  end)

  it("sends many messages on one connection", function()
    local jobs = {}
    for i = 1, 20 do jobs[i] = { env = env({ "r" .. i .. "@x" }), body = "msg " .. i .. "\n" } end
    local r = run({}, {}, jobs)
    assert.equal(20, #r.srv.messages)
    for i = 1, 20 do
      assert.is_true(r.results[i].ok)
      assert.equal("msg " .. i .. "\r\n", r.srv.messages[i])
    end
    assert.equal(1, count(table.concat(r.srv.log, "\n"), "EHLO"))
  end)

  it("continues the rest of the recipients after 452 too many recipients", function()
    local n = 0
    local cfg = {
      MAIL = function() n = 0; return "250 ok\r\n" end,
      RCPT = function()
        n = n + 1
        if n > 2 then return "452 4.5.3 Too many recipients\r\n" end
        return "250 ok\r\n"
      end,
    }
    local to = {}
    for i = 1, 5 do to[i] = "r" .. i .. "@x" end
    local r = run({}, cfg, { { env = env(to), body = "hello\n" } }, { chunk = 2 })
    local res = r.results[1]
    assert.is_true(res.ok)
    assert.equal(5, res.accepted)
    assert.equal(3, #r.srv.messages)   -- 2 + 2 + 1
    for i = 1, 5 do
      assert.is_true(res.recipients[i].ok)
      assert.equal(math.floor((i - 1) / 2) + 1, res.recipients[i].pass)
      assert.equal("hello\r\n", r.srv.messages[res.recipients[i].pass])
    end
  end)

  it("treats 452 on the first recipient as a deferral, not a loop", function()
    local r = run({}, { RCPT = "452 4.5.3 Too many recipients\r\n", DATA = "554 5.5.1 no\r\n" },
      { { env = env({ "a@x", "b@x" }) } })
    assert.is_false(r.results[1].ok)
    assert.equal("deferred", r.results[1].recipients[1].outcome)
    assert.equal(0, #r.srv.messages)
  end)

  it("keeps the pipelining window bounded", function()
    local to = {}
    for i = 1, 500 do to[i] = ("r%03d@example.com"):format(i) end
    local r = run({ pipeline_window = 1024 }, {}, { { env = env(to) } })
    assert.is_true(r.results[1].ok)
    assert.equal(500, r.results[1].accepted)
    for _, w in ipairs(r.srv.writes) do assert.is_true(#w <= 1024 + 64) end
    assert.is_true(#r.srv.writes > 10)
  end)

  it("keeps at most a bounded number of commands in flight whatever the window", function()
    local to = {}
    for i = 1, 1000 do to[i] = "r" .. i .. "@x" end
    local r = run({ pipeline_window = 10000000, output_max = 1000000 }, {}, { { env = env(to) } })
    assert.is_true(r.results[1].ok)
    assert.equal(1000, r.results[1].accepted)
  end)

  it("falls back to HELO on 500/502", function()
    for _, code in ipairs({ "500", "502" }) do
      local r = run({}, { EHLO = code .. " 5.5.2 what\r\n" }, { { env = env() } })
      assert.is_true(r.results[1].ok)
      assert.equal("HELO client.example", r.srv.log[2])
      assert.is_nil(r.s:capabilities().pipelining)
    end
  end)

  it("refuses 8BITMIME and SMTPUTF8 needs when HELO was all the server took", function()
    local r = run({}, { EHLO = "502 no\r\n" },
      { { env = env(nil, { body_8bit = true }) }, { env = env({ "jörg@x" }) } })
    assert.equal("validation", r.errors[1].kind)
    assert.matches("8BITMIME", tostring(r.errors[1]))
    assert.equal("validation", r.errors[2].kind)
    assert.matches("SMTPUTF8", r.errors[2].message)
    for _, l in ipairs(r.srv.log) do assert.is_nil(l:match("^MAIL")) end
  end)

  it("adds SIZE, BODY=8BITMIME, SMTPUTF8 and DSN parameters when offered", function()
    local r = run({}, {}, { { env = { from = "é@x", size = 1234, body_8bit = true,
      to = { { address = "ü@x", notify = { "SUCCESS", "FAILURE" }, orcpt = "a+b=c@x" } },
      dsn_ret = "HDRS", dsn_envid = "id 1" } } })
    assert.equal("MAIL FROM:<é@x> SIZE=1234 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=id+201",
      r.srv.log[2])
    assert.equal("RCPT TO:<ü@x> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+2Bb+3Dc@x", r.srv.log[3])
  end)

  it("leaves DSN parameters out when DSN is not offered (aiosmtpd refuses them)", function()
    local r = run({}, { EHLO = "250-x\r\n250 PIPELINING\r\n" },
      { { env = { from = "a@x", to = { { address = "b@x", notify = "NEVER" } } } } })
    assert.equal("RCPT TO:<b@x>", r.srv.log[3])
  end)

  it("refuses addresses that could inject commands, before any byte is sent", function()
    local bad = { "a@x\r\nRSET", "a@x\nDATA", "a@x\0b", "<a@x>", "a@x> NOTIFY=NEVER", "a b@x",
                  "a@x\t", "", ("a"):rep(300) .. "@x", "a@\127x" }
    for _, addr in ipairs(bad) do
      for _, where in ipairs({ "to", "from" }) do
        if not (where == "from" and addr == "") then
          local s = assert(core.session({ tls = "none" }))
          s:receive("220 hi\r\n")
          s:output()
          s:receive("250 PIPELINING\r\n")
          assert.equal("ready", s:want())
          local e = { from = "ok@x", to = { "ok@x" } }
          if where == "to" then e.to = { addr } else e.from = addr end
          local ok, err = s:begin(e)
          assert.is_nil(ok)
          assert.equal("validation", err.kind)
          assert.is_nil(s:output())
          assert.equal("ready", s:want())
        end
      end
    end
  end)

  it("takes the null sender <>", function()
    local r = run({}, {}, { { env = { from = "", to = { "a@x" } } } })
    assert.equal("MAIL FROM:<>", r.srv.log[2])
  end)

  describe("greeting", function()
    for _, code in ipairs({ "554", "421" }) do
      it("refuses cleanly on a " .. code .. " greeting, with the reply", function()
        local r = run({}, { greeting = code .. " 5.7.1 go away\r\n" }, { { env = env() } })
        assert.equal("failed", r.want)
        assert.equal("server", r.err.kind)
        assert.equal(tonumber(code), r.err.reply.code)
        assert.matches("go away", tostring(r.err))
        assert.is_table(r.err.classification)
      end)
    end
    it("fails on garbage", function()
      local r = run({}, { greeting = "HTTP/1.1 400 Bad Request\r\n" }, { { env = env() } })
      assert.equal("protocol", r.err.kind)
    end)
  end)

  describe("STARTTLS", function()
    it("upgrades, forgets the capabilities and sends EHLO again", function()
      local r = run({ tls = "starttls" }, {}, { { env = env() } })
      assert.same({ "EHLO client.example", "STARTTLS", "EHLO client.example",
                    "MAIL FROM:<sender@example.org>", "RCPT TO:<rcpt@example.com>", "DATA", ".",
                    "QUIT" }, r.srv.log)
      assert.is_true(r.s:tls())
      assert.is_nil(r.s:capabilities().starttls)
    end)

    it("fails with tls_required when STARTTLS is not offered, sending nothing but QUIT", function()
      local r = run({ tls = "starttls" }, { EHLO = "250-x\r\n250 PIPELINING\r\n" },
        { { env = env() } })
      assert.equal("failed", r.want)
      assert.equal("tls_required", r.err.kind)
      assert.same({ "EHLO client.example", "QUIT" }, r.srv.log)
    end)

    it("is the default policy", function()
      local s = assert(core.session({}))
      s:receive("220 hi\r\n")
      s:output()
      s:receive("250 PIPELINING\r\n")
      assert.equal("write", s:want())
      assert.equal("QUIT\r\n", s:output())
      assert.equal("failed", s:want())
      assert.equal("tls_required", s:error().kind)
    end)

    it("goes on in plaintext when opportunistic and not offered", function()
      local r = run({ tls = "opportunistic" }, { EHLO = "250-x\r\n250 PIPELINING\r\n" },
        { { env = env() } })
      assert.is_true(r.results[1].ok)
      assert.is_false(r.s:tls())
    end)

    it("fails on STARTTLS response injection (bytes after the 220)", function()
      local r = run({ tls = "starttls" },
        { STARTTLS = "220 go ahead\r\n250-evil\r\n250 AUTH PLAIN\r\n" }, { { env = env() } })
      assert.equal("failed", r.want)
      assert.equal("tls_required", r.err.kind)
      assert.matches("injection", r.err.message)
      assert.is_false(r.s:tls())
    end)

    it("fails on injection split across reads too", function()
      local r = run({ tls = "starttls" }, { STARTTLS = "220 go ahead\r\n250 x\r\n" },
        { { env = env() } }, { split = true })
      assert.equal("tls_required", r.err.kind)
    end)

    it("fails when the server refuses STARTTLS and TLS is required", function()
      local r = run({ tls = "starttls" }, { STARTTLS = "454 4.7.0 TLS not available\r\n" },
        { { env = env() } })
      assert.equal("tls_required", r.err.kind)
      assert.equal(454, r.err.reply.code)
    end)

    it("asks for the handshake first with implicit TLS", function()
      local s = assert(core.session({ tls = "implicit" }))
      assert.equal("tls", s:want())
      assert.equal("connect", s:phase())
      assert(s:tls_done())
      assert.equal("read", s:want())
      assert.is_true(s:tls())
      local r = run({ tls = "implicit" }, {}, { { env = env() } })
      assert.is_true(r.results[1].ok)
      assert.same("EHLO client.example", r.srv.log[1])
    end)
  end)

  describe("AUTH", function()
    local function authlog(r)
      local t = {}
      for _, l in ipairs(r.srv.log) do if l:match("^AUTH") then t[#t + 1] = l end end
      return t
    end

    it("uses PLAIN after TLS and keeps the credentials out of the trace", function()
      local r = run({ tls = "starttls", username = "user", password = "s3cr3t-pw" }, {},
        { { env = env() } })
      assert.is_true(r.results[1].ok)
      assert.equal("AUTH PLAIN AHVzZXIAczNjcjN0LXB3", authlog(r)[1])
      assert.equal("PLAIN", r.s:auth_mechanism())
      local t = table.concat(r.trace, "\n")
      assert.is_nil(t:find("s3cr3t", 1, true))
      assert.is_nil(t:find("AHVzZXIAczNjcjN0LXB3", 1, true))
      assert.truthy(t:find("AUTH PLAIN [redacted]", 1, true))
    end)

    it("uses LOGIN with its 334 challenges", function()
      local step = 0
      local r = run({ tls = "starttls", username = "user", password = "pw" }, {
        EHLO = function(_, s)
          return s.tls and "250-x\r\n250 AUTH LOGIN\r\n" or "250-x\r\n250 STARTTLS\r\n"
        end,
        AUTH = function(_, s) s.auth_cont = true; step = 1; return "334 VXNlcm5hbWU6\r\n" end,
        AUTHCONT = function(line, s)
          step = step + 1
          if step == 2 then assert.equal("dXNlcg==", line); return "334 UGFzc3dvcmQ6\r\n" end
          assert.equal("cHc=", line)
          s.auth_cont = false
          return "235 2.7.0 ok\r\n"
        end,
      }, { { env = env() } })
      assert.is_true(r.results[1].ok)
      assert.equal("LOGIN", r.s:auth_mechanism())
      local t = table.concat(r.trace, "\n")
      assert.is_nil(t:find("cHc=", 1, true))
      assert.is_nil(t:find("dXNlcg==", 1, true))
    end)

    it("uses XOAUTH2 with a token and reads the error after its 334", function()
      local r = run({ tls = "starttls", username = "u@x", xoauth2_token = "tok" }, {
        AUTH = function(line, s)
          assert.equal("AUTH XOAUTH2 dXNlcj11QHgBYXV0aD1CZWFyZXIgdG9rAQE=", line)
          s.auth_cont = true
          return "334 eyJzdGF0dXMiOiI0MDEifQ==\r\n"
        end,
        AUTHCONT = function(line, s)
          assert.equal("", line)
          s.auth_cont = false
          return "535 5.7.8 Username and Password not accepted\r\n"
        end,
      }, { { env = env() } })
      assert.equal("auth", r.err.kind)
      assert.equal(535, r.err.reply.code)
      assert.is_table(r.err.classification)
      assert.is_nil(table.concat(r.trace, "\n"):find("tok", 1, true))
    end)

    for _, reply in ipairs({ "535 5.7.8 bad credentials", "534 5.7.9 web login required",
                             "454 4.7.0 temporary failure", "530 5.7.0 must issue STARTTLS" }) do
      it("reports " .. reply:sub(1, 3) .. " as kind auth with its classification", function()
        local r = run({ tls = "starttls", username = "u", password = "p" },
          { AUTH = reply .. "\r\n" }, { { env = env() } })
        assert.equal("auth", r.err.kind)
        assert.equal(tonumber(reply:sub(1, 3)), r.err.reply.code)
        assert.is_string(r.err.classification.outcome)
        assert.same({ "EHLO client.example", "STARTTLS", "EHLO client.example",
                      "AUTH PLAIN AHUAcA==", "QUIT" }, r.srv.log)
      end)
    end

    it("sends a long XOAUTH2 token (OAuth2 tokens run to KiBs) in one AUTH line", function()
      local token = ("t"):rep(4000)
      local seen
      local r = run({ tls = "starttls", username = "u@x", xoauth2_token = token }, {
        AUTH = function(line) seen = line; return "235 ok\r\n" end }, { { env = env() } })
      assert.is_true(r.results[1].ok)
      assert.is_true(#seen > 5000 and #seen <= 12286)
      assert.is_nil(table.concat(r.trace, "\n"):find("dHR0dHR0", 1, true))
      local s, err = core.session({ username = "u", xoauth2_token = ("t"):rep(5000) })
      assert.is_nil(s)
      assert.equal("validation", err.kind)
    end)

    local function cram(user, password, challenge, tls)
      local got
      local r = run({ tls = tls and "starttls" or "none", username = user, password = password,
                      allow_plaintext_auth = true }, {
        EHLO = function(_, s)
          if tls and not s.tls then return "250-x\r\n250 STARTTLS\r\n" end
          return "250-x\r\n250 AUTH PLAIN LOGIN CRAM-MD5\r\n"
        end,
        AUTH = function(line, s)
          if line ~= "AUTH CRAM-MD5" then got = line; return "235 ok\r\n" end
          s.auth_cont = true
          return "334 " .. challenge .. "\r\n"
        end,
        AUTHCONT = function(line, s) s.auth_cont = false; got = line; return "235 ok\r\n" end,
      }, { { env = env() } })
      return got, r
    end

    it("uses CRAM-MD5 in plaintext (RFC 2195's example, RFC 2202's long key)", function()
      local got, r = cram("tim", "tanstaaftanstaaf",
        "PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+")
      assert.equal("dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw", got)
      assert.equal("CRAM-MD5", r.s:auth_mechanism())
      assert.is_true(r.results[1].ok)
      assert.is_nil(table.concat(r.trace, "\n"):find(got, 1, true))
      got = cram("u", ("\170"):rep(80),
        "VGVzdCBVc2luZyBMYXJnZXIgVGhhbiBCbG9jay1TaXplIEtleSAtIEhhc2ggS2V5IEZpcnN0")
      assert.equal("dSA2YjFhYjdmZTRiZDdiZjhmMGI2MmU2Y2U2MWI5ZDBjZA==", got)
      -- over TLS, PLAIN is preferred
      got = cram("u", "p", "PDE+", true)
      assert.equal("AUTH PLAIN AHUAcA==", got)
      -- a challenge that is not base64 is a protocol error
      local _, r2 = cram("u", "p", "***")
      assert.equal("protocol", r2.err.kind)
    end)

    it("never sends credentials without TLS unless allowed", function()
      local r = run({ tls = "none", username = "u", password = "p" }, {}, { { env = env() } })
      assert.equal("tls_required", r.err.kind)
      for _, l in ipairs(r.srv.log) do assert.is_nil(l:match("^AUTH")) end
      local r2 = run({ tls = "none", username = "u", password = "p", allow_plaintext_auth = true },
        {}, { { env = env() } })
      assert.is_true(r2.results[1].ok)
    end)

    it("fails with kind auth when no mechanism fits", function()
      local r = run({ tls = "starttls", username = "u", password = "p" }, {
        EHLO = function(_, s)
          return s.tls and "250-x\r\n250 AUTH GSSAPI NTLM\r\n" or "250-x\r\n250 STARTTLS\r\n"
        end }, { { env = env() } })
      assert.equal("auth", r.err.kind)
    end)
  end)

  describe("a lost connection", function()
    it("after the end of data gives outcome unknown, maybe_delivered", function()
      local r = run({}, {}, { { env = env() } }, {
        eof_at = function(srv) return srv.log[#srv.log] == "." end })
      local res = r.results[1]
      assert.is_false(res.ok)
      assert.is_true(res.maybe_delivered)
      assert.equal("unknown", res.outcome)
      assert.equal("unknown", res.recipients[1].outcome)
      assert.equal("connect", r.err.kind)
      assert.matches("may have been delivered", r.err.message)
    end)

    it("a timeout after the end of data is maybe_delivered too", function()
      local r = run({}, { DOT = "" }, { { env = env() } }, { timeout_on_silence = true })
      assert.is_true(r.results[1].maybe_delivered)
      assert.equal("timeout", r.err.kind)
    end)

    it("before the end of data is a plain deferral", function()
      local r = run({}, {}, { { env = env() } }, {
        eof_at = function(srv) return srv.log[#srv.log] == "DATA" end })
      local res = r.results[1]
      assert.is_false(res.maybe_delivered)
      assert.equal("deferred", res.recipients[1].outcome)
      assert.is_true(res.recipients[1].retry)
      assert.equal("connect", r.err.kind)
    end)

    it("after QUIT is a clean end", function()
      local r = run({}, { QUIT = "" }, { { env = env() } })
      assert.equal("done", r.want)
      assert.is_nil(r.err)
    end)

    it("with 421 in the middle is kind server", function()
      local r = run({}, { RCPT = "421 4.3.2 shutting down\r\n" }, { { env = env() } })
      assert.equal("server", r.err.kind)
      assert.equal(421, r.results[1].recipients[1].reply.code)
      assert.is_true(r.results[1].complete)
    end)

    it("a 421 to RCPT classifies the recipient as the message: by its reply, not network_error", function()
      for _, pipelining in ipairs { true, false } do
        local r = run({ pipelining = pipelining },
          { RCPT = "421 4.7.0 Too many messages, rate limited, try again later\r\n" },
          { { env = env { "one@example.com", "two@example.com" } } })
        local res = r.results[1]
        assert.equal("server", r.err.kind)
        assert.equal(421, res.reply.code)
        for i = 1, 2 do
          local rc = res.recipients[i]
          assert.is_false(rc.ok)
          assert.equal(421, rc.reply.code)
          assert.equal(res.outcome, rc.outcome)
          assert.equal(res.reason, rc.reason)
          assert.equal(r.err.classification.reason, rc.reason)
          assert.are_not.equal("network_error", rc.reason)
        end
      end
    end)

    it("a 421 to DATA gives the accepted recipients that reply's classification", function()
      local r = run({}, { DATA = "421 4.7.0 Too many messages, rate limited, try again later\r\n" },
        { { env = env { "one@example.com", "two@example.com" } } })
      local res = r.results[1]
      assert.equal(421, res.reply.code)
      for i = 1, 2 do
        assert.equal(421, res.recipients[i].reply.code)
        assert.equal(res.reason, res.recipients[i].reason)
        assert.are_not.equal("network_error", res.recipients[i].reason)
      end
    end)

    it("a recipient accepted by RCPT whose message never went out says so", function()
      local r = run({ pipelining = false }, {}, { { env = env { "one@example.com" } } }, {
        eof_at = function(srv) return srv.log[#srv.log] == "DATA" end })
      local rc = r.results[1].recipients[1]
      assert.is_false(rc.ok)
      assert.equal(250, rc.reply.code)   -- its own RCPT reply is kept
      assert.equal("deferred", rc.outcome)
      assert.equal("network_error", rc.reason)
      assert.is_true(rc.retry)
      assert.matches("accepted by RCPT, but the connection ended before the message was sent",
        rc.explanation, 1, true)
      r = run({ pipelining = false }, { RCPT = "" }, { { env = env { "one@example.com" } } },
        { timeout_on_silence = true })
      rc = r.results[1].recipients[1]
      assert.equal("network_error", rc.reason)
      assert.matches("RCPT was not answered in time", rc.explanation, 1, true)
    end)
  end)

  describe("a server that lies", function()
    it("fails on a wrong code class", function()
      for _, cfg in ipairs({ { MAIL = "354 what\r\n" }, { RCPT = "354 what\r\n" },
                             { DATA = "250 no 354\r\n" }, { EHLO = "354 x\r\n" } }) do
        local r = run({}, cfg, { { env = env() } })
        assert.equal("failed", r.want)
        assert.equal("protocol", r.err.kind)
      end
    end)

    it("fails on garbage and bare LF", function()
      for _, g in ipairs({ "garbage\r\n", "250 ok\n", "25", "2500 x\r\n", "\0\0\0\r\n" }) do
        local r = run({}, { MAIL = g }, { { env = env() } })
        assert.equal("failed", r.want)
        assert.is_truthy(({ protocol = true, connect = true })[r.err.kind])
      end
    end)

    it("fails on an endless multi-line reply, in bounded memory", function()
      local s = assert(core.session({ tls = "none" }))
      s:receive("220 hi\r\n")
      s:output()
      local line = "250-" .. ("x"):rep(60) .. "\r\n"
      local ok, err
      for _ = 1, 10000 do
        ok, err = s:receive(line)
        if not ok then break end
      end
      assert.is_nil(ok)
      assert.equal("protocol", err.kind)
    end)

    it("fails on replies nobody asked for", function()
      local r = run({}, { MAIL = "250 ok\r\n250 extra\r\n250 extra\r\n250 extra\r\n250 extra\r\n" },
        { { env = env() } })
      assert.equal("failed", r.want)
      assert.equal("protocol", r.err.kind)
    end)

    it("fails on an unsolicited reply while idle", function()
      local s = assert(core.session({ tls = "none" }))
      s:receive("220 hi\r\n")
      s:output()
      s:receive("250 ok\r\n")
      assert.equal("ready", s:want())
      local ok, err = s:receive("421 4.4.2 idle timeout\r\n")
      assert.is_nil(ok)
      assert.equal("server", err.kind)
    end)

    it("handles smtp-sink's empty last EHLO line", function()
      local r = run({}, { EHLO = "250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 \r\n" },
        { { env = env(nil, { body_8bit = true }) } })
      assert.is_true(r.results[1].ok)
      assert.is_true(r.s:capabilities().pipelining)
    end)

    it("ignores unknown EHLO keywords (Exim's PIPECONNECT)", function()
      local r = run({}, { EHLO = "250-exim\r\n250-SIZE 52428800\r\n250-PIPECONNECT\r\n"
        .. "250-PIPELINING\r\n250 HELP\r\n" }, { { env = env(nil, { size = 10 }) } })
      assert.is_true(r.results[1].ok)
      assert.equal("MAIL FROM:<sender@example.org> SIZE=10", r.srv.log[2])
      assert.equal(52428800, r.s:capabilities().size)
    end)
  end)

  local function full_opts()
    return { tls = "starttls", username = "u", password = "p" }
  end
  local steps = { "greeting", "EHLO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "DOT", "RSET",
                  "QUIT" }
  local phase_of = { greeting = "greeting", EHLO = "ehlo", STARTTLS = "starttls", AUTH = "auth",
                     MAIL = "mail", RCPT = "rcpt", DATA = "data", DOT = "dot", QUIT = "quit" }

  describe("every reply class at every step", function()
    local replies = { "220 x", "221 x", "235 x", "250 x", "354 x", "421 4.0.0 x", "450 4.0.0 x",
                      "452 4.5.3 x", "500 5.0.0 x", "550 5.0.0 x", "554 5.0.0 x", "334 x",
                      "199 x", "600 x" }
    for _, step in ipairs(steps) do
      it("at " .. step, function()
        for _, rep in ipairs(replies) do
          for _, split in ipairs({ false, true }) do
            local cfg = { RCPT = step == "RSET" and "550 5.1.1 no\r\n" or nil,
                          DATA = step == "RSET" and "554 5.5.1 no\r\n" or nil }
            cfg[step] = rep .. "\r\n"
            local r = run(full_opts(), cfg, { { env = env() }, { env = env() } }, { split = split })
            assert.is_truthy(({ done = true, failed = true })[r.want])
            if r.want == "failed" then
              assert.is_string(r.err.kind)
              -- the server answers everything: the engine never waits for nothing
              assert.is_not.equal("connect", r.err.kind)
              assert.is_string(tostring(r.err))
            end
            for _, res in pairs(r.results) do
              if res then
                assert.is_true(res.complete)
                assert.is_boolean(res.ok)
                assert.is_string(res.outcome)
              end
            end
          end
        end
      end)
    end
  end)

  it("keeps its promises against 400 random servers (pipelined or not, any window)", function()
    math.randomseed(20261203)
    local seen = { ok = 0, failed = 0, pass2 = 0, refused = 0 }
    local choices = {
      MAIL = { "250 ok", "250 ok", "250 ok", "451 4.3.0 later", "553 5.7.1 no", "421 4.3.2 bye" },
      RCPT = { "250 ok", "250 ok", "250 ok", "550 5.1.1 unknown", "452 4.5.3 too many",
               "450 4.2.0 greylisted", "552 5.5.3 too many" },
      DATA = { "354 go", "354 go", "354 go", "554 5.5.1 no valid recipients", "451 4.3.0 later" },
      DOT = { "250 2.0.0 Ok: queued as Q", "250 2.0.0 Ok: queued as Q", "554 5.7.1 spam",
              "452 4.3.1 full" },
      RSET = { "250 ok" },
    }
    for round = 1, 400 do
      local cfg = {}
      for verb, list in pairs(choices) do
        cfg[verb] = function() return list[math.random(#list)] .. "\r\n" end
      end
      local to = {}
      for i = 1, math.random(1, 12) do to[i] = "r" .. i .. "@x" end
      local jobs = {}
      for j = 1, math.random(1, 3) do jobs[j] = { env = env(to), body = "m" .. round .. "\n" } end
      local opts = { pipelining = math.random() < 0.7, pipeline_window = math.random(40, 400) }
      local r = run(opts, cfg, jobs, { split = math.random() < 0.2, chunk = math.random(1, 5) })
      assert.is_truthy(({ done = true, failed = true })[r.want])
      if r.want == "failed" then
        assert.equal("server", r.err.kind)   -- only a 421 ends this session
        seen.failed = seen.failed + 1
      end
      for j, res in pairs(r.results) do
        assert.is_true(res.complete)
        assert.equal(#jobs[j].env.to, #res.recipients)
        local n = 0
        for _, rr in ipairs(res.recipients) do
          if rr.ok then n = n + 1 end
          if rr.pass and rr.pass > 1 then seen.pass2 = seen.pass2 + 1 end
          assert.is_string(rr.outcome)
          if rr.ok then assert.equal(250, rr.reply.code) end
        end
        assert.equal(n, res.accepted)
        assert.equal(n > 0, res.ok)
        if res.ok then assert.equal("Q", res.queue_id) end
        if res.ok then seen.ok = seen.ok + 1 else seen.refused = seen.refused + 1 end
      end
      for _, m in ipairs(r.srv.messages) do
        assert.is_truthy(m == "" or m:match("^m%d+\r\n$"))
      end
      local after_quit = false
      for _, l in ipairs(r.srv.log) do
        assert.is_false(after_quit)
        if l == "QUIT" then after_quit = true end
      end
    end
    -- the scenarios did exercise every path
    assert.is_true(seen.ok > 50 and seen.failed > 20 and seen.pass2 > 20 and seen.refused > 50)
  end)

  describe("a silent server", function()
    for _, step in ipairs(steps) do
      if phase_of[step] then
        it("times out at " .. step .. " with kind timeout, in phase " .. phase_of[step], function()
          local cfg = {}
          cfg[step] = ""
          local opts = full_opts()
          opts.pipelining = false   -- a pipelined server would answer the next command
          local r = run(opts, cfg, { { env = env() } }, { timeout_on_silence = true })
          if step == "QUIT" then
            assert.equal("done", r.want)
          else
            assert.equal("timeout", r.err.kind)
            assert.equal(phase_of[step], r.srv.phase_at_timeout)
            assert.equal(step == "DOT", r.results[1] and r.results[1].maybe_delivered or false)
          end
        end)
      end
    end
  end)

  it("checks an idle connection with RSET and keeps the last result", function()
    local s = assert(core.session({ tls = "none" }))
    s:receive("220 hi\r\n")
    s:output()
    s:receive("250 x\r\n")
    assert(s:reset())
    assert.equal("write", s:want())
    assert.equal("RSET\r\n", s:output())
    assert.equal("read", s:want())
    assert.equal("mail", s:phase())
    assert(s:receive("250 2.0.0 ok\r\n"))
    assert.equal("ready", s:want())
    assert(s:reset())
    s:output()
    local ok, err = s:receive("421 4.4.2 idle too long\r\n")
    assert.is_nil(ok)
    assert.equal("server", err.kind)
    assert.equal("mail", s:phase())
  end)

  it("keeps the phase it failed in", function()
    local r = run({}, { RCPT = "garbage\r\n" }, { { env = env() } })
    assert.equal("protocol", r.err.kind)
    assert.equal("rcpt", r.s:phase())
  end)

  describe("the phase it failed in, and whether the message may be resent", function()
    -- pipelined: MAIL, RCPT and DATA go in one write; the phase must be that
    -- of the command whose reply failed the session, not of the next one
    local cases = {
      { "421 to MAIL", { MAIL = "421 4.4.2 idle too long\r\n" }, nil, "mail", true },
      { "421 to RCPT", { RCPT = "421 4.7.0 rate limited\r\n" }, nil, "rcpt", false },
      { "421 to DATA", { DATA = "421 4.3.2 shutting down\r\n" }, nil, "data", false },
      { "a garbage code to RCPT", { RCPT = "199 what\r\n" }, nil, "rcpt", false },
      { "a garbage code to MAIL", { MAIL = "199 what\r\n" }, nil, "mail", false },
      { "EOF before any reply", {}, function(srv) return srv.log[#srv.log] == "DATA" end, "mail", true },
      { "EOF after the end of data", {}, function(srv) return srv.log[#srv.log] == "." end, "dot", false },
    }
    for _, c in ipairs(cases) do
      it(c[1] .. ": phase " .. c[4] .. ", resendable " .. tostring(c[5]), function()
        local r = run({}, c[2], { { env = env { "one@example.com", "two@example.com" } } },
          { eof_at = c[3] })
        assert.equal("failed", r.want)
        assert.equal(c[4], (r.s:phase()))
        assert.equal(c[5], r.s:resendable())
      end)
    end

    it("EOF after MAIL and RCPT were answered (no pipelining): phase data, not resendable", function()
      local r = run({ pipelining = false }, {}, { { env = env() } }, {
        eof_at = function(srv) return srv.log[#srv.log] == "DATA" end })
      assert.equal("data", (r.s:phase()))
      assert.is_false(r.s:resendable())
    end)

    it("a 421 or EOF while idle is resendable; a timeout or a second pass is not", function()
      local s = assert(core.session({ tls = "none" }))
      s:receive("220 hi\r\n")
      s:output()
      s:receive("250 x\r\n")
      assert.equal("ready", s:want())
      assert.is_false(s:resendable())
      s:receive("421 4.4.2 idle too long\r\n")
      assert.equal("mail", (s:phase()))
      assert.is_true(s:resendable())
      local r = run({ pipelining = false }, { MAIL = "" }, { { env = env() } }, { timeout_on_silence = true })
      assert.equal("timeout", r.err.kind)
      assert.equal("mail", (r.s:phase()))
      assert.is_false(r.s:resendable())
      -- 452 too many recipients: pass 2 dies before its MAIL is answered
      local mails = 0
      r = run({ pipelining = false }, {
        MAIL = function() mails = mails + 1 return mails == 1 and "250 ok\r\n" or "" end,
        RCPT = function(line) return line:find("two@", 1, true) and "452 4.5.3 Too many recipients\r\n"
          or "250 ok\r\n" end,
      }, { { env = env { "one@example.com", "two@example.com" } } })
      assert.equal("mail", (r.s:phase()))
      assert.equal(1, r.results[1].accepted)
      assert.is_false(r.s:resendable())
    end)
  end)

  it("tells the phase and its default timeout", function()
    local s = assert(core.session({ tls = "none" }))
    assert.same({ "greeting", 300 }, { s:phase() })
    assert.equal(600, core.phase_timeout("dot"))
    assert.equal(180, core.phase_timeout("data_block"))
    assert.equal(120, core.phase_timeout("data"))
  end)

  it("raises on programming mistakes, returns nil, err on bad values", function()
    assert.has_error(function() core.session({ tls = "maybe" }) end)
    assert.has_error(function() core.session({ helo = 5 }) end)
    local s, err = core.session({ helo = "bad name" })
    assert.is_nil(s)
    assert.equal("validation", err.kind)
    s = assert(core.session({ tls = "none" }))
    assert.has_error(function() s:begin({ from = "a@x", to = { "b@x" } }) end)
    assert.has_error(function() s:body("x") end)
  end)

  it("refuses a body line over 998 octets unless asked to pass it", function()
    local long = ("z"):rep(1200) .. "\n"
    local r = run({}, {}, { { env = env(), body = long } })
    assert.equal("validation", r.err.kind)
    assert.is_false(r.results[1].ok)
    assert.is_false(r.results[1].maybe_delivered)
    local r2 = run({}, {}, { { env = env(nil, { long_lines = true }), body = long } })
    assert.is_true(r2.results[1].ok)
  end)

  it("survives a trace function that raises", function()
    local s = assert(core.session({ tls = "none", trace = function() error("boom") end }))
    assert(s:receive("220 hi\r\n"))
    assert.equal("write", s:want())
  end)

  -- The same engine driven over real sockets by a few lines of LuaSocket (and
  -- LuaSec for STARTTLS), against real servers: smtp-sink and aiosmtpd.
  describe("against real servers", function()
    local servers = require "support.servers"
    local socket = require "socket"

    teardown(function() servers.stop_all() end)

    local function sock_run(port, opts, jobs, tls)
      local sock = socket.tcp()
      sock:settimeout(10)
      assert(sock:connect("127.0.0.1", port))
      sock:setoption("tcp-nodelay", true)
      local conn = sock
      opts.helo = opts.helo or "client.example"
      local s = assert(core.session(opts))
      local results, job, body_i, pass_seen = {}, 0, 1, 0
      while true do
        local w = s:want()
        if w == "write" then
          assert(conn:send(s:output()))
        elseif w == "read" then
          conn:settimeout(10)
          local d, e = conn:receive(1)
          if not d then
            if e == "timeout" then s:timeout() else s:closed() end
          else
            conn:settimeout(0)
            local more, _, partial = conn:receive(65536)
            s:receive(d .. (more or partial or ""))
          end
        elseif w == "tls" then
          local ssl = require "ssl"
          conn = assert(ssl.wrap(sock, { mode = "client", protocol = "any", verify = "peer",
                                         cafile = tls.ca, options = "all" }))
          conn:sni("localhost")
          conn:settimeout(10)
          assert(conn:dohandshake())
          s:tls_done()
        elseif w == "body" then
          local body = jobs[job].body
          if s:body_pass() ~= pass_seen then pass_seen, body_i = s:body_pass(), 1 end
          if body_i > #body then
            s:body_end()
          else
            local n = s:body(body, body_i)
            if n then body_i = body_i + n end
          end
        elseif w == "ready" then
          if job > 0 then results[job] = s:result() end
          job = job + 1
          if job > #jobs then
            s:quit()
          else
            pass_seen = 0
            assert(s:begin(jobs[job].env))
          end
        else
          if job > 0 and job <= #jobs and not results[job] then results[job] = s:result() end
          break
        end
      end
      conn:close()
      return { s = s, results = results, err = s:error(), want = s:want() }
    end

    it("sends 50 pipelined messages to smtp-sink on one connection", function()
      local sink = servers.smtp_sink()
      local jobs = {}
      for i = 1, 50 do
        jobs[i] = { env = env({ "a" .. i .. "@x", "b@x", "c@x" }, { size = 30 }),
                    body = "Subject: " .. i .. "\n\n.leading dot\nbody\n" }
      end
      local r = sock_run(sink.port, { tls = "none" }, jobs)
      assert.equal("done", r.want)
      for i = 1, 50 do
        assert.is_true(r.results[i].ok)
        assert.equal(3, r.results[i].accepted)
      end
      assert.is_true(r.s:capabilities().pipelining)
    end)

    it("delivers a smuggling body to aiosmtpd as one message, byte for byte", function()
      local srv = servers.scripted({})
      local body = "Subject: x\r\n\r\na\n.\nMAIL FROM:<evil@x>\r\n.\r\nRCPT TO:<v@x>\r.\rDATA\n"
        .. "é 8bit\n..two\n."
      local r = sock_run(srv.port, { tls = "none" },
        { { env = env({ "a@x", "b@x" }, { body_8bit = true, size = #body }), body = body } })
      assert.is_true(r.results[1].ok)
      local msgs = srv:wait_messages(1)
      assert.equal(1, #msgs)
      assert.same({ "a@x", "b@x" }, msgs[1].to)
      -- what the server keeps is the body, line ends made CRLF, dots unstuffed
      local want = body:gsub("\r\n", "\n"):gsub("\r", "\n"):gsub("\n", "\r\n") .. "\r\n"
      assert.equal(want, msgs[1].data)
      assert.truthy(msgs[1].mail_params:find("BODY=8BITMIME", 1, true))
    end)

    it("does STARTTLS and AUTH with aiosmtpd, then sends", function()
      local srv = servers.scripted({ tls = "starttls", auth = { user = "pw" } })
      local r = sock_run(srv.port, { tls = "starttls", username = "user", password = "pw" },
        { { env = env(), body = "hi\n" } }, { ca = servers.certs().ca })
      assert.is_nil(r.err)
      assert.is_true(r.results[1].ok)
      local m = srv:wait_messages(1)[1]
      assert.is_true(m.tls)
      assert.equal("user", m.auth)
    end)

    it("refuses STARTTLS response injection from a real server", function()
      local srv = servers.scripted({ tls = "starttls", inject_after_starttls = "250 evil" })
      local r = sock_run(srv.port, { tls = "starttls" }, { { env = env(), body = "hi\n" } },
        { ca = servers.certs().ca })
      assert.equal("tls_required", r.err.kind)
    end)

    it("reports maybe_delivered when the server drops the connection after the data", function()
      local srv = servers.scripted({ drop_after_data = true })
      local r = sock_run(srv.port, { tls = "none" }, { { env = env(), body = "hi\n" } })
      assert.is_true(r.results[1].maybe_delivered)
      assert.equal("unknown", r.results[1].outcome)
    end)

    it("works with a server that does not offer PIPELINING", function()
      local srv = servers.scripted({ pipelining = false })
      local r = sock_run(srv.port, { tls = "none" },
        { { env = env({ "a@x", "b@x" }), body = "one\n" }, { env = env(), body = "two\n" } })
      assert.is_true(r.results[1].ok and r.results[2].ok)
      assert.equal(2, #srv:wait_messages(2))
    end)
  end)
end)

describe("session engine (adversarial review)", function()
  it("a body said to be 7 bit that has an 8-bit octet fails before its end of data", function()
    for _, e8 in ipairs { false, "nil" } do
      local extra = e8 == "nil" and {} or { body_8bit = e8 }
      local body = "Subject: x\r\n\r\nabc\r\ncaf\195\169\r\n"
      local r = run({}, {}, { { env = env(nil, extra), body = body } }, { chunk = 3 })
      assert.equal("failed", r.want)
      assert.equal("validation", r.err.kind)
      assert.truthy(tostring(r.err.message):find("8-bit", 1, true))
      assert.equal(0, #r.srv.messages)   -- no end of data: nothing delivered
      for _, l in ipairs(r.srv.log) do assert.is_nil(l:find("BODY=8BITMIME", 1, true)) end
    end
  end)

  it("a 7-bit body said to be 7 bit still goes, without BODY=", function()
    local r = run({}, {}, { { env = env(nil, { body_8bit = false }), body = "Subject: x\r\n\r\nabc\r\n" } },
      { chunk = 2 })
    assert.is_true(r.results[1].ok)
    assert.equal("MAIL FROM:<sender@example.org>", r.srv.log[2])
  end)

  it("a DSN orcpt given with its rfc822; prefix gets the prefix once", function()
    local r = run({}, {}, { { env = env({ { address = "a@x", orcpt = "rfc822;o+1@x" },
      { address = "b@x", orcpt = "RFC822;b@x" }, { address = "c@x", orcpt = "c@x" } }) } })
    assert.is_true(r.results[1].ok)
    assert.equal("RCPT TO:<a@x> ORCPT=rfc822;o+2B1@x", r.srv.log[3])
    assert.equal("RCPT TO:<b@x> ORCPT=rfc822;b@x", r.srv.log[4])
    assert.equal("RCPT TO:<c@x> ORCPT=rfc822;c@x", r.srv.log[5])
  end)
end)

describe("session engine, overlap (the next message behind the end of data)", function()
  local function bodies(n)
    local jobs = {}
    for i = 1, n do jobs[i] = { env = env(), body = "Subject: m" .. i .. "\r\n\r\nbody " .. i .. "\r\n" } end
    return jobs
  end
  local function dot_then_mail(writes)
    local n = 0
    for _, w in ipairs(writes) do
      if w:find("\r\n.\r\nMAIL FROM:<sender@example.org>", 1, true) then n = n + 1 end
    end
    return n
  end

  for _, split in ipairs { false, true } do
    local how = split and " (replies byte by byte)" or ""
    it("writes each next MAIL, RCPT and DATA with the end of data" .. how, function()
        local r = run({}, {}, bodies(4), { overlap = true, split = split })
        assert.equal("done", r.want)
        assert.equal(4, #r.srv.messages)
        for i = 1, 4 do
          assert.is_true(r.results[i].ok, i)
          assert.is_true(r.results[i].complete)
          assert.equal("ABC123", r.results[i].queue_id)
          assert.truthy(r.srv.messages[i]:find("body " .. i, 1, true))
        end
        assert.equal(3, dot_then_mail(r.srv.writes))
        -- one write per message after the first: body+dot+MAIL/RCPT/DATA
        assert.truthy(#r.srv.writes <= 4 + 2 + 4)
      end)
  end

  it("a refused end of data ends only its own message", function()
    local r = run({}, { DOT = function(_, srv)
      if #srv.messages == 2 then return "554 5.7.1 rejected: spam\r\n" end
      return "250 2.0.0 Ok: queued as Q" .. #srv.messages .. "\r\n"
    end }, bodies(3), { overlap = true })
    assert.is_true(r.results[1].ok)
    assert.equal("Q1", r.results[1].queue_id)
    assert.is_false(r.results[2].ok)
    assert.equal(554, r.results[2].reply.code)
    assert.equal("blocked", r.results[2].recipients[1].outcome)   -- the classifier's word for it
    assert.is_true(r.results[3].ok)
    assert.equal("Q3", r.results[3].queue_id)
    assert.equal(2, dot_then_mail(r.srv.writes))
  end)

  it("waits for a too-many-recipients pass before the next message", function()
    local jobs = bodies(2)
    jobs[1].env = env { "a@x", "b@x", "c@x" }
    local n = 0
    local r = run({}, {
      MAIL = function() n = 0 return "250 ok\r\n" end,
      RCPT = function() n = n + 1 return n > 2 and "452 4.5.3 too many recipients\r\n" or "250 ok\r\n" end,
    }, jobs, { overlap = true })
    assert.equal(3, #r.srv.messages)   -- 2 passes for the first, then the second
    assert.is_true(r.results[1].ok)
    assert.equal(3, r.results[1].accepted)
    assert.equal(2, r.results[1].recipients[3].pass)
    assert.is_true(r.results[2].ok)
    -- the first pass's end of data is not followed by the next MAIL
    assert.equal(1, dot_then_mail(r.srv.writes))
  end)

  it("a connection lost with two messages in flight: maybe delivered, and not sent", function()
    local r = run({}, {}, bodies(3), { overlap = true, eof_at = function(srv) return #srv.messages == 1 end })
    assert.equal("failed", r.want)
    assert.equal("connect", r.err.kind)
    assert.truthy(r.err.message:find("may have been delivered", 1, true))
    local first, second = r.results[1], r.results[2]
    assert.is_true(first.maybe_delivered)
    assert.equal("unknown", first.outcome)
    assert.is_false(second.ok)
    assert.is_false(second.maybe_delivered)
    assert.equal("deferred", second.recipients[1].outcome)
    assert.is_true(second.recipients[1].retry)
    assert.is_nil(r.results[3])   -- never begun
    -- nothing of the second was answered (replies come in order): it may go again
    assert.is_true(r.s:resendable())
  end)

  it("a 421 to the end of data ends the message behind it too, with that reply", function()
    local r = run({}, { DOT = "421 4.3.2 shutting down\r\n" }, bodies(2), { overlap = true })
    assert.equal("failed", r.want)
    assert.equal("server", r.err.kind)
    assert.equal(421, r.results[1].reply.code)
    assert.equal("deferred", r.results[1].outcome)
    assert.is_false(r.results[1].maybe_delivered)
    assert.equal(421, r.results[2].reply.code)
    assert.equal("deferred", r.results[2].recipients[1].outcome)
  end)

  it("a next message that fails validation leaves the one in flight going", function()
    local jobs = bodies(3)
    jobs[2].env = env { "bad address@x" }
    local r = run({}, {}, jobs, { overlap = true })
    assert.equal("done", r.want)
    assert.is_true(r.results[1].ok)
    assert.is_false(r.results[2])
    assert.equal("validation", r.errors[2].kind)
    assert.is_true(r.results[3].ok)
    assert.equal(2, #r.srv.messages)
    assert.truthy(r.srv.messages[2]:find("body 3", 1, true))
  end)

  it("never overlaps without PIPELINING", function()
    local r = run({}, { EHLO = "250-test.example\r\n250 8BITMIME\r\n" }, bodies(3), { overlap = true })
    assert.equal("done", r.want)
    for i = 1, 3 do assert.is_true(r.results[i].ok) end
    assert.equal(0, dot_then_mail(r.srv.writes))
  end)

  it("only begin is allowed at an overlapped ready; off, the reply is awaited", function()
    local s = assert(core.session { tls = "none", helo = "c.example" })
    local srv = new_server {}
    local function pump()
      while true do
        local w = s:want()
        if w == "write" then srv:write(s:output())
        elseif w == "read" then s:receive(srv:read())
        else return w end
      end
    end
    assert.equal("ready", pump())
    s:overlap(true)
    assert(s:begin(env()))
    local w
    repeat
      w = s:want()
      if w == "write" then srv:write(s:output())
      elseif w == "read" then s:receive(srv:read())
      elseif w == "body" then
        local n = s:body("Subject: x\r\n\r\nx\r\n")
        assert.truthy(n)
        assert(s:body_end())
      end
    until w == "ready"
    assert.is_false(s:result().complete)     -- its end-of-data reply is outstanding
    assert.has_error(function() s:quit() end,
      "quit called while an end-of-data reply is outstanding (overlap): turn overlap off and wait for ready")
    s:overlap(false)
    assert.equal("write", s:want())
    repeat
      w = s:want()
      if w == "write" then srv:write(s:output()) elseif w == "read" then s:receive(srv:read()) end
    until w == "ready"
    assert.is_true(s:result().complete)
    assert.is_true(s:result().ok)
    assert.is_nil(s:result_prev())
  end)
end)

describe("session engine, resumed connection (a pooled one)", function()
  local CAPS = { esmtp = true, pipelining = true, ["8bitmime"] = true, size = 1000000,
    auth = { PLAIN = true } }

  local function drive(s, srv, envs)
    local results, job, body_given = {}, 0, false
    for _ = 1, 1000 do
      local w = s:want()
      if w == "write" then srv:write(s:output())
      elseif w == "read" then
        local bytes = srv:read()
        if bytes == "" then s:closed() else s:receive(bytes) end
      elseif w == "body" then
        if body_given then s:body_end() else s:body("Subject: x\r\n\r\nx\r\n") body_given = true end
      elseif w == "ready" then
        if job > 0 then results[job] = s:result() end
        job = job + 1
        if job > #envs then s:quit() else assert(s:begin(envs[job])) body_given = false end
      else
        if job > 0 and job <= #envs then results[job] = s:result() end
        return w, results
      end
    end
    error("the loop does not end")
  end

  it("starts ready, and sends RSET in the same write as the first MAIL", function()
    local s = assert(core.session { tls = "none", resume = CAPS })
    assert.equal("ready", s:want())
    assert.same(CAPS, s:capabilities())
    local srv = new_server { greeting = "" }
    assert(s:begin(env()))
    local out = s:output()
    assert.equal("RSET\r\nMAIL FROM:<sender@example.org>\r\nRCPT TO:<rcpt@example.com>\r\nDATA\r\n", out)
    srv:write(out)
    s:receive(srv:read())
    assert.equal("body", s:want())
    assert(s:body("Subject: x\r\n\r\nx\r\n"))
    assert(s:body_end())
    srv:write(s:output())
    s:receive(srv:read())
    assert.equal("ready", s:want())
    assert.is_true(s:result().ok)
    -- the second transaction: no RSET (the end of data ended the first)
    assert(s:begin(env()))
    assert.equal("MAIL FROM", s:output():sub(1, 9))
    for _, l in ipairs(srv.log) do assert.is_nil(l:match("^EHLO")) end
  end)

  it("without PIPELINING, waits for RSET's reply before MAIL", function()
    local caps = { esmtp = true }
    local s = assert(core.session { tls = "none", resume = caps })
    local srv = new_server { greeting = "" }
    assert(s:begin(env()))
    local out = s:output()
    assert.equal("RSET\r\n", out)
    srv:write(out)
    s:receive(srv:read())
    assert.equal("MAIL FROM:<sender@example.org>\r\n", s:output())
  end)

  it("a connection the server closed meanwhile fails before MAIL: resendable", function()
    for _, how in ipairs { "eof", "421" } do
      local s = assert(core.session { tls = "none", resume = CAPS })
      assert(s:begin(env()))
      s:output()
      if how == "eof" then s:closed() else s:receive("421 4.4.2 idle too long\r\n") end
      assert.equal("failed", s:want())
      assert.is_true(s:resendable(), how)
      assert.is_false(s:result().maybe_delivered)
    end
  end)

  it("RSET refused fails the session, kind protocol", function()
    local s = assert(core.session { tls = "none", resume = CAPS })
    local srv = new_server { greeting = "", RSET = "502 5.5.1 no\r\n" }
    local w, results = drive(s, srv, { env() })
    assert.equal("failed", w)
    assert.equal("protocol", s:error().kind)
    assert.is_false(results[1].ok)
    assert.equal(0, #srv.messages)
  end)
end)
