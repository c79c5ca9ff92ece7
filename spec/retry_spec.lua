-- smtpkit.retry: every decision under a simulated clock and a fixed random
-- source. The results are plain tables of the shape client:send returns (the
-- policy is a pure function of results, clock and random numbers).
local retry = require "smtpkit.retry"

local HOUR = 3600

local sim = require "support.retry_sim"

local function reply(code, enhanced, text)
  return { code = code, enhanced = enhanced, text = text }
end

-- A result whose single recipient was accepted and whose end of DATA got `r`.
local function result(ok, outcome, reason, action, r, addr)
  return { ok = ok, outcome = outcome, reason = reason, action = action,
    retry = outcome == "deferred", reply = r,
    recipients = { { address = addr or "rcpt@example.com", ok = true,
      reply = reply(250, "2.1.5", "Ok") } } }
end

local delivered = function(addr)
  return result(true, "delivered", "accepted", "none", reply(250, "2.0.0", "Ok: queued as 4Xy"), addr)
end

-- A 421 at the greeting: an error of kind "server" with its classification.
local function err421()
  return { kind = "server", message = "421 temporarily deferred",
    classification = { code = 421, text = "Message from (192.0.2.1) temporarily deferred",
      outcome = "deferred", reason = "rate_limited", action = "reduce_rate", retry = true } }
end

-- A RCPT refused with `code` while the message itself went nowhere.
local function rcpt_refused(code, enh, text, outcome, reason, action, addr)
  return { ok = false, outcome = outcome, reason = reason, action = action,
    reply = reply(code, enh, text),
    recipients = { { address = addr or "rcpt@example.com", ok = false, reply = reply(code, enh, text),
      outcome = outcome, reason = reason, action = action, retry = outcome == "deferred" } } }
end

