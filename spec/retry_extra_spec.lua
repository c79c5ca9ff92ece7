-- smtpkit.retry, adversarial cases: hard cap under jitter, option checking,
-- replies classified by the real classifier, the 72 h boundary, state and
-- domain table through a JSON round trip.
local retry = require "smtpkit.retry"
local smtpkit = require "smtpkit"
local json = require "dkjson"

local HOUR = 3600

local sim = require "support.retry_sim"

-- A result whose single recipient got `line` (classified for real) to RCPT.
local function refused(line, addr)
  local c = smtpkit.classify(line)
  local rp = { code = c.code, text = line }
  return { ok = false, outcome = c.outcome, reason = c.reason, action = c.action, reply = rp,
    recipients = { { address = addr or "a@x.example", ok = false, reply = rp, outcome = c.outcome,
      reason = c.reason, action = c.action, retry = c.retry } } }
end

describe("retry.policy (extra)", function()
  it("never waits longer than the cap, whatever the jitter draws", function()
    local p, clock = sim{ base = 300, factor = 2, cap = HOUR, jitter = 0.2 }
    clock.r = 0.999999
    local st, d
    local delays = {}
    for i = 1, 10 do
      d, st = p:decide({ kind = "connect", message = "refused" }, st, { "a@x.example" })
      delays[i] = d.at - clock.t
      clock.t = d.at
    end
    for i, s in ipairs(delays) do assert.is_true(s <= HOUR + 1e-6, "delay " .. i .. " is " .. s) end
    assert.near(360, delays[1], 0.01)                 -- base * 1.2
    assert.near(HOUR, delays[10], 1e-6)
    clock.r = 0                                       -- the low end still jitters below the cap
    d = p:decide({ kind = "connect", message = "refused" }, st, { "a@x.example" })
    assert.near(HOUR * 0.8, d.at - clock.t, 0.01)
  end)

  it("refuses invalid options with error()", function()
    for _, o in ipairs{ { base = 0 / 0 }, { factor = 0 / 0 }, { max_age = 0 / 0 }, { slow = -1 },
      { pause = 0 }, { slow = 10, slow_cap = 1 }, { pause = 100, pause_cap = 10 }, { history = 0 },
      { max_agee = 3 }, { base = "300" }, { jitter = 1 }, { cap = 10, base = 20 }, { base = math.huge } } do
      assert.has_error(function() retry.policy(o) end)
    end
    assert.has_no.error(function() retry.policy{ max_age = math.huge, cap = math.huge } end)
  end)

  it("never retries a 5xx, even one that says try again later", function()
    for _, line in ipairs{ "550 5.7.1 Try again later", "554 Service unavailable; try again later" } do
      local p = sim()
      local d = p:decide(refused(line))
      assert.is_false(d.retry, line)
      assert.is_true(d.give_up, line)
      assert.matches("not retried", d.why)
    end
  end)

  it("retries 452 and 552 too many recipients", function()
    for _, line in ipairs{ "452 4.5.3 Too many recipients", "552 5.5.3 Too many recipients" } do
      local p = sim()
      local d = p:decide(refused(line))
      assert.is_true(d.retry, line)
      assert.equal("retry", d.recipients["a@x.example"])
    end
  end)

  it("gives up exactly at max_age, with why, and not one attempt after it", function()
    local p, clock = sim()
    local res = refused("451 4.7.1 Greylisted, try again later")
    local st, d
    repeat
      d, st = p:decide(res, st)
      if d.retry then
        assert.is_true(d.at <= 72 * HOUR)
        clock.t = d.at
      end
    until not d.retry
    assert.equal(72 * HOUR, clock.t)
    assert.is_true(d.give_up)
    assert.is_true(d.expired)
    assert.matches("^expired: still deferred", d.why)
    assert.equal("failed", d.recipients["a@x.example"])
    assert.is_false(p:expired(st, 72 * HOUR))
    assert.is_true(p:expired(st, 72 * HOUR + 1))
  end)

  it("slows the domain for other messages to it after 450 rate advice", function()
    local p, clock = sim()
    p:decide(refused("450 4.7.1 Rate limited, slow down", "a@x.example"))
    local ok, at = p:ready("x.example", 1)
    assert.is_false(ok)
    assert.equal(10, at)
    assert.is_true(p:ready("y.example", 1))
    clock.t = 20
    -- another message to the same domain, deferred for another reason: its
    -- next attempt still respects the domain's spacing
    local d = p:decide(refused("451 4.3.0 Temporary failure", "b@x.example"))
    assert.is_true(d.at >= 20 + 10)
  end)

  it("decides the same after its state and domain table go through JSON", function()
    local p1, clock = sim()
    local r421 = { kind = "server", message = "421",
      classification = { code = 421, text = "4.7.0 Too many connections, slow down", outcome = "deferred",
        reason = "too_many_connections", action = "reduce_rate", retry = true } }
    local blocked = refused("554 5.7.1 Service unavailable; client host blocked using zen.spamhaus.org",
      "c@y.example")
    local _, s1 = p1:decide(r421, nil, { "a@x.example" })
    p1:decide(blocked)
    local saved_state = json.decode(json.encode(s1))
    local p2 = retry.policy{ domains = json.decode(json.encode(p1:domains())),
      now = function() return clock.t end, random = function() return clock.r end }
    assert.same(p1:domains(), p2:domains())
    clock.t = 500
    local da, sa = p1:decide(r421, s1, { "a@x.example" })
    local db, sb = p2:decide(r421, saved_state, { "a@x.example" })
    assert.equal(da.at, db.at)
    assert.equal(da.why, db.why)
    assert.same(sa, sb)
    assert.same(p1:domains(), p2:domains())
    for _, t in ipairs{ 600, 5000 } do
      assert.same({ p1:ready("y.example", t) }, { p2:ready("y.example", t) })
    end
  end)

  it("says unknown (not ?) when it retries a maybe-delivered message", function()
    local p = sim{ retry_maybe_delivered = true }
    local d = p:decide({ kind = "timeout", message = "no reply after DATA", maybe_delivered = true }, nil,
      { "a@x.example" })
    assert.is_true(d.retry)
    assert.is_true(d.maybe_delivered)
    assert.not_matches("%?", d.why)
    local p2 = sim()
    local d2 = p2:decide({ kind = "timeout", message = "no reply", maybe_delivered = true }, nil,
      { "a@x.example" })
    assert.is_false(d2.retry)
    assert.equal("unknown", d2.recipients["a@x.example"])
  end)
end)
