--- `smtpkit demo`: the first command a newcomer runs. On loopback, with no
-- account and no internet: classifies the seed's replies and real providers'
-- ones, starts a throwaway SMTP server (STARTTLS, AUTH, a certificate made
-- for this run), sends a real message with a validated X-SMTPAPI header,
-- shows scripted 421, 450, 550 and 552 replies classified, retries the
-- deferred ones to delivery through the outbox, prints a summary and stops
-- everything it started.
-- @module smtpkit.cli.demo
local common = require "smtpkit.cli.common"
local classify_cmd = require "smtpkit.cli.classify"

local M = {
  summary = "Run the tour on loopback: classify, send over STARTTLS+AUTH, retry.",
}

--- The seed's table (SendGrid's "Errors and troubleshooting"), one reply per row.
M.SEED_REPLIES = {
  "250 Queued mail for delivery",
  "421 Message from (192.0.2.1) temporarily deferred",
  "450 too frequent connects from 198.37.147.135, please try again later.",
  "451 Temporary local problem - please try later",
  "452 Too many recipients received this hour (throttled)",
  "550 Requested action not taken: mailbox unavailable",
  "550 You are temporarily blocked from sending emails due to repeated bad requests.",
  "551 User does not exist.",
  "552 This message is larger than the current system limit or the recipient's mailbox is full. "
    .. "Create a shorter message body or remove attachments and try sending it again.",
  "553 Invalid/inactive user.",
  "554 ERROR: Mail refused",
  "",
}

--- Real replies from large providers, as their servers send them.
M.PROVIDER_REPLIES = {
  "550-5.1.1 The email account that you tried to reach does not exist. Please try "
    .. "double-checking the recipient's email address for typos or unnecessary spaces. "
    .. "https://support.google.com/mail/?p=NoSuchUser - gsmtp",
  "452 4.2.2 The email account that you tried to reach is over quota. "
    .. "https://support.google.com/mail/?p=OverQuotaTemp - gsmtp",
  "421 4.7.0 [TSS04] Messages from 192.0.2.25 temporarily deferred due to unexpected "
    .. "volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes",
  "550 5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent. Please contact your "
    .. "Internet service provider since part of their network is on our block list (S3150).",
  "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org",
  "451 4.7.1 Greylisting in action, please come back later",
  "550 5.7.26 Unauthenticated email from example.jp is not accepted due to domain's "
    .. "DMARC policy. - gsmtp",
}

-- Scripted recipients of the demo server: the first RCPT gets the first
-- reply, a retry the next one.
M.SCRIPT = {
  { address = "throttled@demo.test", first = "421",
    -- twice: the outbox's first retry meets the 421 again and backs off
    -- once more before it delivers (and a client that reconnects once by
    -- itself after a 421 still shows the user a 421)
    replies = { "421 4.7.0 Message from (127.0.0.1) temporarily deferred",
      "421 4.7.0 Message from (127.0.0.1) temporarily deferred", "250 2.1.5 Ok" } },
  { address = "busy@demo.test", first = "450",
    replies = { "450 4.2.1 too frequent connects from 127.0.0.1, please try again later.",
      "250 2.1.5 Ok" } },
  { address = "nobody@demo.test", first = "550",
    replies = { "550 5.1.1 <nobody@demo.test>: Recipient address rejected: User unknown" } },
  { address = "full@demo.test", first = "552",
    replies = { "552 5.2.2 <full@demo.test>: mailbox full" } },
}

function M.parser(p)
  p:description([[Run the smtpkit tour on this machine, on loopback only: no account, no
internet. It needs the Debian packages openssl and python3-aiosmtpd (the
throwaway SMTP server, run with /usr/bin/python3).

  1. classifies the seed's replies (SendGrid's error table) and real providers';
  2. starts an SMTP server on 127.0.0.1 with STARTTLS, AUTH and a certificate
     made for this run;
  3. sends a real message over STARTTLS + AUTH with a validated X-SMTPAPI
     header, and shows that an invalid header is stopped before sending;
  4. shows scripted 421, 450, 550 and 552 replies classified;
  5. hands the deferred messages to an outbox and retries them to delivery;
  6. prints a summary, stops the server and removes its files.]])
  p:flag("--classify-only", "Only print the classification tables (step 1).")
  p:flag("--keep", "Keep the server's directory (certificate, received mail) and print its path.")
  p:flag("--json", "Print one JSON summary instead of the tour.")
  p:epilog("Exit status: 0 when every step did what it shows, 1 otherwise, 69 when a\n"
    .. "package it needs is missing.")
  return p
end

-- Output ---------------------------------------------------------------------

local out = io.stdout
local quiet = false
local function say(...)
  if not quiet then out:write(...) out:write("\n") end
end
local function heading(s)
  say("")
  say("== ", s)