describe("retry.policy", function()
  it("drives a message through 421, then 450, then 250", function()
    local p, clock = sim()
    local d, st = p:decide(err421(), nil, { "rcpt@example.com" })
    assert.is_true(d.retry)
    assert.is_false(d.give_up)
    assert.equal(300, d.at)                        -- base, jitter factor exactly 1
    assert.same({ first = 0, attempts = 1, last = 0, next = 300, why = d.why }, st)
    assert.matches("^retry in 5m: deferred %(rate_limited%) 421", d.why)
    assert.equal("retry", d.recipients["rcpt@example.com"])
    assert.equal(10, p:domains()["example.com"].slow)   -- the 421 slowed the domain

    clock.t = d.at
    d, st = p:decide(rcpt_refused(450, "4.2.1", "too frequent connects from 198.37.147.135",
      "deferred", "rate_limited", "reduce_rate"), st)
    assert.is_true(d.retry)
    assert.equal(300 + 600, d.at)                  -- base * factor
    assert.equal(2, st.attempts)
    assert.equal(20, p:domains()["example.com"].slow)   -- slowed again: doubled

    clock.t = d.at
    d, st = p:decide(delivered(), st)
    assert.is_false(d.retry)
    assert.is_false(d.give_up)
    assert.equal("delivered", d.why)
    assert.equal("delivered", d.recipients["rcpt@example.com"])
    assert.same({ first = 0, attempts = 3, last = 900, why = "delivered" }, st)
    assert.equal(10, p:domains()["example.com"].slow)   -- a delivery halves the spacing
    p:decide(delivered(), nil)
    assert.is_nil(p:domains()["example.com"])           -- and another removes it
  end)

  it("retries a 4xx until 72 hours have passed, then gives up", function()
    local p, clock = sim()
    local d, st = p:decide(rcpt_refused(451, "4.3.0", "Temporary local problem - please try later",
      "deferred", "temporary_failure", "retry"))
    local delays = {}
    while d.retry do
      delays[#delays + 1] = d.at - clock.t
      assert.is_true(d.at > clock.t)
      clock.t = d.at
      d, st = p:decide(rcpt_refused(451, "4.3.0", "Temporary local problem - please try later",
        "deferred", "temporary_failure", "retry"), st)
    end
    assert.is_true(d.give_up)
    assert.is_true(d.expired)
    assert.equal(72 * HOUR, clock.t)               -- the last attempt is at the deadline exactly
    assert.same({ 300, 600, 1200, 2400, 3600 }, { delays[1], delays[2], delays[3], delays[4], delays[5] })
    assert.equal(HOUR, delays[#delays - 1])        -- the cap
    assert.equal(76, st.attempts)
    assert.matches("^expired: still deferred %(temporary_failure%) 451 after 76 attempts over 72h", d.why)
    assert.equal("failed", d.recipients["rcpt@example.com"])
    assert.is_false(p:expired(st))                 -- the deadline itself still gets its attempt
    assert.is_true(p:expired(st, clock.t + 1))
  end)

  it("honours max_age, base, factor, cap and jitter as configured", function()
    local p, clock = sim{ base = 10, factor = 3, cap = 100, jitter = 0.5, max_age = 1000 }
    clock.r = 0                                    -- the shortest jitter: factor 0.5
    local d, st = p:decide({ kind = "timeout", message = "timed out" }, nil)
    assert.equal(5, d.at)
    clock.r = 0.999999
    clock.t = 5
    d, st = p:decide({ kind = "connect", message = "refused" }, st)
    assert.near(5 + 30 * 1.5, d.at, 1e-3)
    clock.t = 900
    d, st = p:decide({ kind = "dns", message = "no such host" }, st)
    assert.equal(1000, d.at)                       -- 100 * 1.5 = 150 would pass the deadline
    clock.t = 1000
    d = p:decide({ kind = "dns", message = "no such host" }, st)
    assert.is_true(d.give_up)
    assert.matches("^expired", d.why)
  end)

  it("never retries a 5xx and asks to remove the address of a 550 user unknown", function()
    local p = sim()
    local d, st = p:decide(rcpt_refused(550, "5.1.1", "Requested action not taken: mailbox unavailable",
      "bounced", "user_unknown", "remove_address", "gone@example.com"))
    assert.is_false(d.retry)
    assert.is_true(d.give_up)
    assert.is_nil(d.at)
    assert.equal("failed", d.recipients["gone@example.com"])
    assert.same({ { address = "gone@example.com", reason = "user_unknown", code = 550,
      text = "Requested action not taken: mailbox unavailable" } }, d.suppress)
    assert.matches("^not retried: bounced %(user_unknown%) 550", d.why)
    assert.equal(1, st.attempts)
    -- a 552 "mailbox full" is not retried either, and does not remove the address
    d = p:decide(rcpt_refused(552, "5.2.2", "mailbox full", "bounced", "mailbox_full", "retry"))
    assert.is_false(d.retry)
    assert.same({}, d.suppress)
  end)

  it("retries a 5xx too-many-recipients, as RFC 5321 asks", function()
    local p = sim()
    local d = p:decide(rcpt_refused(552, "5.5.3", "Too many recipients", "deferred",
      "too_many_recipients", "retry"))
    assert.is_true(d.retry)
  end)

  it("slows a domain that advises a lower rate, and lets others go", function()
    local p, clock = sim()
    clock.t = 1000
    assert.is_true(p:ready("example.com"))
    p:decide(rcpt_refused(452, "4.5.3", "Too many recipients received this hour (throttled)",
      "deferred", "rate_limited", "reduce_rate"))
    local ok, at, why = p:ready("example.com")
    assert.is_false(ok)
    assert.equal(1010, at)
    assert.matches("452", why)
    assert.is_true(p:ready("other.example"))
    clock.t = 1010
    assert.is_true(p:ready("example.com"))
    p:sent("example.com")                          -- spacing between messages: 10 s
    local ok2, at2 = p:ready("example.com")
    assert.is_false(ok2)
    assert.equal(1020, at2)
    -- a second advice doubles the spacing, up to slow_cap
    for _ = 1, 10 do
      p:decide(err421(), nil, { "x@example.com" })
    end
    assert.equal(900, p:domains()["example.com"].slow)
    -- a deferral without rate advice (451) does not slow anything down
    p:decide(rcpt_refused(451, "4.3.0", "local problem", "deferred", "temporary_failure", "retry",
      "a@calm.example"))
    assert.is_nil(p:domains()["calm.example"])
  end)

  it("pauses a domain that blocks us, and the next retries there wait for it", function()
    local p, clock = sim()
    local d = p:decide(rcpt_refused(554, "5.7.1",
      "Service unavailable; client host blocked using zen.spamhaus.org",
      "blocked", "blocklisted", "fix_reputation", "a@blocky.example"))
    assert.is_false(d.retry)                       -- 5xx: that message is not retried
    assert.same({}, d.suppress)                    -- a block is not the address's fault
    local ok, at = p:ready("blocky.example")
    assert.is_false(ok)
    assert.equal(900, at)
    -- a 4xx for another message to the same domain waits until the pause ends
    clock.t = 100
    d = p:decide(rcpt_refused(451, "4.3.0", "later", "deferred", "temporary_failure", "retry",
      "b@blocky.example"))
    assert.equal(900, d.at)
    -- blocked again right after the pause: the pause doubles
    clock.t = 900
    p:decide(rcpt_refused(550, "5.7.1",
      "You are temporarily blocked from sending emails due to repeated bad requests.",
      "blocked", "rate_limited", "reduce_rate", "c@blocky.example"))
    assert.equal(900 + 1800, select(2, p:ready("blocky.example")))
    -- a delivery after the pause ends it
    clock.t = 2700
    p:decide(delivered("d@blocky.example"))
    assert.is_true(p:ready("blocky.example"))
  end)

  it("holds mail when the session is refused before the message (auth, TLS, blocked greeting)", function()
    local p = sim()
    local d = p:decide({ kind = "auth", message = "535 5.7.8 authentication failed",
      classification = { code = 535, outcome = "blocked", reason = "auth_failed",
        action = "fix_configuration", retry = false } }, nil, { "a@relay.example" })
    assert.is_true(d.retry)
    assert.equal(900, d.at)                        -- after the pause, not the 300 s backoff
    assert.is_false(p:ready("relay.example"))
    d = p:decide({ kind = "validation", message = "X-SMTPAPI: bad JSON" }, nil, { "a@relay.example" })
    assert.is_false(d.retry)
    assert.is_true(d.give_up)
    assert.equal("failed", d.recipients["a@relay.example"])
  end)

  it("does not resend a maybe-delivered message unless allowed", function()
    local md = { ok = false, outcome = "unknown", reason = "network_error", maybe_delivered = true,
      recipients = { { address = "a@example.com", ok = true } } }
    local p = sim()
    local d = p:decide(md)
    assert.is_false(d.retry)
    assert.is_true(d.give_up)
    assert.is_true(d.maybe_delivered)
    assert.equal("unknown", d.recipients["a@example.com"])
    assert.matches("^maybe delivered", d.why)
    p = sim{ retry_maybe_delivered = true }
    d = p:decide(md)
    assert.is_true(d.retry)
    assert.equal("retry", d.recipients["a@example.com"])
  end)

  it("keeps recipients apart: delivered ones are done, refused ones are not retried", function()
    local p = sim()
    local r = { ok = true, outcome = "delivered", reason = "accepted", action = "none",
      reply = reply(250, "2.0.0", "queued"),
      recipients = {
        { address = "ok@a.example", ok = true, reply = reply(250, "2.1.5", "Ok") },
        { address = "later@b.example", ok = false, reply = reply(450, "4.2.1", "try later"),
          outcome = "deferred", reason = "temporary_failure", action = "retry", retry = true },
        { address = "gone@c.example", ok = false, reply = reply(550, "5.1.1", "no such user"),
          outcome = "bounced", reason = "user_unknown", action = "remove_address", retry = false },
      } }
    local d = p:decide(r)
    assert.same({ ["ok@a.example"] = "delivered", ["later@b.example"] = "retry",
      ["gone@c.example"] = "failed" }, d.recipients)
    assert.is_true(d.retry)
    assert.same({ "gone@c.example" }, { d.suppress[1].address })
    assert.equal(1, #d.suppress)
    assert.equal(10, p:domains()["b.example"].slow)   -- 450 is rate advice
    -- without the deferred one: nothing to retry, and the why names the refusal
    table.remove(r.recipients, 2)
    d = p:decide(r)
    assert.is_false(d.retry)
    assert.matches("^partly delivered; gone@c.example not retried: bounced %(user_unknown%) 550", d.why)
  end)

  it("keeps state and the domain table as plain data that survives a reload", function()
    local p, clock = sim()
    clock.t = 50
    local _, st = p:decide(err421(), nil, { "x@example.com" })
    for k, v in pairs(st) do
      assert.is_string(k)
      assert.is_true(type(v) == "number" or type(v) == "string")
    end
    local saved = p:domains()
    local q = retry.policy{ domains = saved, now = function() return 55 end }
    local ok, at = q:ready("example.com")
    assert.is_false(ok)
    assert.equal(60, at)
  end)

  it("refuses bad options with error()", function()
    assert.has_error(function() retry.policy{ base = "5" } end, "retry.policy: base must be a number")
    assert.has_error(function() retry.policy{ jitter = 1 } end)
    assert.has_error(function() retry.policy{ now = 5 } end)
  end)

  it("finds domains in addresses", function()
    assert.equal("b.example", retry.domain_of("Name <a@B.Example>"))
    assert.equal("x.org", retry.domain_of("u@x.org"))
    assert.is_nil(retry.domain_of("nobody"))
  end)
end)
