-- The reply classifier (csrc/classify.c, rules in csrc/classify_rules.h)
-- through smtpkit.classify and smtpkit.core.
local smtpkit = require "smtpkit"
local core = require "smtpkit.core"

local function data_path(name)
  local dir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec"
  return dir .. "/data/" .. name
end

-- The fixed vocabulary, as documented (shared/reference/classification.md
-- section 1; README "Classification vocabulary").
local OUTCOMES = { "delivered", "deferred", "bounced", "blocked", "unknown" }
local REASONS = {
  "accepted", "user_unknown", "invalid_address", "domain_not_found", "mailbox_disabled",
  "mailbox_full", "message_too_large", "message_invalid", "spam_content", "virus_detected",
  "blocklisted", "reputation", "auth_failed", "reverse_dns", "sender_rejected", "tls_required",
  "auth_required", "relay_denied", "policy", "rate_limited", "too_many_connections",
  "too_many_recipients", "greylisted", "temporary_failure", "network_error", "routing_error",
  "protocol_error", "expired", "suppressed", "unknown",
}
local ACTIONS = {
  "none", "retry", "reduce_rate", "remove_address", "fix_message", "fix_configuration",
  "fix_reputation", "review",
}
local function set(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end
local OUTCOME, REASON, ACTION = set(OUTCOMES), set(REASONS), set(ACTIONS)
local UNPARSED = "Delayed Bounce - Unable to Parse Server Reason"

describe("classify: the seed's table", function()
  -- Every row of shared/reference/seed-errors-and-troubleshooting.md, as it says.
  local rows = {
    { "250 Queued mail for delivery", "delivered", "accepted", "none", false },
    { "421 Message from (192.0.2.7) temporarily deferred", "deferred", nil, "reduce_rate", true },
    { "450 too frequent connects from 198.37.147.135, please try again later.",
      "deferred", nil, "reduce_rate", true },
    { "451 Temporary local problem - please try later", "deferred", "temporary_failure", "retry", true },
    { "452 Too many recipients received this hour (throttled)", "deferred", nil, "reduce_rate", true },
    { "550 Requested action not taken: mailbox unavailable", "bounced", nil, "remove_address", false },
    { "551 User does not exist.", "bounced", "user_unknown", "remove_address", false },
    { "553 Invalid/inactive user.", "bounced", nil, "remove_address", false },
    { "554 ERROR: Mail refused", "bounced", nil, "remove_address", false },
  }
  for _, r in ipairs(rows) do
    it(r[1], function()
      local v = smtpkit.classify(r[1])
      assert.equal(tonumber(r[1]:sub(1, 3)), v.code)
      assert.equal(r[2], v.outcome)
      if r[3] then assert.equal(r[3], v.reason) end
      assert.equal(r[4], v.action)
      assert.equal(r[5], v.retry)
      assert.equal(r[1]:sub(5), v.text)
      assert.is_string(v.explanation)
    end)
  end

  it("550 temporarily blocked for repeated bad requests: a block on the sender, kept address", function()
    local v = smtpkit.classify("550 You are temporarily blocked from sending emails due to repeated "
      .. "bad requests.")
    assert.equal("blocked", v.outcome)
    assert.equal("rate_limited", v.reason)
    assert.are_not.equal("remove_address", v.action)
    assert.is_false(v.retry)
  end)

  it("552 storage exceeded: bounced, never retried", function()
    local v = smtpkit.classify("552 This message is larger than the current system limit or the "
      .. "recipient's mailbox is full. Create a shorter message body or remove attachments and try "
      .. "sending it again.")
    assert.equal("bounced", v.outcome)
    assert.equal("mailbox_full", v.reason)
    assert.is_false(v.retry)
  end)

  it("an empty or unparseable reason: unknown, with the seed's explanation", function()
    for _, s in ipairs{ "", "   \r\n", UNPARSED, "Unable to parse", "\0\1\2" } do
      local v = smtpkit.classify(s)
      assert.equal("unknown", v.outcome, s)
      assert.equal("unknown", v.reason, s)
      assert.equal(UNPARSED, v.explanation, s)
      assert.is_false(v.retry)
      assert.is_nil(v.code)
      assert.is_nil(v.enhanced)
    end
  end)

  it("4xx is deferred and retried whatever the text says; 5xx is never retried", function()
    local v = smtpkit.classify("450 4.7.1 Client host blocked using zen.spamhaus.org")
    assert.same({ "deferred", "blocklisted", true }, { v.outcome, v.reason, v.retry })
    v = smtpkit.classify("451 4.1.1 <a@example.org>: Recipient address rejected: User unknown")
    assert.same({ "deferred", "user_unknown", "retry", true }, { v.outcome, v.reason, v.action, v.retry })
    for _, s in ipairs{ "550 5.1.1 no such user", "554 5.7.1 blocked using spamhaus",
                        "552 5.2.2 mailbox full", "500 5.5.1 what?" } do
      assert.is_false(smtpkit.classify(s).retry, s)
    end
  end)

  it("too many recipients in a 452 or 552 is deferred and retried (RFC 5321 4.5.3.1.10)", function()
    for _, s in ipairs{ "552 5.5.3 Too many recipients", "452 4.5.3 Too many recipients",
                        "552 Too many recipients", "550 5.5.3 Recipient limit exceeded" } do
      local v = smtpkit.classify(s)
      assert.same({ "deferred", "too_many_recipients", true }, { v.outcome, v.reason, v.retry }, s)
    end
  end)
end)

describe("classify: real provider replies", function()
  local rows = dofile(data_path("provider_replies.lua"))

  it("has at least 100 of them", function()
    assert.is_true(#rows >= 100, #rows .. " rows")
  end)

  it("gives each its documented outcome and reason", function()
    local bad = {}
    for _, r in ipairs(rows) do
      local v = smtpkit.classify(r[1])
      if v.outcome ~= r[2] or v.reason ~= r[3] then
        bad[#bad + 1] = ("%q: want %s/%s, got %s/%s"):format(r[1], r[2], r[3], v.outcome, v.reason)
      end
    end
    assert.equal(0, #bad, table.concat(bad, "\n"))
  end)

  it("keeps the address on a block of the sender, removes it on a bad mailbox", function()
    for _, r in ipairs(rows) do
      local v = smtpkit.classify(r[1])
      if v.outcome == "blocked" then assert.are_not.equal("remove_address", v.action, r[1]) end
      if v.reason == "user_unknown" and v.outcome == "bounced" then
        assert.equal("remove_address", v.action, r[1])
      end
    end
  end)
end)

describe("classify: an independent QA set of provider replies", function()
  -- spec/data/provider_replies_extra.lua: replies collected from public lists
  -- (smtp-field-manual, Gmail's, Yahoo's, Microsoft's, Apple's and Comcast's
  -- pages, MTA wordings) and pasted the ways users paste them, with the
  -- outcome, reason and (where it matters) action that classification.md's
  -- decision rule gives.
  local rows = dofile(data_path("provider_replies_extra.lua"))

  it("has at least 100 of them, none already in the first table", function()
    assert.is_true(#rows >= 100, #rows .. " rows")
    local seen = {}
    for _, r in ipairs(dofile(data_path("provider_replies.lua"))) do seen[r[1]] = true end
    for _, r in ipairs(rows) do assert.is_nil(seen[r[1]], r[1]) end
  end)

  it("gives each its expected outcome, reason and action", function()
    local bad = {}
    for _, r in ipairs(rows) do
      local v = smtpkit.classify(r[1])
      if v.outcome ~= r[2] or v.reason ~= r[3] or (r[4] and v.action ~= r[4]) then
        bad[#bad + 1] = ("%q: want %s/%s/%s, got %s/%s/%s"):format(r[1], r[2], r[3], r[4] or "-",
          v.outcome, v.reason, v.action)
      end
      assert.is_true(OUTCOME[v.outcome] and REASON[v.reason] and ACTION[v.action], r[1])
      assert.equal(v.outcome == "deferred", v.retry, r[1])
    end
    assert.equal(0, #bad, table.concat(bad, "\n"))
  end)

  it("keeps the address on a block of the sender", function()
    for _, r in ipairs(rows) do
      local v = smtpkit.classify(r[1])
      if v.outcome == "blocked" then assert.are_not.equal("remove_address", v.action, r[1]) end
    end
  end)
end)

describe("classify: wrappings users meet", function()
  it("a DSN Diagnostic-Code", function()
    local v = smtpkit.classify("Diagnostic-Code: smtp; 550 5.1.1 <bob@example.org>: Recipient "
      .. "address rejected: User unknown in local recipient table")
    assert.same({ 550, "5.1.1", "bounced", "user_unknown" }, { v.code, v.enhanced, v.outcome, v.reason })
    assert.equal("<bob@example.org>: Recipient address rejected: User unknown in local recipient table",
      v.text)
    v = smtpkit.classify("smtp; 452 4.2.2 Over quota")
    assert.same({ 452, "4.2.2", "deferred", "mailbox_full" }, { v.code, v.enhanced, v.outcome, v.reason })
  end)

  it("Postfix's 'host ... said: ... (in reply to ... command)'", function()
    local v = smtpkit.classify("host mx.example.com[192.0.2.1] said: 550 5.7.1 Service unavailable; "
      .. "Client host [198.51.100.7] blocked using zen.spamhaus.org (in reply to RCPT TO command)")
    assert.same({ 550, "5.7.1", "blocked", "blocklisted", "fix_reputation" },
      { v.code, v.enhanced, v.outcome, v.reason, v.action })
    assert.equal("Service unavailable; Client host [198.51.100.7] blocked using zen.spamhaus.org", v.text)
  end)

  it("Postfix: a refusal in reply to MAIL FROM is a refusal of the sender", function()
    local v = smtpkit.classify("host mail.example.net[203.0.113.2] said: 550 5.7.1 Access denied "
      .. "(in reply to MAIL FROM command)")
    assert.same({ "blocked", "sender_rejected" }, { v.outcome, v.reason })
  end)

  it("Exim's 'SMTP error from remote mail server after RCPT TO:<x>: ...'", function()
    local v = smtpkit.classify("SMTP error from remote mail server after RCPT TO:<kijitora@example.jp>: "
      .. "host mx.example.jp [192.0.2.222]: 550 5.2.2 <kijitora@example.jp>... Mailbox Full")
    assert.same({ 550, "5.2.2", "bounced", "mailbox_full" }, { v.code, v.enhanced, v.outcome, v.reason })
    v = smtpkit.classify("SMTP error from remote mail server after RCPT TO:<x@example.org>: 550 "
      .. "Unrouteable address")
    assert.same({ 550, "bounced", "domain_not_found" }, { v.code, v.outcome, v.reason })
  end)

  it("an enhanced code alone (qmail's #5.1.1), with no reply code", function()
    local v = smtpkit.classify("#5.1.1")
    assert.same({ "5.1.1", "bounced", "user_unknown" }, { v.enhanced, v.outcome, v.reason })
    assert.is_nil(v.code)
    v = smtpkit.classify("Sorry, I couldn't find any host named example.invalid. (#5.1.2)")
    assert.same({ "5.1.2", "bounced", "domain_not_found" }, { v.enhanced, v.outcome, v.reason })
    v = smtpkit.classify("Resources temporarily unavailable, please try again later [#4.1.9].")
    assert.same({ "4.1.9", "deferred" }, { v.enhanced, v.outcome })
  end)

  it("text with no code at all decides only when it says something explicit", function()
    local v = smtpkit.classify("connect to mx.example.com[192.0.2.1]:25: Connection timed out")
    assert.same({ "deferred", "network_error", true }, { v.outcome, v.reason, v.retry })
    v = smtpkit.classify("mailbox unavailable Reject due to policy restrictions.")
    assert.same({ "blocked", "policy" }, { v.outcome, v.reason })
    v = smtpkit.classify("No such domain.")
    assert.same({ "bounced", "domain_not_found" }, { v.outcome, v.reason })
    v = smtpkit.classify("The quick brown fox")
    assert.same({ "unknown", "unknown", UNPARSED }, { v.outcome, v.reason, v.explanation })
  end)

  it("numbers that are not reply codes: IPs, ports, dates, IPv6", function()
    for _, s in ipairs{ "host 192.0.2.250 [192.0.2.250]: timed out", "port 250:25",
                        "Thu, 29 Apr 2010 23:34:45 +0900", "[2606:2800:220:6d:26bf:1447:1097:aa7]:25",
                        "no more than 250 recipients, sorry" } do
      assert.is_nil(smtpkit.classify(s).code, s)
    end
  end)
end)

describe("classify: multi-line replies", function()
  local gmail = "550-5.1.1 The email account that you tried to reach does not exist. Please try\r\n"
    .. "550-5.1.1 double-checking the recipient's email address for typos or\r\n"
    .. "550 5.1.1 https://support.google.com/mail/?p=NoSuchUser z1si gsmtp\r\n"
  local joined = "The email account that you tried to reach does not exist. Please try "
    .. "double-checking the recipient's email address for typos or "
    .. "https://support.google.com/mail/?p=NoSuchUser z1si gsmtp"

  it("with CRLF, with bare LF, without the final line end", function()
    for _, s in ipairs{ gmail, (gmail:gsub("\r\n", "\n")), (gmail:gsub("\r\n$", "")) } do
      local v = smtpkit.classify(s)
      assert.same({ 550, "5.1.1", "bounced", "user_unknown" }, { v.code, v.enhanced, v.outcome, v.reason })
      assert.equal(joined, v.text)
    end
  end)

  it("a parsed reply table gives the same verdict as its string", function()
    local r = assert(smtpkit.parse_reply(gmail))
    local a, b = smtpkit.classify(r), smtpkit.classify(gmail)
    for _, k in ipairs{ "code", "enhanced", "outcome", "reason", "action", "retry", "explanation" } do
      assert.equal(b[k], a[k], k)
    end
    assert.equal(r.text, a.text)
  end)

  it("a parsed reply table with only lines, or only code and enhanced", function()
    local v = smtpkit.classify({ code = 452, enhanced = "4.5.3", lines = { "4.5.3 Too many recipients" } })
    assert.same({ 452, "4.5.3", "deferred", "too_many_recipients", "Too many recipients" },
      { v.code, v.enhanced, v.outcome, v.reason, v.text })
    v = smtpkit.classify({ code = 550, enhanced = "5.2.2" })
    assert.same({ "bounced", "mailbox_full" }, { v.outcome, v.reason })
    v = smtpkit.classify({ code = 250, text = "2.0.0 Ok: queued as 12345" })
    assert.same({ "delivered", "accepted", false }, { v.outcome, v.reason, v.retry })
    v = smtpkit.classify({})
    assert.same({ "unknown", "unknown" }, { v.outcome, v.reason })
  end)
end)

describe("classify: the reply code and the enhanced code disagree", function()
  it("ignores an enhanced code whose class is not the reply code's", function()
    local v = smtpkit.classify("550 4.7.1 odd")
    assert.equal(550, v.code)
    assert.is_nil(v.enhanced)
    assert.equal("bounced", v.outcome)
    v = smtpkit.classify("421 5.7.1 Try again later")
    assert.is_nil(v.enhanced)
    assert.same({ "deferred", true }, { v.outcome, v.retry })
    v = smtpkit.classify({ code = 550, enhanced = "4.2.2", text = "4.2.2 mailbox full" })
    assert.is_nil(v.enhanced)
    assert.same({ "bounced", "mailbox_full" }, { v.outcome, v.reason })
  end)

  it("lets the text win where providers reuse codes", function()
    -- GoDaddy sends a rate limit as 5.1.1; Outlook an unknown user as 5.4.1.
    local v = smtpkit.classify("550 5.1.1 <a@example.com> a@example.com has sent to too many "
      .. "recipients this hour. IB607")
    assert.same({ "blocked", "rate_limited" }, { v.outcome, v.reason })
    v = smtpkit.classify("550 5.4.1 Recipient address rejected: Access denied. AS(201806281)")
    assert.same({ "bounced", "user_unknown" }, { v.outcome, v.reason })
    -- Gmail's 4.7.27 is SPF, not IANA's "sender address has null MX".
    v = smtpkit.classify("421 4.7.27 Your email has been rate limited because SPF authentication "
      .. "didn't pass for this message.")
    assert.equal("auth_failed", v.reason)
  end)
end)

describe("classify: garbage", function()
  it("never fails on any bytes", function()
    math.randomseed(7)
    for _ = 1, 2000 do
      local t = {}
      for i = 1, math.random(0, 300) do t[i] = string.char(math.random(0, 255)) end
      local s = table.concat(t)
      local v = smtpkit.classify(s)
      assert.is_true(OUTCOME[v.outcome] and REASON[v.reason] and ACTION[v.action] and true, s)
      assert.is_boolean(v.retry)
    end
    local huge = ("550 5.1.1 user unknown "):rep(5000)
    assert.equal("user_unknown", smtpkit.classify(huge).reason)
  end)

  it("raises for an argument of the wrong type", function()
    for _, x in ipairs{ 42, true, function() end } do
      assert.has_error(function() smtpkit.classify(x) end)
    end
    assert.has_error(function() smtpkit.classify() end)
    assert.has_error(function() smtpkit.classify({ code = "550" }) end)
    assert.has_error(function() smtpkit.classify({ code = 550, enhanced = 5 }) end)
    assert.has_error(function() smtpkit.classify({ lines = { 1, 2 } }) end)
    assert.has_error(function() smtpkit.classify({ text = {} }) end)
  end)
end)

describe("classify: vocabulary", function()
  it("the C enums name exactly the documented values", function()
    local v = core.classify_vocabulary()
    assert.same(OUTCOMES, v.outcomes)
    assert.same(REASONS, v.reasons)
    assert.same(ACTIONS, v.actions)
  end)

  it("every value any rule can emit is in the documented lists", function()
    local rules = core.classify_rules()
    assert.is_true(#rules > 400, #rules .. " rules")
    for _, r in ipairs(rules) do
      local what = r.kind .. " " .. r.match
      assert.is_true(REASON[r.reason], what .. ": reason " .. tostring(r.reason))
      assert.is_true(#r.verdicts > 0 or r.reason == "accepted", what)
      for _, v in ipairs(r.verdicts) do
        assert.is_true(OUTCOME[v.outcome], what .. ": outcome " .. tostring(v.outcome))
        assert.is_true(REASON[v.reason], what .. ": reason " .. tostring(v.reason))
        assert.is_true(ACTION[v.action], what .. ": action " .. tostring(v.action))
        assert.is_boolean(v.retry)
        assert.is_string(v.explanation)
        -- the decision rule of classification.md 1.1
        if v.class == 4 then assert.equal("deferred", v.outcome, what) end
        if v.class == 5 and v.outcome ~= "deferred" then assert.is_false(v.retry, what) end
        if v.outcome == "deferred" then assert.is_true(v.retry, what) end
        if v.class == 5 and v.outcome == "deferred" then
          assert.equal("too_many_recipients", v.reason, what)
        end
      end
    end
  end)

  it("every reason, outcome and action can actually be emitted", function()
    local seen = {}
    for _, r in ipairs(core.classify_rules()) do
      for _, v in ipairs(r.verdicts) do
        seen[v.outcome], seen[v.reason], seen[v.action] = true, true, true
      end
    end
    seen.delivered, seen.accepted, seen.none = true, true, true  -- 2xx, decided before any rule
    seen.unknown = true
    for _, list in ipairs{ OUTCOMES, REASONS, ACTIONS } do
      for _, name in ipairs(list) do assert.is_true(seen[name], name) end
    end
  end)

  it("phrases are lowercase, matchable, and appear once", function()
    local seen = {}
    for _, r in ipairs(core.classify_rules()) do
      if r.kind == "phrase" or r.kind == "hint" then
        assert.equal(r.match:lower(), r.match)
        assert.is_nil(seen[r.match], "duplicate phrase " .. r.match)
        seen[r.match] = true
        local first = r.match:match("^[^*]*")
        assert.is_true(#first >= 3, "first fragment shorter than 3 bytes: " .. r.match)
        assert.is_nil(r.match:find("**", 1, true), r.match)
        assert.is_nil(r.match:find("%*$"), r.match)
        -- each phrase finds itself, in any case
        assert.is_true(smtpkit.classify("550 " .. r.match:gsub("%*", " x ")) ~= nil)
        local upper = smtpkit.classify("550 " .. r.match:gsub("%*", " x "):upper())
        local lower = smtpkit.classify("550 " .. r.match:gsub("%*", " x "))
        assert.equal(lower.reason, upper.reason, r.match)
      end
    end
  end)

  it("a 5xx with no recognisable cause is bounced, unknown, reviewed", function()
    local v = smtpkit.classify("550 Nope")
    assert.same({ 550, "bounced", "unknown", "review", false },
      { v.code, v.outcome, v.reason, v.action, v.retry })
  end)
end)

describe("classify: agreement with Sisimai on 500 real diagnostics", function()
  -- Sisimai's reasons mapped onto ours (classification.md section 1.3); a set
  -- where Sisimai's reason covers several of ours. Feedback and Vacation are
  -- not SMTP replies: left out.
  local map = {
    authfailure = { "auth_failed" }, badreputation = { "reputation" },
    blocked = { "blocklisted", "reputation", "policy", "sender_rejected" },
    contenterror = { "message_invalid" }, delivered = { "accepted" },
    exceedlimit = { "message_too_large" },
    -- Sisimai files connection failures that ended in expiry under Expired;
    -- the text names the network failure.
    expired = { "expired", "network_error" }, failedstarttls = { "tls_required" },
    filtered = { "user_unknown", "policy" }, hasmoved = { "user_unknown" },
    hostunknown = { "domain_not_found" }, mailboxfull = { "mailbox_full" },
    mailererror = { "temporary_failure", "unknown" }, mesgtoobig = { "message_too_large" },
    networkerror = { "network_error", "routing_error" }, norelaying = { "relay_denied" },
    notaccept = { "domain_not_found" }, notcompliantrfc = { "message_invalid" },
    onhold = { "unknown" },
    policyviolation = { "policy", "spam_content", "message_invalid", "virus_detected" },
    rejected = { "sender_rejected", "reputation" }, requireptr = { "reverse_dns" },
    securityerror = { "auth_required", "tls_required", "policy" },
    spamdetected = { "spam_content" }, speeding = { "rate_limited" }, suppressed = { "suppressed" },
    suspend = { "mailbox_disabled" }, syntaxerror = { "protocol_error" },
    systemerror = { "temporary_failure" }, systemfull = { "temporary_failure" },
    toomanyconn = { "too_many_connections", "too_many_recipients" }, undefined = { "unknown" },
    userunknown = { "user_unknown" }, virusdetected = { "virus_detected" },
  }
  local FLOOR = 0.87

  it(("agrees on at least %d%% after mapping"):format(FLOOR * 100), function()
    local n, ok, misses = 0, 0, {}
    local f = assert(io.open(data_path("sisimai-diagnostics.tsv"), "rb"))
    f:read("*l")                                -- header
    for line in f:lines() do
      local reason, diag = line:match("^([^\t]*)\t[^\t]*\t[^\t]*\t[^\t]*\t[^\t]*\t(.*)$")
      local want = reason and map[reason]
      if want then
        n = n + 1
        local got = smtpkit.classify(diag).reason
        if set(want)[got] then
          ok = ok + 1
        else
          misses[#misses + 1] = ("%s -> %s: %s"):format(reason, got, diag:sub(1, 150))
        end
      end
    end
    f:close()
    assert.is_true(n > 450, n .. " rows")
    local rate = ok / n
    assert.is_true(rate >= FLOOR, ("agreement %d/%d = %.1f%% is below %d%%; disagreements:\n%s")
      :format(ok, n, 100 * rate, FLOOR * 100, table.concat(misses, "\n")))
  end)
end)

describe("classify: the LuaJIT FFI path gives the C binding's table", function()
  -- lua/smtpkit/classify_ffi.lua is smtpkit.classify on LuaJIT; the C API
  -- binding (smtpkit.core.classify) is the reference it must equal, field for
  -- field, on every reply these specs have.
  local ffi_classify = require "smtpkit.classify_ffi"

  if not jit then
    it("is not used on PUC Lua", function()
      assert.is_false(ffi_classify)
      assert.equal(core.classify, smtpkit.classify)
    end)
    return
  end

  local function check(inputs)
    local bad = {}
    for _, s in ipairs(inputs) do
      local want, got = core.classify(s), ffi_classify(s)
      local same = true
      for k, v in pairs(want) do same = same and got[k] == v end
      for k, v in pairs(got) do same = same and want[k] == v end
      if not same then
        bad[#bad + 1] = ("%q:\n  C API %s\n  FFI   %s"):format(s, require("pl.pretty").write(want, ""),
          require("pl.pretty").write(got, ""))
      end
    end
    assert.equal(0, #bad, table.concat(bad, "\n"))
  end

  it("is what smtpkit.classify is on LuaJIT", function()
    assert.is_function(ffi_classify)
    assert.equal(ffi_classify, smtpkit.classify)
  end)

  it("on every real provider reply", function()
    local inputs = {}
    for _, r in ipairs(dofile(data_path("provider_replies.lua"))) do inputs[#inputs + 1] = r[1] end
    for _, r in ipairs(dofile(data_path("provider_replies_extra.lua"))) do inputs[#inputs + 1] = r[1] end
    assert.is_true(#inputs >= 200)
    check(inputs)
  end)

  it("on the 500 Sisimai diagnostics, bare and as a DSN Diagnostic-Code", function()
    local inputs = {}
    local f = assert(io.open(data_path("sisimai-diagnostics.tsv"), "rb"))
    f:read("*l")                                -- header
    for line in f:lines() do
      local code, enh, diag = line:match("^[^\t]*\t([^\t]*)\t([^\t]*)\t[^\t]*\t[^\t]*\t(.*)$")
      if diag then
        inputs[#inputs + 1] = diag
        inputs[#inputs + 1] = ("smtp; %s %s %s"):format(code, enh, diag)
      end
    end
    f:close()
    assert.is_true(#inputs >= 900, #inputs .. " inputs")
    check(inputs)
  end)

  it("on edge cases: empty, spaces, NUL bytes, no code, multi-line, intermediate", function()
    check{ "", "   \r\n", "\0\1\2", "550", "550 ", "5.1.1", "5.1.1 user unknown",
           "Unable to parse", "354 End data with <CR><LF>.<CR><LF>", "250 ok\0tail",
           "550-5.1.1 first\r\n550 5.1.1 second\r\n", "550 5.1.1 a\nb", "550 5.1.1 a\rb",
           "  \t550 5.7.1 padded  \r\n", ("550 5.1.1 user unknown "):rep(5000) }
  end)

  it("on random bytes and on more distinct enhanced codes than it caches", function()
    local inputs = {}
    math.randomseed(11)
    for _ = 1, 2000 do
      local t = {}
      for i = 1, math.random(0, 200) do t[i] = string.char(math.random(0, 255)) end
      inputs[#inputs + 1] = table.concat(t)
    end
    for subject = 0, 12 do
      for detail = 0, 120 do
        inputs[#inputs + 1] = ("550 5.%d.%d mailbox unavailable"):format(subject, detail)
        inputs[#inputs + 1] = ("451 4.%d.%d try later"):format(subject, detail)
        inputs[#inputs + 1] = ("451 4.%03d.%02d try later"):format(subject, detail)
      end
    end
    check(inputs)
    check(inputs)                               -- now from its caches
  end)

  it("gives the right table to a __gc finalizer that classifies while a call builds its own", function()
    -- The FFI path reuses one C struct; a finalizer run by an allocation
    -- inside a call must not overwrite what that call is still reading.
    local ffi = require "ffi"
    local inputs = { "550 5.1.1 user unknown", "421 4.7.0 try later", "250 2.0.0 ok queued",
      "554 5.7.1 blocked using zen.spamhaus.org", "452 4.5.3 Too many recipients" }
    local other = "550 5.9.99 something else entirely, with a longer text than the others"
    local want, want_other = {}, core.classify(other)
    for i, s in ipairs(inputs) do want[i] = core.classify(s) end
    local finalized, bad = 0, {}
    local function differ(a, b) -- the first field where they differ
      for k, v in pairs(a) do if b[k] ~= v then return k end end
      for k, v in pairs(b) do if a[k] ~= v then return k end end
    end
    local pause, stepmul = collectgarbage("setpause", 100), collectgarbage("setstepmul", 400)
    local jit_was_on = jit.status()
    jit.off()                   -- the interpreter allocates most, so collects most often
    local ok, err = pcall(function()
      for n = 1, 20000 do
        local i = n % #inputs + 1
        ffi.gc(ffi.new("char[1]"), function()
          finalized = finalized + 1
          local k = differ(want_other, ffi_classify(other))
          if k then bad[#bad + 1] = "in a finalizer: " .. k end
        end)
        local k = differ(want[i], ffi_classify(inputs[i]))
        if k then bad[#bad + 1] = inputs[i] .. ": " .. k end
      end
    end)
    if jit_was_on then jit.on() end
    collectgarbage("setpause", pause)
    collectgarbage("setstepmul", stepmul)
    assert(ok, err)
    assert.is_true(finalized > 1000, finalized .. " finalizers ran")
    assert.equal(0, #bad, table.concat(bad, "\n", 1, math.min(#bad, 20)))
  end)

  it("passes parsed reply tables and wrong types to the C binding", function()
    local r = assert(smtpkit.parse_reply("550 5.1.1 user unknown\r\n"))
    assert.same(core.classify(r), ffi_classify(r))
    for _, x in ipairs{ 42, true, {}, { code = "550" } } do
      local ok1, e1 = pcall(core.classify, x)
      local ok2, e2 = pcall(ffi_classify, x)
      assert.equal(ok1, ok2)
      if ok1 then assert.same(e1, e2) end
    end
    assert.has_error(function() ffi_classify() end)
  end)
end)

describe("classify: inside OpenResty (real nginx, LuaJIT, lua-resty-core)", function()
  -- smtpkit.classify there is the FFI path, and gives the C binding's table.
  local nginx = require "support.nginx"
  local srv
  setup(function()
    srv = assert(nginx.start{
      server = ([[
    location = /classify {
      content_by_lua_block {
        local smtpkit, core = require "smtpkit", require "smtpkit.core"
        local inputs = {}
        for _, r in ipairs(dofile(%q)) do inputs[#inputs + 1] = r[1] end
        ngx.req.read_body()
        inputs[#inputs + 1] = ngx.req.get_body_data() or ""
        local differ = 0
        for _, s in ipairs(inputs) do
          local a, b = smtpkit.classify(s), core.classify(s)
          for k, v in pairs(a) do if b[k] ~= v then differ = differ + 1 end end
          for k, v in pairs(b) do if a[k] ~= v then differ = differ + 1 end end
        end
        local v = smtpkit.classify(inputs[#inputs])
        ngx.say("ffi=", tostring(smtpkit.classify == require("smtpkit.classify_ffi")),
          " inputs=", #inputs, " differ=", differ)
        ngx.say(v.code, " ", v.enhanced, " ", v.outcome, " ", v.reason, " ", v.text)
      }
    }
]]):format(nginx.root() .. "/spec/data/provider_replies.lua"),
    })
  end)
  teardown(function()
    if srv then srv:stop() end
  end)

  it("uses the FFI path, with the same answers as smtpkit.core.classify", function()
    local status, body = srv:request("POST", "/classify", "550 5.1.1 <a@example.org>: user unknown")
    assert.equal(200, status, body)
    local n = tonumber(body:match("inputs=(%d+)"))
    assert.is_true(n and n > 100, body)
    assert.matches("ffi=true inputs=%d+ differ=0\n", body)
    assert.matches("\n550 5.1.1 bounced user_unknown <a@example.org>: user unknown\n", body, 1, true)
    assert.same({}, srv:errors())
  end)
end)