end

-- Reading results and errors -----------------------------------------------------

-- One recipient's reply and classification, from a send result, one of its
-- recipient entries, or an error table.
local function verdict_of(x)
  if type(x) ~= "table" then return {} end
  local c = type(x.classification) == "table" and x.classification or x
  local r = type(x.reply) == "table" and x.reply or c
  return {
    code = r.code or c.code, enhanced = r.enhanced or c.enhanced, text = r.text or c.text,
    outcome = c.outcome or x.outcome, reason = c.reason or x.reason,
    action = c.action or x.action, retry = c.retry, message = x.message,
    kind = x.kind,
  }
end

-- The demo shows each scripted reply with its classification: when the
-- client's entry carries the reply, that reply is what gets classified.
local function reclassified(v)
  if not v.code then return v end
  local smtpkit = common.smtpkit("classify")
  local c = smtpkit.classify(tostring(v.code) .. " " .. tostring(v.text or ""))
  v.outcome, v.reason, v.action, v.retry = c.outcome, c.reason, c.action, c.retry
  return v
end

local function recipient_verdict(result, address)
  if type(result) == "table" and type(result.recipients) == "table" then
    for k, r in pairs(result.recipients) do
      if type(r) == "table" and (r.address == address or r.to == address or r.rcpt == address
          or k == address) then
        return verdict_of(r)
      end
    end
    if result.recipients[1] then return verdict_of(result.recipients[1]) end
  end
  return verdict_of(result)
end

