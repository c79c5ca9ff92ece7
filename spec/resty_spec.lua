-- smtpkit in OpenResty: real nginx (Debian's nginx + libnginx-mod-http-lua +
-- lua-resty-core) started by the spec on 127.0.0.1, loading smtpkit.core
-- built for LuaJIT and lua/smtpkit/resty.lua. The spec itself talks HTTP to
-- nginx with LuaSocket, so it runs the same under Lua 5.4 and LuaJIT.
local nginx = require "support.nginx"
local servers = require "support.servers"

local function readelf_needed(so)
  local p = io.popen("readelf -d " .. so .. " 2>&1")
  local out = p:read("*a")
  p:close()
  local libs = {}
  for lib in out:gmatch("%(NEEDED%)%s+Shared library: %[([^%]]+)%]") do libs[#libs + 1] = lib end
  return libs, out
end

describe("smtpkit.core for OpenResty", function()
  it("is built for LuaJIT and links no OpenSSL and no Lua library", function()
    local so = assert(nginx.ensure_jit_build())
    local libs, out = readelf_needed(so)
    assert.is_true(#libs > 0, "readelf found no NEEDED entry:\n" .. out)
    for _, lib in ipairs(libs) do
      assert.is_nil(lib:match("^libssl"), so .. " needs " .. lib)
      assert.is_nil(lib:match("^libcrypto"), so .. " needs " .. lib)
      -- symbols come from the host process (nginx or luajit)
      assert.is_nil(lib:match("^libluajit"), so .. " needs " .. lib)
      assert.is_nil(lib:match("^liblua"), so .. " needs " .. lib)
    end
  end)
end)

describe("real nginx with the Lua module", function()
  local srv
  setup(function()
    srv = assert(nginx.start{
      server = [[
    location = /loaded {
      content_by_lua_block {
        local core = require "smtpkit.core"
        ngx.say("resty.core=", tostring(package.loaded["resty.core"] ~= nil))
        ngx.say("core=", type(core), " version=", tostring(core.version))
        ngx.say("jit=", tostring(jit ~= nil))
        ngx.say("ssl=", tostring(package.loaded["smtpkit.net"] ~= nil))
      }
    }
    location = /echo {
      content_by_lua_block {
        ngx.req.read_body()
        ngx.print(ngx.req.get_method(), " ", ngx.req.get_body_data() or "")
      }
    }
]],
    })
  end)
  teardown(function()
    if srv then srv:stop() end
  end)

  it("loads resty.core and the LuaJIT build of smtpkit.core", function()
    local status, body = srv:request("GET", "/loaded")
    assert.equal(200, status, body)
    assert.matches("resty.core=true", body, 1, true)
    assert.matches("core=table version=", body, 1, true)
    assert.matches("jit=true", body, 1, true)
    assert.matches("ssl=false", body, 1, true)
  end)

  it("answers a POST from a Lua handler", function()
    local status, body = srv:request("POST", "/echo", "hello")
    assert.equal(200, status)
    assert.equal("POST hello", body)
    assert.same({}, srv:errors())
  end)
end)

-- The spec's nginx: one location per phase, all through spec/support/resty_handler.lua.
local LOCATIONS = [[
    location = /send { content_by_lua_block { require("support.resty_handler").handle() } }
    location = /send_many { content_by_lua_block { require("support.resty_handler").handle_many() } }
    location = /send_access {
      access_by_lua_block { require("support.resty_handler").handle() }
      content_by_lua_block { ngx.say("kind=unreached") }
    }
    location = /connect { content_by_lua_block { require("support.resty_handler").handle_connect() } }
    location = /send_timer { content_by_lua_block { require("support.resty_handler").handle_timer() } }
    location = /send_log {
      content_by_lua_block { ngx.say("ok") }
      log_by_lua_block { require("support.resty_handler").handle_log() }
    }
    location = /log_result { content_by_lua_block { ngx.print(ngx.shared.results:get("log") or "") } }
]]

local function urlencode(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

local function query(args)
  local parts, keys = {}, {}
  for k in pairs(args) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do parts[#parts + 1] = urlencode(k) .. "=" .. urlencode(args[k]) end
  return table.concat(parts, "&")
end

-- "key=value" lines -> table
local function parse(text)
  local t = {}
  for line in (text or ""):gmatch("[^\n]+") do
    local k, v = line:match("^([^=]+)=(.*)$")
    if k then t[k] = v end
  end
  return t
end

local function message(n, extra)
  return ("From: sender@smtpkit.test\r\nTo: rcpt@example.org\r\nSubject: resty %s\r\n\r\n"
    .. "marker-%s\r\n.a line that starts with a dot\r\n%s"):format(n, n, extra or "")
end

local function start_nginx(certs)
  return assert(nginx.start{
    http = "lua_shared_dict results 1m;\n  lua_socket_log_errors off;",
    server = LOCATIONS,
    trusted_certificate = certs.ca,
    lua_path = nginx.root() .. "/spec/?.lua",
  })
end


-- One teardown for the servers of every block below (the test certificates
-- stay valid for the whole file).
describe("smtpkit.resty", function()
  teardown(function() servers.stop_all() end)

  describe("in real nginx", function()
    local certs, srv, pf

    local function send(path, args, body)
      local status, text = srv:request("POST", path .. "?" .. query(args), body or message(args.n or 0))
      assert.equal(200, status, text)
      return parse(text), text
    end

    -- Postfix with STARTTLS and AUTH (relaying needs the login)
    local function pf_args(extra)
      local a = { port = pf.port, tls = "starttls", server_name = "localhost", user = pf.user,
        password = pf.password }
      for k, v in pairs(extra or {}) do a[k] = v end
      return a
    end

    setup(function()
      certs = servers.certs()
      pf = servers.postfix{}
      srv = start_nginx(certs)
    end)
    teardown(function()
      if srv then srv:stop() end
      if pf then pf:stop() end
    end)
    after_each(function()
      assert.same({}, srv:raised())
    end)

    describe("with Postfix (STARTTLS, AUTH)", function()
      local first
      it("sends a message", function()
        local r, text = send("/send", pf_args{ n = "one" })
        assert.equal("true", r.ok, text)
        assert.equal("delivered", r.outcome, text)
        assert.equal("true", r.tls, text)
        assert.equal("0", r.reused, text)
        assert.equal("EHLO STARTTLS EHLO AUTH MAIL RCPT DATA .", r.sent, text)
        assert.truthy(r.queue_id and #r.queue_id > 0, text)
        local got = pf:wait_messages(1)
        local m
        for _, x in ipairs(got) do if x.queue_id == r.queue_id then m = x end end
        assert.truthy(m, "Postfix has no message " .. tostring(r.queue_id))
        assert.equal("sender@smtpkit.test", m.from)
        assert.same({ "rcpt@example.org" }, m.to)
        assert.matches("Subject: resty one\n", m.data, 1, true)
        assert.equal("marker-one\n.a line that starts with a dot\n", servers.body_of(m.data))
        first = r
      end)

      it("send_many: several messages, pipelined, each stored once", function()
        local r, text = send("/send_many", pf_args{ count = 5, n = "batch" })
        local ids = {}
        for i = 1, 5 do
          local ok, outcome, _, qid = r["m" .. i]:match("^([^,]+),([^,]+),([^,]+),([^,]+)")
          assert.equal("true", ok, text)
          assert.equal("delivered", outcome, text)
          ids[#ids + 1] = qid
        end
        for i, qid in ipairs(ids) do
          assert.matches("#" .. i .. "\n$", pf:wait_message(qid).data)
        end
      end)

      it("reuses the pooled connection for a second send", function()
        assert.truthy(first, "the first send failed")
        local r, text = send("/send", pf_args{ n = "two" })
        assert.equal("true", r.ok, text)
        assert.is_true(tonumber(r.reused) > 0, text)
        assert.equal("true", r.tls, text)
        -- resumed: no EHLO, no AUTH; RSET in the same write as MAIL
        assert.equal("RSET MAIL RCPT DATA .", r.sent, text)
        pf:wait_messages(2)
      end)

      it("puts `headers` on top of a body that is only text", function()
        local r, text = send("/send", pf_args{ n = "hdr", hdr = "1", to = "hdr@example.org" },
          "just the text\r\n")
        assert.equal("true", r.ok, text)
        local m
        for _ = 1, 50 do
          for _, x in ipairs(pf:messages()) do if x.queue_id == r.queue_id then m = x end end
          if m then break end
          require("socket").sleep(0.1)
        end
        assert.truthy(m, text)
        assert.matches("\nSubject: headers hdr\nX-Request: hdr\n", m.data, 1, true)
        assert.equal("just the text\n", servers.body_of(m.data))
      end)

      it("retires a connection after max_messages", function()
        local seen = {}
        for i = 1, 3 do
          -- its own pool (max_messages is part of no pool name: a new port is)
          local r, text = send("/send", pf_args{ n = "retire" .. i, max_messages = 2,
            to = "retire@example.org", server_name = "127.0.0.1", verify = "0" })
          assert.equal("true", r.ok, text)
          seen[i] = tonumber(r.reused)
        end
        -- 1st new, 2nd reused, then retired (2 messages): the 3rd is new
        assert.same({ 0, 1, 0 }, seen)
      end)

      it("sends from the access phase and from a timer", function()
        local r, text = send("/send_access", pf_args{ n = "access" })
        assert.equal("true", r.ok, text)
        r, text = send("/send_timer", pf_args{ n = "timer" })
        assert.equal("timer", r.phase, text)
        assert.equal("true", r.ok, text)
      end)

      it("returns (never raises) the failure where cosockets are disabled", function()
        local status = srv:request("GET", "/send_log?" .. query(pf_args{ n = "log" }))
        assert.equal(200, status)
        local r
        for _ = 1, 50 do
          local _, text = srv:request("GET", "/log_result")
          r = parse(text)
          if r.raised then break end
          require("socket").sleep(0.05)
        end
        assert.equal("false", r.raised)
        assert.equal("connect", r.kind)
        assert.matches("ngx.timer.at", r.message, 1, true)
      end)

      it("refuses a wrong password with kind auth", function()
        local r, text = send("/send", pf_args{ n = "badpw", password = "wrong", pool = "0" })
        assert.equal("auth", r.kind, text)
      end)

      it("refuses cafile (trust comes from lua_ssl_trusted_certificate)", function()
        local r, text = send("/send", pf_args{ n = "cafile", cafile = certs.ca })
        assert.equal("validation", r.kind, text)
        assert.matches("lua_ssl_trusted_certificate", r.message, 1, true)
      end)

      it("delivers 500 requests from 50 concurrent clients over a pool of 10", function()
        local before = #pf:messages()
        local log_before = #pf:log()
        -- (max_messages high: no connection is retired and replaced here)
        local args = pf_args{ pool_size = 10, backlog = 100, to = "load@example.org",
          max_messages = 100000 }
        local res = assert(srv:load{ path = "/send?" .. query(args), body = message("load"),
          requests = 500, concurrency = 50, timeout = 120 })
        local qids = {}
        for i = 1, 500 do
          local entry = res.results[i]
          assert.truthy(entry, "no answer for request " .. (i - 1))
          local r = parse(entry[2])
          assert.equal(200, entry[1], entry[2])
          assert.equal("true", r.ok, entry[2])
          assert.is_nil(qids[r.queue_id], "queue id twice: " .. tostring(r.queue_id))
          qids[r.queue_id] = i
        end
        local got = pf:wait_messages(before + 500, 120)
        local n = 0
        for _, m in ipairs(got) do
          if m.to[1] == "load@example.org" then
            n = n + 1
            assert.truthy(qids[m.queue_id], "a message nobody sent: " .. m.queue_id)
            qids[m.queue_id] = nil
          end
        end
        assert.equal(500, n)
        assert.same({}, qids)  -- every accepted message arrived, once
        -- Never more than 10 connections open at once, as Postfix saw them
        -- (the pool may close an idle one and open another: that is fine).
        local open, most, total, pos = 0, 0, 0, 0
        local log = pf:log()
        for line, stop in log:gmatch("([^\n]+)\n()") do
          local during = pos >= log_before
          pos = stop
          if line:find("smtpd%[%d+%]: connect from") then
            open = open + 1
            if during then
              total = total + 1
              if open > most then most = open end
            end
          elseif line:find("smtpd%[%d+%]: disconnect from") then
            open = open - 1
          end
        end
        -- ngx_lua 0.10.23 caps a pool's connections at pool_size with a
        -- backlog, but not strictly: a queued connect woken when a
        -- connection comes back may find it taken and open one more. So
        -- this checks that the 500 requests shared a few connections, and
        -- says how many it saw.
        assert.is_true(total >= 1)
        assert.is_true(total <= 50, ("%d connections for 500 requests (at most %d open at once)")
          :format(total, most))
      end)
    end)

    describe("TLS", function()
      it("reports a certificate that does not verify, with the fix", function()
        local s = servers.scripted{ tls = "starttls", cert = certs.selfsigned_cert,
          key = certs.selfsigned_key }
        local r, text = send("/send", { port = s.port, tls = "starttls", server_name = "localhost" })
        assert.equal("tls", r.kind, text)
        assert.matches("certificate verify failed", r.message, 1, true)
        assert.matches("lua_ssl_trusted_certificate", r.message, 1, true)
        assert.same({}, s:messages())
      end)

      it("reports a host name mismatch, with the fix", function()
        local s = servers.scripted{ tls = "starttls", cert = certs.wronghost_cert,
          key = certs.wronghost_key }
        local r, text = send("/send", { port = s.port, tls = "starttls", server_name = "localhost" })
        assert.equal("tls", r.kind, text)
        assert.matches("does not name localhost", r.message, 1, true)
        assert.same({}, s:messages())
      end)

      it("sends over implicit TLS", function()
        local s = servers.scripted{ tls = "implicit" }
        local r, text = send("/send", { port = s.port, tls = "implicit", server_name = "localhost",
          n = "implicit" })
        assert.equal("true", r.ok, text)
        local got = s:wait_messages(1)
        assert.is_true(got[1].tls)
      end)

      it("resumes the TLS session when it connects again", function()
        -- A TLS peer that tells whether each handshake resumed a session:
        -- Python's ssl (Debian's /usr/bin/python3) with just enough SMTP for
        -- a connect and a QUIT. ngx_lua 0.10.23's cosockets speak TLS 1.2 by
        -- default (lua_ssl_protocols); with TLS 1.3 the session that
        -- sslhandshake returns comes before the server's ticket and does
        -- not resume.
        local dir = servers.tmpdir()
        local f = assert(io.open(dir .. "/peer.py", "w"))
        f:write([=[
import socket, ssl, sys
cert, key, d = sys.argv[1:4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ls = socket.socket()
ls.bind(("127.0.0.1", 0)); ls.listen(5); ls.settimeout(60)
open(d + "/port.tmp", "w").write(str(ls.getsockname()[1]))
import os; os.rename(d + "/port.tmp", d + "/port")
for i in range(3):
    c, _ = ls.accept()
    s = ctx.wrap_socket(c, server_side=True)
    s.sendall(b"220 tls.peer ESMTP\r\n")
    f = s.makefile("rb")
    while True:
        line = f.readline()
        if not line: break
        if line[:4].upper() == b"EHLO": s.sendall(b"250-tls.peer\r\n250 8BITMIME\r\n")
        elif line[:4].upper() == b"QUIT": s.sendall(b"221 bye\r\n"); break
        else: s.sendall(b"250 ok\r\n")
    with open(d + "/resumed", "a") as o: o.write("%s\n" % s.session_reused)
    s.close()
]=])
        f:close()
        assert(servers.sh(("setsid timeout 60 /usr/bin/python3 %s/peer.py %s %s %s >%s/peer.log 2>&1 &")
          :format(dir, certs.server_cert, certs.server_key, dir, dir)))
        local port
        for _ = 1, 100 do
          local pf_ = io.open(dir .. "/port")
          if pf_ then port = pf_:read("*a") pf_:close() break end
          require("socket").sleep(0.05)
        end
        assert.truthy(port, "the TLS peer did not start")
        for i = 1, 3 do
          local r, text = send("/connect", { port = port, tls = "implicit", server_name = "localhost",
            pool = "0" })
          assert.equal("true", r.connected, "connection " .. i .. ": " .. text)
        end
        local resumed
        for _ = 1, 50 do
          local rf = io.open(dir .. "/resumed")
          resumed = rf and rf:read("*a")
          if rf then rf:close() end
          if resumed and select(2, resumed:gsub("\n", "")) >= 3 then break end
          require("socket").sleep(0.05)
        end
        assert.equal("False\nTrue\nTrue\n", resumed)
      end)

      it("sends with implicit TLS to Postfix's smtps port", function()
        local r, text = send("/send", pf_args{ port = pf.smtps_port, tls = "implicit", n = "smtps" })
        assert.equal("true", r.ok, text)
      end)
    end)

    describe("server behaviour", function()
      it("classifies a rejected recipient", function()
        local s = servers.scripted{ replies = {
          ["RCPT bad@example.org"] = "550 5.1.1 <bad@example.org>: Recipient address rejected: User unknown",
        } }
        local r, text = send("/send", { port = s.port, tls = "none", to = "bad@example.org", n = "bad" })
        assert.equal("false", r.ok, text)
        assert.equal("bounced", r.outcome, text)
        assert.equal("user_unknown", r.reason, text)
        assert.equal("remove_address", r.action, text)
        assert.equal("false", r.retry, text)
        assert.matches("^bad@example.org,false,550,bounced,user_unknown", r.rcpt1)
        assert.same({}, s:messages())
      end)

      it("delivers to the accepted recipients and reports the refused one", function()
        local s = servers.scripted{ replies = {
          ["RCPT bad@example.org"] = "550 5.1.1 <bad@example.org>: Recipient address rejected: User unknown",
        } }
        local r, text = send("/send", { port = s.port, tls = "none",
        to = "good@example.org,bad@example.org" })
        assert.equal("true", r.ok, text)
        assert.matches("^good@example.org,true,250", r.rcpt1)
        assert.matches("^bad@example.org,false,550", r.rcpt2)
        local got = s:wait_messages(1)
        assert.same({ "good@example.org" }, got[1].to)
      end)

      it("puts a valid X-SMTPAPI header on top and refuses an invalid one before sending", function()
        local s = servers.scripted{}
        local r, text = send("/send", { port = s.port, tls = "none", n = "api",
          smtpapi = '{"category": ["resty"], "unique_args": {"n": "api"}}' })
        assert.equal("true", r.ok, text)
        local got = s:wait_messages(1)
        assert.matches("^X%-SMTPAPI: ", got[1].data)
        assert.matches('"resty"', got[1].data, 1, true)
        r, text = send("/send", { port = s.port, tls = "none", n = "badapi",
          smtpapi = '{"category": ' })
        assert.equal("validation", r.kind, text)
        assert.matches("X-SMTPAPI", r.message, 1, true)
        require("socket").sleep(0.2)
        assert.equal(1, #s:messages())
      end)

      it("send_many: a refused end of data ends only that message", function()
        local s = servers.scripted{ replies = { ["EOD 2"] = "554 5.6.0 message content rejected" } }
        local r, text = send("/send_many", { port = s.port, tls = "none", count = 4, n = "many" })
        assert.equal("true,delivered,false", r.m1:match("^[^,]+,[^,]+,[^,]+"), text)
        assert.matches("^false,", r.m2, text)
        assert.matches("^true,delivered", r.m3, text)
        assert.matches("^true,delivered", r.m4, text)
        assert.equal("3", r.overlapped, text)   -- each next MAIL behind an end of data
        local got = s:wait_messages(3)
        assert.matches("#1\r\n$", got[1].data)
        assert.matches("#3\r\n$", got[2].data)
        assert.matches("#4\r\n$", got[3].data)
      end)

      it("send_many: a drop after an end of data; the message behind it goes again", function()
        local s = servers.scripted{ drop_after_data = 2 }
        local r, text = send("/send_many",
          { port = s.port, tls = "none", count = 5, n = "manydrop", pool = "0" })
        assert.matches("^true,delivered", r.m1, text)
        assert.equal("false,unknown,true", r.m2:match("^[^,]+,[^,]+,[^,]+"), text)
        for i = 3, 5 do assert.matches("^true,delivered", r["m" .. i], text) end
        local got = s:wait_messages(5)
        local tails = {}
        for _, m in ipairs(got) do tails[#tails + 1] = m.data:match("#(%d)\r\n$") end
        table.sort(tails)
        assert.same({ "1", "2", "3", "4", "5" }, tails)   -- each once
      end)

      it("reports maybe_delivered when the server drops after the data", function()
        local s = servers.scripted{ drop_after_data = true }
        local r, text = send("/send", { port = s.port, tls = "none", n = "drop" })
        assert.equal("false", r.ok, text)
        assert.equal("true", r.maybe_delivered, text)
        assert.equal("unknown", r.outcome, text)
      end)

      it("fails cleanly when the server closes before the data", function()
        local s = servers.scripted{ replies = { RCPT = "421 4.3.2 Service shutting down" } }
        local r, text = send("/send", { port = s.port, tls = "none", n = "421" })
        assert.truthy(r.kind, text)
        assert.is_nil(r.maybe_delivered == "true" or nil, text)
        assert.same({}, s:messages())
      end)

      it("reports a 421 to RCPT on a pooled connection, classified as the message, not resent", function()
        local s = servers.scripted{ replies = {
          ["RCPT limited@example.org"] = "421 4.7.0 Too many messages, rate limited, try again later" } }
        local a = { port = s.port, tls = "none", n = "pool421a" }
        local r1, t1 = send("/send", a)
        assert.equal("true", r1.ok, t1)
        a.n, a.to = "pool421b", "limited@example.org"
        local r2, t2 = send("/send", a)
        assert.equal("1", r2.reused, t2)   -- reported on the pooled connection: no second try
        assert.equal("server", r2.kind, t2)
        assert.equal("false", r2.ok, t2)
        assert.equal("421", r2.code, t2)
        assert.matches("^limited@example.org,false,421,[%w_]+," .. r2.reason .. "$", r2.rcpt1)
        assert.are_not.equal("network_error", r2.reason, t2)
        assert.equal(1, #s:messages())
      end)

      it("replaces a stale pooled connection without losing or repeating the message", function()
        -- after one message the server answers the next MAIL with 421 and closes
        local s = servers.scripted{ close_after = 1 }
        local a = { port = s.port, tls = "none" }
        a.n = "stale1"
        local r1, t1 = send("/send", a)
        assert.equal("true", r1.ok, t1)
        a.n = "stale2"
        local r2, t2 = send("/send", a)
        assert.equal("true", r2.ok, t2)
        assert.equal("0", r2.reused, t2)   -- sent over a new connection
        local got = s:wait_messages(2)
        assert.equal(2, #got)
        assert.matches("marker-stale1", got[1].data, 1, true)
        assert.matches("marker-stale2", got[2].data, 1, true)
      end)

      it("replaces a pooled connection the server closed while it was idle", function()
        local s = servers.scripted{ eof_after = 1 }   -- EOF right after each message's reply
        local a = { port = s.port, tls = "none" }
        for i = 1, 3 do
          a.n = "idle" .. i
          local r, text = send("/send", a)
          assert.equal("true", r.ok, text)
        end
        local got = s:wait_messages(3)
        assert.equal(3, #got)
        for i = 1, 3 do assert.matches("marker-idle" .. i, got[i].data, 1, true) end
      end)

      it("needs nginx's resolver for a host name, and says so", function()
        local r, text = send("/send", { host = "localhost", port = 25, tls = "none" })
        assert.equal("dns", r.kind, text)
        assert.matches("resolver", r.message, 1, true)
      end)

      it("bounds a phase as a whole: a trickling server times out", function()
        local s = servers.scripted{ trickle = { EHLO = 0.1 } }
        -- (one byte every 0.1 s: no single read waits 1 s, only the phase as a whole)
        local r, text = send("/send", { port = s.port, tls = "none", timeout_command = 1, pool = "0" })
        assert.equal("timeout", r.kind, text)
      end)

      it("a timeout before the end of data is nil, err (as smtpkit.send answers it)", function()
        local s = servers.scripted{ delay = { RCPT = 3 } }
        local r, text = send("/send", { port = s.port, tls = "none", timeout_command = 0.5, pool = "0" })
        assert.equal("timeout", r.kind, text)
        assert.is_nil(r.ok, text)   -- no result: nothing was delivered, err says why
      end)

      it("refuses to send without TLS when STARTTLS is required and not offered", function()
        local s = servers.scripted{}
        local r, text = send("/send", { port = s.port, tls = "starttls" })
        assert.equal("tls_required", r.kind, text)
        assert.same({}, s:messages())
      end)

      it("reports a refused connection", function()
        local r, text = send("/send", { port = nginx.free_port(), tls = "none" })
        assert.equal("connect", r.kind, text)
      end)
    end)
  end)

  describe("the OpenResty example (examples/openresty)", function()
    local s, srv
    local function read(path)
      local f = assert(io.open(path, "rb"))
      local t = f:read("*a")
      f:close()
      return t
    end

    setup(function()
      local certs = servers.certs()
      s = servers.scripted{ replies = {
        ["RCPT later@example.org"] = "451 4.7.1 <later@example.org>: try again later",
      } }
      -- The example's own nginx.conf, in a prefix laid out like the checkout
      -- (its paths are relative: $prefix/../../lua, $prefix/../../build/jit).
      local root, tmp = nginx.root(), servers.tmpdir()
      local prefix = tmp .. "/examples/openresty"
      assert(servers.sh(("mkdir -p %s/logs %s/temp && ln -s %s/lua %s/lua && ln -s %s/build %s/build"
        .. " && ln -s %s/examples/openresty/mailer.lua %s/mailer.lua"):format(prefix, prefix,
        root, tmp, root, tmp, root, prefix)))
      local port = nginx.free_port()
      local conf = read(root .. "/examples/openresty/nginx.conf")
      local n1, n2, n3
      conf, n1 = conf:gsub("listen 127%.0%.0%.1:8080;", "listen 127.0.0.1:" .. port .. ";")
      conf, n2 = conf:gsub("retry = %b{}", "retry = { base = 0.2, cap = 0.4, jitter = 0, max_age = 60 }")
      conf, n3 = conf:gsub("lua_ssl_trusted_certificate [^;]+;",
        "lua_ssl_trusted_certificate " .. certs.ca .. ";")
      assert.same({ 1, 1, 1 }, { n1, n2, n3 })
      srv = assert(nginx.start{ prefix = prefix, conf = conf, port = port,
        env = { SMTP_HOST = "127.0.0.1", SMTP_PORT = tostring(s.port), SMTP_TLS = "none" } })
    end)
    teardown(function()
      if srv then srv:stop() end
      if s then s:stop() end
    end)

    local function form(t)
      local parts = {}
      for k, v in pairs(t) do parts[#parts + 1] = urlencode(k) .. "=" .. urlencode(v) end
      return table.concat(parts, "&")
    end

    it("sends a mail from a POST", function()
      local status, text = srv:request("POST", "/mail", form{ from = "app@smtpkit.test",
        to = "user@example.org", subject = "Welcome", text = "Hello from nginx" },
        { ["Content-Type"] = "application/x-www-form-urlencoded" })
      assert.equal(200, status, text)
      local r = parse(text)
      assert.equal("sent", r.status, text)
      local got = s:wait_messages(1)
      assert.same({ "user@example.org" }, got[1].to)
      assert.matches("Subject: Welcome", got[1].data, 1, true)
      assert.matches("Hello from nginx", got[1].data, 1, true)
    end)

    it("hands deferred mail to smtpkit.retry and tries again from a timer", function()
      local status, text = srv:request("POST", "/mail", form{ from = "app@smtpkit.test",
        to = "later@example.org", subject = "Later", text = "x" },
        { ["Content-Type"] = "application/x-www-form-urlencoded" })
      assert.equal(202, status, text)
      assert.equal("deferred", parse(text).status, text)
      local st
      for _ = 1, 100 do
        local _, t = srv:request("GET", "/mail/status")
        st = parse(t)
        if tonumber(st.retried) >= 2 then break end
        require("socket").sleep(0.1)
      end
      assert.is_true(tonumber(st.retried) >= 2, "retries: " .. tostring(st.retried))
      assert.same({}, srv:raised())
    end)
  end)
end)
