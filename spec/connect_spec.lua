-- The connect timeout of the C transport bounds the whole connect: the name
-- lookup too (a silent DNS server), and no single address that drops SYNs
-- uses it all up when another address would answer. Each case runs a client
-- process in a mount namespace of its own (unshare -m) whose /etc/resolv.conf,
-- /etc/hosts and /etc/gai.conf are the test's: a real resolver talking to a
-- real UDP socket that never answers, and real sockets on 127.0.0.x.
local servers = require "support.servers"
local socket = require "socket"

local LUA = os.getenv("SMTPKIT_LUA") or "lua5.4"
local BUILD = os.getenv("SMTPKIT_BUILD") or "build/5.4"
local q, spit = servers.q, servers.write_file

-- unshare needs root (CAP_SYS_ADMIN); CI and these machines have it.
local function can_unshare()
  local p = io.popen("unshare -m true 2>/dev/null && echo yes")
  local out = p:read("*a")
  p:close()
  return out:find("yes") ~= nil
end

-- Runs `code` (Lua, printing its findings) in a client process whose
-- resolv.conf, hosts and gai.conf are the given texts; returns its output.
local function client_in_namespace(dir, files, code)
  local script = spit(dir .. "/client.lua", "package.path = 'lua/?.lua;lua/?/init.lua;' .. package.path\n"
    .. "package.cpath = '" .. BUILD .. "/?.so;' .. package.cpath\n" .. code)
  local mounts = {}
  for name, text in pairs(files) do
    local f = spit(dir .. "/" .. name, text)
    mounts[#mounts + 1] = "mount --bind " .. q(f) .. " /etc/" .. name
  end
  local cmd = "unshare -m sh -c " .. q(table.concat(mounts, " && ") .. " && exec " .. LUA .. " "
    .. q(script)) .. " 2>&1"
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  p:close()
  return out
end

-- A UDP "DNS server" that reads queries and never answers.
local function silent_dns(ip)
  local u = assert(socket.udp())
  assert(u:setsockname(ip, 53))
  return u
end

describe("the connect timeout (C transport)", function()
  if not can_unshare() then
    pending("needs root for unshare -m (a mount namespace for resolv.conf)")
    return
  end
  teardown(function() servers.stop_all() end)

  it("bounds the name lookup: a DNS server that never answers", function()
    local dir = servers.tmpdir()
    local dns = silent_dns("127.0.0.53")
    local out = client_in_namespace(dir, {
      ["resolv.conf"] = "nameserver 127.0.0.53\noptions timeout:5 attempts:2\n",
      ["hosts"] = "127.0.0.1 localhost\n",
    }, [[
      local smtpkit, socket = require "smtpkit", require "socket"
      local t0 = socket.gettime()
      local c, err = smtpkit.connect { host = "mail.nowhere.test", port = 25, tls = "none",
        timeouts = { connect = 1 } }
      print("kind=" .. tostring(err and err.kind), ("elapsed=%.2f"):format(socket.gettime() - t0))
      print("message=" .. tostring(err))
    ]])
    dns:close()
    assert.truthy(out:find("kind=dns", 1, true), out)
    local elapsed = tonumber(out:match("elapsed=([%d.]+)"))
    -- the resolver alone would wait 5 s x 2 attempts
    assert.truthy(elapsed and elapsed >= 0.9 and elapsed < 3, out)
    assert.truthy(out:find("no answer within the connect timeout", 1, true), out)
  end)

  it("gives each address but the last half of what is left", function()
    local dir = servers.tmpdir()
    local srv = servers.scripted {}
    -- 127.0.0.2 on the same port takes no connection: its accept queue is
    -- full, so further SYNs are dropped and a connect there hangs
    local hole = assert(socket.tcp())
    assert(hole:bind("127.0.0.2", srv.port))
    assert(hole:listen(0))
    local fillers = {}
    for i = 1, 4 do
      local f = socket.tcp()
      f:settimeout(0.2)
      f:connect("127.0.0.2", srv.port)
      fillers[i] = f
    end
    local probe = socket.tcp()
    probe:settimeout(0.5)
    local reached = probe:connect("127.0.0.2", srv.port)
    probe:close()
    assert.is_nil(reached, "the accept queue of 127.0.0.2 is not full")
    local out = client_in_namespace(dir, {
      ["hosts"] = "127.0.0.1 localhost\n127.0.0.2 two.smtpkit.test\n127.0.0.1 two.smtpkit.test\n",
      -- RFC 6724 precedence: 127.0.0.2 first
      ["gai.conf"] = "precedence ::ffff:127.0.0.2/128 100\nprecedence ::ffff:0:0/96 10\n",
    }, [[
      local smtpkit, socket = require "smtpkit", require "socket"
      local lines = {}
      local t0 = socket.gettime()
      local r, err = smtpkit.send({ host = "two.smtpkit.test", port = ]] .. srv.port .. [[,
        tls = "none", timeouts = { connect = 4 },
        trace = function(l) lines[#lines + 1] = l end },
        { from = "a@example.com", to = "b@example.com", body = "Subject: two\r\n\r\nx\r\n" })
      print("ok=" .. tostring(r and r.ok), ("elapsed=%.2f"):format(socket.gettime() - t0))
      print("err=" .. tostring(err))
      print(lines[1])
    ]])
    hole:close()
    for _, f in ipairs(fillers) do f:close() end
    assert.truthy(out:find("ok=true", 1, true), out)
    assert.truthy(out:find("(127.0.0.1:" .. srv.port .. ")", 1, true), out)
    -- 2 s on 127.0.0.2 (half of 4), then 127.0.0.1 at once
    local elapsed = tonumber(out:match("elapsed=([%d.]+)"))
    assert.truthy(elapsed and elapsed >= 1.8 and elapsed < 3.5, out)
    assert.equal(1, #srv:wait_messages(1))
  end)
end)
