-- smtpkit.outbox, adversarial cases: damaged record files, concurrent
-- submitters in separate processes, a full and a read-only filesystem, the
-- suppression list across open(), and runs against servers that refuse AUTH,
-- are down or time out (every message stays queued or deferred, none lost).
local outbox = require "smtpkit.outbox"
local retry = require "smtpkit.retry"
local servers = require "support.servers"

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("*a")
  local ok, _, code = p:close()
  return out, ok, code
end

local write = servers.write_file

local function ls(d)
  local out = {}
  for n in sh("ls -A " .. d):gmatch("[^\n]+") do out[#out + 1] = n end
  return out
end

local function msg(to, tag)
  return { from = "sender@example.com", to = to,
    body = ("Subject: %s\r\nMessage-ID: <%s@smtpkit.test>\r\n\r\nbody of %s\r\n"):format(tag, tag, tag) }
end

describe("outbox (extra)", function()
  teardown(function() servers.stop_all() end)

  it("skips and reports damaged record files; run() neither crashes nor loses the others", function()
    local dir = servers.tmpdir()
    local ob = assert(outbox.open(dir))
    local good = assert(ob:submit(msg("a@example.net", "good")))
    local m = dir .. "/msg/"
    write(m .. "0000000001-000001-aaaa", "not a record at all\n")
    write(m .. "0000000001-000002-aaaa", 'smtpkit-outbox 1\n{"state":"queued","due":0,"id":"0000000001-0')
    write(m .. "0000000001-000003-aaaa",
      'smtpkit-outbox 1\n{"state":"queued","due":"soon","id":"0000000001-000003-aaaa","msg":{},'
      .. '"rcpts":[{"address":"x@example.net","status":"pending"}]}\n')
    write(m .. "0000000001-000004-aaaa",
      'smtpkit-outbox 1\n{"state":"queued","due":0,"id":"0000000001-000004-aaaa","msg":{},"rcpts":5}\n')
    write(m .. "0000000001-000005-aaaa",
      'smtpkit-outbox 1\n{"state":"queued","due":0,"id":"someone-else","msg":{},'
      .. '"rcpts":[{"address":"x@example.net","status":"pending"}]}\n')
    write(dir .. "/tmp/0000000001-000006-aaaa.1.dead.tmp", "smtpkit-outbox 1\n{")  -- a write cut short
    local all = assert(ob:list())
    assert.equal(1, #all)
    assert.equal(good, all[1].id)
    local damaged = assert(ob:damaged())
    assert.equal(5, #damaged)
    for _, d in ipairs(damaged) do assert.is_string(d.why) end
    local rec, e = ob:get("0000000001-000003-aaaa")
    assert.is_nil(rec)
    assert.equal("store", e.kind)
    assert.matches("damaged record", e.message)
    local sink = servers.scripted{}
    local s = assert(ob:run{ connect = { host = sink.host, port = sink.port, tls = "none" } })
    assert.equal(1, s.attempted)
    assert.equal(1, s.delivered)
    assert.equal(5, s.damaged)
    assert.equal("delivered", assert(ob:get(good)).state)
  end)

  it("gives every message of two processes submitting at once its own readable record", function()
    local dir = servers.tmpdir()
    local worker = servers.tmpdir() .. "/submit.lua"
    write(worker, [[
      local ob = assert(require("smtpkit.outbox").open(arg[1]))
      for i = 1, 200 do
        local id = assert(ob:submit{ from = "s@example.com", to = "r" .. i .. "@example.net",
          body = ("Subject: %s %d\r\n\r\nbody\r\n"):format(arg[2], i) })
        io.write(id, "\n")
      end
    ]])
    local lua = os.getenv("SMTPKIT_LUA") or "lua5.4"
    local env = ("LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='%s/?.so;;' "):format(
      os.getenv("SMTPKIT_BUILD") or "build/5.4")
    local out = sh(("(%s%s %s %s A > %s/a.txt & %s%s %s %s B > %s/b.txt & wait)"):format(
      env, lua, worker, dir, dir, env, lua, worker, dir, dir))
    assert.equal("", out)
    local ids = {}
    local n = 0
    for _, f in ipairs{ "a.txt", "b.txt" } do
      for id in io.open(dir .. "/" .. f):read("*a"):gmatch("[^\n]+") do
        assert.is_nil(ids[id], "duplicate id " .. id)
        ids[id] = true
        n = n + 1
      end
    end
    assert.equal(400, n)
    local ob = assert(outbox.open(dir))
    for id in pairs(ids) do
      local rec = assert(ob:get(id))
      assert.equal("queued", rec.state)
      assert.matches("^Subject: [AB] %d+\r\n", assert(ob:body(id)))
    end
    assert.equal(400, #assert(ob:list("queued")))
    assert.same({}, ls(dir .. "/tmp"))               -- every temporary file renamed
    assert.equal(0, #assert(ob:damaged()))
  end)

  it("answers nil, err of kind store on a full disk and on a read-only filesystem", function()
    local mnt = servers.tmpdir() .. "/mnt"
    assert(os.execute("mkdir -p " .. mnt))
    local _, mounted = sh("mount -t tmpfs -o size=128k tmpfs " .. mnt)
    if not mounted then
      pending("needs root to mount a small tmpfs")
      return
    end
    finally(function() sh("umount " .. mnt) end)
    local ob = assert(outbox.open(mnt .. "/ob"))
    local id1 = assert(ob:submit(msg("a@example.net", "small")))
    local big = msg("a@example.net", "big")
    big.body = big.body .. string.rep("x", 400000)
    local id, e = ob:submit(big)
    assert.is_nil(id)
    assert.equal("store", e.kind)
    assert.matches("No space", e.message)
    assert.same({}, ls(mnt .. "/ob/tmp"))            -- the partial file is removed
    assert.equal(1, #assert(ob:list()))
    assert(select(2, sh("mount -o remount,ro " .. mnt)))
    id, e = ob:submit(msg("b@example.net", "ro"))
    assert.is_nil(id)
    assert.equal("store", e.kind)
    assert.matches("Read%-only", e.message)
    local ob2, e2 = outbox.open(mnt .. "/other")
    assert.is_nil(ob2)
    assert.equal("store", e2.kind)
    local s, e3 = ob:run{ connect = { host = "127.0.0.1", port = servers.free_port(), tls = "none" } }
    assert.is_nil(s)
    assert.equal("store", e3.kind)
    assert.equal("queued", assert(ob:get(id1)).state)  -- still readable, still queued
  end)

  it("keeps the suppression list across open()", function()
    local dir = servers.tmpdir()
    local srv = servers.scripted{ replies = {
      ["RCPT gone@example.net"] = "550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown" } }
    local ob = assert(outbox.open(dir))
    assert(ob:submit(msg("gone@example.net", "s1")))
    assert(ob:run{ connect = { host = srv.host, port = srv.port, tls = "none" } })
    local ob2 = assert(outbox.open(dir))
    local id, e = ob2:submit(msg("Gone <GONE@example.net>", "s2"))
    assert.is_nil(id)
    assert.equal("suppressed", e.kind)
    assert.equal(550, e.code)
    local m = msg("gone@example.net", "s3")
    m.allow_suppressed = true
    assert.is_string(ob2:submit(m))
  end)

  describe("a run against a server that will not take mail", function()
    local function check_nothing_lost(dir, ob, ids, s)
      assert.is_table(s.error)
      assert.equal(0, s.delivered + s.bounced + s.unknown)
      for _, id in ipairs(ids) do
        local rec = assert(ob:get(id))
        assert.is_true(rec.state == "queued" or rec.state == "deferred", rec.state)
      end
      assert.equal(#ids, #assert(ob:list("queued")) + #assert(ob:list("deferred")))
      assert.same({}, ls(dir .. "/tmp"))
    end

    local function submit_three(ob)
      local ids = {}
      for i = 1, 3 do ids[i] = assert(ob:submit(msg("r" .. i .. "@example.net", "n" .. i))) end
      return ids
    end

    it("refusing AUTH", function()
      local srv = servers.scripted{ auth = { user = "right" } }
      local dir = servers.tmpdir()
      local ob = assert(outbox.open(dir))
      local ids = submit_three(ob)
      local s = assert(ob:run{ connect = { host = srv.host, port = srv.port, tls = "none",
        allow_plaintext_auth = true, username = "user", password = "wrong" },
        policy = retry.policy() })
      check_nothing_lost(dir, ob, ids, s)
      assert.equal("auth", s.error.kind)
      assert.same({}, srv:messages())
    end)

    it("that is down", function()
      local dir = servers.tmpdir()
      local ob = assert(outbox.open(dir))
      local ids = submit_three(ob)
      local s = assert(ob:run{ connect = { host = "127.0.0.1", port = servers.free_port(), tls = "none" } })
      check_nothing_lost(dir, ob, ids, s)
      assert.equal("connect", s.error.kind)
    end)

    it("that times out at the greeting", function()
      local srv = servers.scripted{ delay = { greeting = 5 } }
      local dir = servers.tmpdir()
      local ob = assert(outbox.open(dir))
      local ids = submit_three(ob)
      local s = assert(ob:run{ connect = { host = srv.host, port = srv.port, tls = "none",
        timeouts = { connect = 1, greeting = 1, command = 1, data = 1 } } })
      check_nothing_lost(dir, ob, ids, s)
      assert.equal("timeout", s.error.kind)
    end)
  end)
end)

describe("outbox_dir temporary files", function()
  teardown(function() servers.stop_all() end)

  it("are removed by open() once stale (their writer died), never while fresh", function()
    local dir = servers.tmpdir()
    assert(outbox.open(dir))
    write(dir .. "/tmp/0000000001-000001-aaaa.1.dead.tmp", "smtpkit-outbox 1\n{")
    write(dir .. "/tmp/0000000001-000002-aaaa.1.live.tmp", "smtpkit-outbox 1\n{")
    assert(select(2, sh("touch -d '2 hours ago' " .. dir .. "/tmp/0000000001-000001-aaaa.1.dead.tmp")))
    assert(outbox.open(dir))
    assert.same({ "0000000001-000002-aaaa.1.live.tmp" }, ls(dir .. "/tmp"))
  end)
end)

describe("outbox submit durability, seen by strace", function()
  teardown(function() servers.stop_all() end)

  it("fsyncs the temporary file, renames it, fsyncs the directory, then returns the id", function()
    local _, has = sh("command -v strace")
    if not has then
      pending("strace is not installed")
      return
    end
    local d = servers.tmpdir()
    local script = d .. "/one.lua"
    write(script, [[
      local ob = assert(require("smtpkit.outbox").open(arg[1]))
      io.stdout:write(assert(ob:submit{ from = "s@example.com", to = "r@example.net",
        body = "Subject: x\r\n\r\ny\r\n" }), "\n")
      io.stdout:flush()
    ]])
    local env = ("LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='%s/?.so;;' "):format(
      os.getenv("SMTPKIT_BUILD") or "build/5.4")
    local out, ok = sh(env .. "strace -f -e trace=openat,open,fsync,rename,renameat,renameat2,write -o "
      .. d .. "/trace " .. (os.getenv("SMTPKIT_LUA") or "lua5.4") .. " " .. script .. " " .. d .. "/ob")
    if not ok and out:find("ptrace") then
      pending("strace cannot trace here: " .. out)
      return
    end
    assert(ok, out)
    local id = assert(out:match("(%d+%-%d+%-%x+)"))
    local trace = io.open(d .. "/trace"):read("*a")
    local steps, fds = {}, {}
    for line in trace:gmatch("[^\n]+") do
      local path, fd = line:match('open%a*%([^"]*"([^"]+)".-= (%d+)')
      if path then fds[fd] = path end
      local sfd = line:match("fsync%((%d+)%)%s+= 0")
      if sfd then steps[#steps + 1] = "fsync " .. tostring(fds[sfd]) end
      local from, to = line:match('rename%a*%([^"]*"([^"]+)",[^"]*"([^"]+)"%) = 0')
      if from then steps[#steps + 1] = "rename " .. from .. " " .. to end
      if line:find('write(1, "' .. id:sub(1, 24), 1, true) then steps[#steps + 1] = "id" end
    end
    local tmpfile = d .. "/ob/tmp/" .. id
    local want = { "fsync " .. tmpfile, "rename " .. tmpfile, "fsync " .. d .. "/ob/msg", "id" }
    local i = 1
    for _, s in ipairs(steps) do
      if i <= #want and s:sub(1, #want[i]) == want[i] then i = i + 1 end
    end
    assert.is_true(i > #want, "expected, in order: " .. table.concat(want, "; ") .. "\ngot: "
      .. table.concat(steps, "; "))
  end)
end)