local function reply_str(v)
  if v.code then
    local s = tostring(v.code)
    if v.enhanced and v.enhanced ~= "" then s = s .. " " .. v.enhanced end
    local t = v.text or ""
    if v.enhanced and v.enhanced ~= "" and t:sub(1, #v.enhanced) == v.enhanced then
      t = t:sub(#v.enhanced + 2)
    end
    return s .. " " .. t:gsub("[\r\n]+", " ")
  end
  return v.message or "?"
end

-- The steps -----------------------------------------------------------------------

local function step_classify(report)
  local smtpkit = common.smtpkit("classify")
  local _ = smtpkit
  heading("1. Classifying replies: the seed's table (SendGrid's error reference)")
  local seed = classify_cmd.classify_all(M.SEED_REPLIES)
  if not quiet then classify_cmd.print_verdicts(seed, out) end
  say("")
  say("Real providers' replies:")
  local prov = classify_cmd.classify_all(M.PROVIDER_REPLIES)
  if not quiet then classify_cmd.print_verdicts(prov, out) end
  report.classified = #seed + #prov
  local counts = {}
  for _, list in ipairs({ seed, prov }) do
    for _, v in ipairs(list) do counts[v.outcome] = (counts[v.outcome] or 0) + 1 end
  end
  report.outcomes = counts
end

local PASSWORD = "demo-" .. tostring(os.time() % 100000)

local function demo_message(smtpkit, to, subject, smtpapi_value)
  local spec = {
    from = "Demo Sender <sender@smtpkit.test>", to = to, subject = subject,
    text = "Hello from the smtpkit demo.\n\nThis message went over STARTTLS with AUTH to a "
      .. "server on 127.0.0.1.\n.A line that starts with a dot survives dot-stuffing.\n",
    smtpapi = smtpapi_value,
  }
  local has, message = pcall(function() return smtpkit.message end)
  if has and message then
    local ok, msg, merr = pcall(message, spec)
    if not ok then common.fail("internal", "composing the demo message: " .. tostring(msg), "demo") end
    if not msg then common.fail_error(merr, "composing the demo message") end
    return msg
  end
  -- Without composition: a plain message table (issue 5's msg).
  return {
    from = "sender@smtpkit.test", to = to,
    headers = { From = spec.from, To = to, Subject = subject },
    smtpapi = smtpapi_value,
    body = spec.text,
  }
end

local function build_smtpapi(report)
  local smtpapi = common.need("smtpkit.smtpapi", "X-SMTPAPI support (smtpkit.smtpapi)")
  local json
  if type(smtpapi.new) == "function" then
    local b = smtpapi.new()
    b:add_category("smtpkit-demo")
    b:add_unique_arg("run", "demo")
    b:apply("disable_click_tracking")
    json = b:json()
  else
    json = '{"category":["smtpkit-demo"],"unique_args":{"run":"demo"},'
      .. '"filters":{"clicktrack":{"settings":{"enable":0}}}}'
  end
  local ok, problems = smtpapi.validate(json)
  if not ok then
    common.fail("failure", "the demo's own X-SMTPAPI header is invalid: "
      .. tostring(problems and problems[1] and problems[1].message), "demo")
  end
  say("X-SMTPAPI: ", json)
  say("  validated: ok (", #(problems or {}), " warnings)")
  -- The seed's most common failure, caught before anything is sent:
  local broken = '{"to":["ben@example.com","joe@example.com","sub":{"%name%":["Ben","Joe"]}}'
  local bok, bproblems = smtpapi.validate(broken)
  if not bok and bproblems and bproblems[1] then
    local p = bproblems[1]
    say("  a broken header is stopped before sending (smtpkit check-header prints):")
    say(("    header:%s:%s: %s: %s"):format(p.line or "?", p.column or "?", p.severity or "error",
      p.message))
    report.broken_header_caught = true
  end
  return json
end

local function step_send(report, server)
  local smtpkit = common.smtpkit("send")
  local conn = {
    host = "127.0.0.1", port = server.port, tls = "starttls", cafile = server.cafile,
    username = "demo", password = PASSWORD, helo = "demo.localhost",
    timeouts = { connect = 10, greeting = 10, command = 10, data = 10 },
  }
  heading("3. Sending a real message over STARTTLS + AUTH, with an X-SMTPAPI header")
  say("server: 127.0.0.1:", server.port, " (aiosmtpd), certificate made for this run: ",
    server.cafile)
  local header = build_smtpapi(report)
  local msg = demo_message(smtpkit, "alice@demo.test", "Hello from smtpkit", header)
  local result, err = smtpkit.send(conn, msg)
  if not result then
    common.fail_error(err, "sending the demo message to 127.0.0.1:" .. server.port)
  end
  local v = recipient_verdict(result, "alice@demo.test")
  local final = type(result.reply) == "table" and verdict_of(result.reply) or v
  say("alice@demo.test: ", reply_str(final), "  -> ", common.verdict_line(v))
  local got = server.received()[1]
  if not got then
    common.fail("failure", "the server received nothing, though the send reported "
      .. tostring(v.outcome), "demo")
  end
  local tls = got.env:match("TLS (%S+)")
  local login = got.env:match("AUTH (%S+)")
  local has_header = got.eml:find("\nX%-SMTPAPI:") or got.eml:find("^X%-SMTPAPI:")
  say("the server received ", #got.eml, " bytes: TLS ", tls, ", AUTH as ", login,
    ", X-SMTPAPI header ", has_header and "present" or "MISSING")
  report.sent = {
    outcome = v.outcome, tls = tls == "yes", auth = login, smtpapi_header = has_header and true or false,
    queue_id = result.queue_id,
  }
  if v.outcome ~= "delivered" or tls ~= "yes" or login ~= "demo" or not has_header then
    common.fail("failure", "the demo message did not arrive as expected", "demo")
  end
  return conn
end

local function step_scripted(report, conn)
  local smtpkit = common.smtpkit("send")
  heading("4. Scripted replies from the server, classified")
  local rows, deferred = {}, {}
  report.scripted = common.array({})
  for _, s in ipairs(M.SCRIPT) do
    local msg = demo_message(smtpkit, s.address, "Scripted " .. s.first, nil)
    local result, err = smtpkit.send(conn, msg)
    local v = reclassified(recipient_verdict(result or err, s.address))
    rows[#rows + 1] = { s.address, common.truncate(reply_str(v), 46), v.outcome or "?",
      v.reason or "?", v.action or "?" }
    report.scripted[#report.scripted + 1] = { address = s.address, code = v.code,
      outcome = v.outcome, reason = v.reason, action = v.action }
    if v.outcome == "deferred" then
      deferred[#deferred + 1] = { s = s, msg = msg, v = v, attempt = result or err }
    end
    if not v.code then
      common.fail("failure", "no reply for " .. s.address .. ": " .. tostring(v.message), "demo")
    end
  end
  if not quiet then
    common.print_table({ "RECIPIENT", "REPLY", "OUTCOME", "REASON", "ACTION" }, rows, out)
  end
  return deferred
end

local function step_outbox(report, conn, deferred, dir)
  local outbox = common.need("smtpkit.outbox", "the outbox (smtpkit.outbox)")
  local retry = common.need("smtpkit.retry", "retry policies (smtpkit.retry)")
  heading("5. The deferred messages go to the outbox and are retried to delivery")
  local box, err = outbox.open(dir .. "/outbox")
  if not box then common.fail_error(err, "opening the outbox") end
  -- A short policy for the demo: the real default waits 5 minutes first.
  local policy = retry.policy{ base = 1, cap = 2, jitter = 0, slow = 1, slow_cap = 2 }
  local ids = {}
  for _, d in ipairs(deferred) do
    local id, serr = box:submit(d.msg)
    if not id then common.fail_error(serr, "outbox submit") end
    -- the direct send above is the message's first attempt: recorded, so
    -- the outbox backs off from it as it would from one of its own
    if type(d.attempt) == "table" then box:record(id, d.attempt, { policy = policy }) end
    ids[#ids + 1] = { id = id, address = d.s.address }
    say("queued ", d.s.address, " as ", tostring(id), " (", reply_str(d.v), ")")
  end
  local delivered = 0
  for _ = 1, 10 do
    local ok, rerr = box:run{ connect = conn, policy = policy }
    if ok == nil and rerr then common.fail_error(rerr, "outbox run") end
    delivered = 0
    for _, e in ipairs(ids) do
      local entry = box:get(e.id)
      if entry and entry.state == "delivered" then delivered = delivered + 1 end
    end
    if delivered == #ids then break end
    common.sleep(1)
  end
  report.outbox = { queued = #ids, delivered = delivered, messages = common.array({}) }
  for _, e in ipairs(ids) do
    local entry = box:get(e.id) or {}
    -- each attempt's reply, the direct send first: the script answers
    -- throttled@ 421 twice (the outbox's first retry meets it again and
    -- backs off once more), busy@ 450 once
    local codes = {}
    for _, h in ipairs(type(entry.history) == "table" and entry.history or {}) do
      local r = type(h.reply) == "table" and h.reply or {}
      codes[#codes + 1] = r.code and tostring(r.code) or tostring(h.outcome or "?")
    end
    e.attempts = #codes
    e.replies = table.concat(codes, ", ")
    e.state = entry.state
    say(e.address, ": ", tostring(entry.state), " after ", e.attempts, " attempt",
      e.attempts == 1 and "" or "s", " (replies: ", e.replies, ")")
    report.outbox.messages[#report.outbox.messages + 1] = { address = e.address, state = e.state,
      attempts = e.attempts, replies = codes }
  end
  if delivered ~= #ids then
    common.fail("failure", ("the outbox delivered %d of %d deferred messages"):format(delivered, #ids),
      "demo")
  end
  return ids
end

function M.run(args)
  quiet = args.json and true or false
  local report = { steps = common.array({}) }
  local function done(step) report.steps[#report.steps + 1] = step end

  step_classify(report)
  done("classify")
  if args.classify_only then
    if args.json then common.print_json(report) end
    return common.EXIT.ok
  end

  local demo_server = require "smtpkit.cli.demo_server"
  heading("2. Starting an SMTP server on loopback")
  local script = {}
  for _, s in ipairs(M.SCRIPT) do script[s.address] = s.replies end
  local server, serr = demo_server.start{ users = { demo = PASSWORD }, script = script,
    keep = args.keep }
  if not server then common.fail("unavailable", serr, "demo") end
  say("aiosmtpd on 127.0.0.1:", server.port, ", STARTTLS with a throwaway certificate, ",
    "AUTH PLAIN/LOGIN (user demo)")
  done("server")
  local ok, err = pcall(function()
    local conn = step_send(report, server)
    done("send")
    local deferred = step_scripted(report, conn)
    done("scripted")
    step_outbox(report, conn, deferred, server.dir)
    done("outbox")
  end)
  local received = #server.received()
  local pid = server.pid
  server.stop()
  if not ok then error(err, 0) end

  report.server = { received = received, stopped = true, dir = server.dir, pid = pid,
    kept = args.keep and true or false }
  if args.json then
    common.print_json(report)
    return common.EXIT.ok
  end
  local outboxed = {}
  for _, m in ipairs(report.outbox.messages) do outboxed[m.address] = m end
  heading("Summary")
  local rows = { { "alice@demo.test", "250", report.sent.outcome, "delivered on the first try" } }
  for _, s in ipairs(report.scripted) do
    local m = outboxed[s.address]
    local final = s.outcome == "deferred" and ("retried through the outbox: delivered"
      .. (m and (" on attempt " .. m.attempts .. " (replies " .. table.concat(m.replies, ", ")
        .. ")") or ""))
      or (s.action == "remove_address" and "not retried: remove the address"
      or "not retried: " .. tostring(s.action))
    rows[#rows + 1] = { s.address, tostring(s.code), s.outcome, final }
  end
  common.print_table({ "RECIPIENT", "FIRST", "OUTCOME", "WHAT HAPPENED" }, rows, out)
  say("")
  say("Attempts count the first send too. The server's script answers throttled@ with")
  say("421 twice, so the outbox's first retry is deferred again and backs off once more;")
  say("busy@ gets 450 once, then 250.")
  say(("%d replies classified; %d messages received by the server over TLS; "
    .. "%d deferred and retried to delivery."):format(report.classified, received,
    report.outbox.delivered))
  if args.keep then
    say("server stopped; its files are kept in ", server.dir)
  else
    say("server stopped; its temporary files are removed.")
  end
  say("Next: smtpkit send --help, smtpkit check-header --help, smtpkit classify --help")
  return common.EXIT.ok
end

return M
