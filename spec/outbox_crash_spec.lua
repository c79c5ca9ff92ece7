-- Crash safety for real: a child process (spec/support/outbox_worker.lua)
-- submits a batch through the outbox and sends it to a real local SMTP server
-- (aiosmtpd, answering the end of DATA a little late so that kills land in
-- that window too); the spec kills it with SIGKILL at random moments, many
-- times, restarting it each time. At the end, the server's received messages
-- and the outbox's records account for every message handed over exactly
-- once: delivered (received once), or flagged maybe_delivered (received at
-- most once); none lost, none received twice.
local servers = require "support.servers"
local socket = require "socket"
local outbox = require "smtpkit.outbox"

local LUA = os.getenv("SMTPKIT_LUA") or "lua5.4"
local BUILD = os.getenv("SMTPKIT_BUILD") or "build/5.4"
local N = 80       -- messages in the batch
local KILLS = 20   -- SIGKILLs

local q = servers.q
local function read(path) return servers.read_file(path) or "" end

-- Starts the worker; returns its pid and a file that appears once it has
-- exited. A subshell waits for it (so it is reaped at once, not left a
-- zombie for init to collect) and then writes that file.
local function start_worker(dir, srv, log, n)
  local env = ("LUA_PATH=%s LUA_CPATH=%s"):format(q("lua/?.lua;lua/?/init.lua;spec/?.lua;;"),
    q(BUILD .. "/?.so;;"))
  -- servers.sh drops an ASan LD_PRELOAD for the tools it runs; the worker
  -- loads the sanitized build (make san-specs), so it needs it back.
  for _, var in ipairs{ "LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS" } do
    if os.getenv(var) then env = env .. (" %s=%s"):format(var, q(os.getenv(var))) end
  end
  local done = log .. ".done" .. n
  local cmd = ("%s %s spec/support/outbox_worker.lua %s %s %d %d >>%s 2>&1 </dev/null"):format(
    env, LUA, q(dir), srv.host, srv.port, N, q(log))
  local out, ok = servers.sh(("( %s & echo $! >%s.pid; wait $!; echo $? >%s )"
    .. " >/dev/null 2>&1 </dev/null & while [ ! -s %s.pid ]; do sleep 0.005; done; cat %s.pid"):format(
      cmd, q(done), q(done), q(done), q(done)))
  assert(ok, out)
  return assert(tonumber(out:match("(%d+)%s*$")), out), done
end

local function wait_exit(done, seconds)
  local deadline = socket.gettime() + seconds
  while read(done) == "" do
    if socket.gettime() > deadline then return false end
    socket.sleep(0.005)
  end
  return true
end

describe("outbox crash safety", function()
  teardown(function() servers.stop_all() end)

  -- One campaign: a server with `delays` per step, a kill `pause()` seconds
  -- after each start.
  local function campaign(delays, pause)
    local srv = servers.scripted{ delay = delays }
    local dir = servers.tmpdir() .. "/outbox"
    local log = servers.tmpdir() .. "/worker.log"
    math.randomseed(os.time())
    local kills_in_flight = 0
    for i = 1, KILLS do
      local pid, done = start_worker(dir, srv, log, i)
      socket.sleep(pause(i))
      if read(done) == "" then
        servers.sh("kill -KILL " .. pid)
        kills_in_flight = kills_in_flight + 1
      end
      assert(wait_exit(done, 10), "worker did not stop")
    end
    -- a last run to the end, without a kill
    local _, done = start_worker(dir, srv, log, 0)
    assert(wait_exit(done, 60), "the last worker did not finish:\n" .. read(log))
    assert.equal("0", read(done):match("%d+"), read(log))
    local out = read(log)
    assert.matches("done attempted=", out)
    assert.is_nil(out:find("run failed"), out)
    assert.is_true(kills_in_flight >= KILLS / 2, "most kills must land while the worker runs")

    -- every id the worker reported as submitted is in the outbox
    local ob = assert(outbox.open(dir))
    local by_id, by_tag = {}, {}
    for _, rec in ipairs(assert(ob:list())) do
      local tag = assert(ob:body(rec.id)):match("Message%-ID: <crash%-(m%d+)@smtpkit%.test>")
      assert(tag, "record without a tag: " .. rec.id)
      assert.is_nil(by_tag[tag], "two records for " .. tag)
      by_tag[tag], by_id[rec.id] = rec, tag
    end
    local submitted = 0
    for tag, id in out:gmatch("submitted (m%d+) (%S+)") do
      submitted = submitted + 1
      assert.equal(tag, by_id[id], "submitted " .. tag .. " (" .. id .. ") is missing from the outbox")
    end
    assert.is_true(submitted >= 1)

    -- what the server received, counted by Message-ID
    local got = {}
    for _, m in ipairs(srv:messages()) do
      local tag = m.data:match("Message%-ID: <crash%-(m%d+)@smtpkit%.test>")
      assert(tag, "server got an untagged message")
      got[tag] = (got[tag] or 0) + 1
    end
    local counts = { delivered = 0, maybe = 0, maybe_received = 0 }
    for i = 1, N do
      local tag = "m" .. i
      local rec = by_tag[tag]
      assert(rec, tag .. " was never stored")
      local n = got[tag] or 0
      assert.is_true(n <= 1, tag .. " received " .. n .. " times")
      if rec.maybe_delivered then
        assert.equal("unknown", rec.state, tag)
        counts.maybe = counts.maybe + 1
        counts.maybe_received = counts.maybe_received + n
      else
        assert.equal("delivered", rec.state, tag .. ": " .. tostring(rec.why))
        assert.equal(1, n, tag .. " is recorded delivered but the server has it " .. n .. " times")
        counts.delivered = counts.delivered + 1
      end
    end
    assert.equal(N, counts.delivered + counts.maybe)
    if os.getenv("SMTPKIT_VERBOSE") then
      io.stderr:write(("\n  %d kills while running; %d delivered, %d maybe_delivered (%d received)\n")
        :format(kills_in_flight, counts.delivered, counts.maybe, counts.maybe_received))
    end
    assert.is_true(counts.delivered > 0)
    -- nothing is left half-way
    assert.same({}, ob:list("sending"))
    assert.same({}, ob:list("queued"))
  end

  it("loses nothing and sends nothing twice when the sender is killed at random points", function()
    campaign({ EOD = 0.03 }, function() return math.random() * 0.3 end)
  end)

  it("holds with kills right after submitting, during connect and during DATA", function()
    -- a slow greeting and a slow DATA/end of DATA; the kills come early
    -- (within the submissions and the first connection) or land in the
    -- greeting's or DATA's wait
    campaign({ greeting = 0.05, DATA = 0.02, EOD = 0.05 }, function(i)
      if i % 3 == 1 then return math.random() * 0.04 end      -- submitting
      if i % 3 == 2 then return 0.04 + math.random() * 0.08 end -- connecting
      return 0.1 + math.random() * 0.4                         -- sending
    end)
  end)
end)
