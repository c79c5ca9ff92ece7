--- `smtpkit outbox list|run|show ID`: the messages waiting in the outbox
-- (deferred by `send` and `bulk`), and the .eml files written without a server.
-- @module smtpkit.cli.outbox
local common = require "smtpkit.cli.common"

local M = {
  summary = "List, show and retry the messages waiting in the outbox.",
  --- The states `--state` accepts (smtpkit.outbox's, and maybe_delivered).
  STATES = { "queued", "sending", "deferred", "delivered", "bounced", "unknown", "maybe_delivered" },
}

function M.parser(p)
  p:description([[The outbox: messages deferred by 'smtpkit send' and 'smtpkit bulk' wait
there for a retry, on disk (nothing is lost if the process dies).

   smtpkit outbox list [--state STATE]   the messages and their states
   smtpkit outbox show ID                one message's record and attempts
   smtpkit outbox run --server HOST:PORT send what is due, apply retry rules
   smtpkit outbox run --now --server ...  retry every waiting message now

'run' sends only what is due: a deferred message waits for its next try
(the backoff after each 4xx: 5 minutes, then longer, up to 72 hours), and a
domain that asked to slow down gets fewer messages. --now retries every
waiting message at once (an operator's decision).

.eml files written by 'smtpkit send' without --server are listed too, but
'run' never sends them: they are files for you to inspect.]])
  p:argument("action", "list, show or run.")
  p:argument("id", "The message id (for show)."):args("?")
  p:option("--state", "list: only this state: " .. table.concat(M.STATES, ", ") .. ".")
    :argname("<state>")
  p:option("--limit", "run: send at most this many messages."):argname("<n>"):convert(tonumber)
  p:flag("--now", "run: retry every waiting message now, even before its next try is due "
    .. "and while its domain is slowed down or paused.")
  common.add_server_options(p, "run: the SMTP server to send the waiting messages to, as "
    .. "host:port (port 587 if omitted); required by run.")
  p:flag("--json", "Print JSON.")
  p:epilog([[Exit status: 0 ok, 1 a recipient refused or a message failed during run,
2 usage, 3 no such message or unreadable outbox, 4 network, 5 TLS,
6 authentication, 7 messages are still deferred after run.]])
  return p
end

local function open_box(dir)
  local outbox = common.need("smtpkit.outbox", "the outbox (smtpkit.outbox)")
  local box, err = outbox.open(dir)
  if not box then common.fail_error(err, "cannot open the outbox " .. dir) end
  return box
end

local function recipients_of(rec)
  local to = rec.rcpts or rec.to or rec.rcpt or rec.recipients
  if type(to) == "table" then
    local list = {}
    for _, a in ipairs(to) do
      list[#list + 1] = type(a) == "table" and (a.address or a.to or "?") or tostring(a)
    end
    return table.concat(list, ", ")
  end
  return to and tostring(to) or "?"
end

local function attempts_of(rec)
  local a = rec.attempts
  if type(a) == "table" then return #a end
  if type(a) == "number" then return a end
  if type(rec.history) == "table" then return #rec.history end
  return 0
end

local function when(t)
  if type(t) ~= "number" or t <= 0 then return "-" end
  return os.date("!%Y-%m-%d %H:%M:%SZ", math.floor(t))
end

-- Record fields that hold times (seconds since the epoch).
local TIME_FIELDS = { created = true, updated = true, due = true, sending_since = true,
  suppressed_at = true }

local function duration(s)
  local ok, retry = pcall(require, "smtpkit.retry")
  if ok and retry.duration then return retry.duration(s) end
  return tostring(math.floor(s)) .. "s"
end

-- .eml files written by `send` without a server.
local function eml_files(dir)
  local files = {}
  local p = io.popen("ls -1 " .. common.shquote(dir) .. " 2>/dev/null")
  if p then
    for name in p:lines() do
      if name:match("%.eml$") then files[#files + 1] = dir .. "/" .. name end
    end
    p:close()
  end
  table.sort(files)
  return files
end

local function check_state(state)
  if state == nil then return end
  for _, s in ipairs(M.STATES) do
    if s == state then return end
  end
  common.fail("usage", "unknown state '" .. tostring(state) .. "' for --state: use "
    .. table.concat(M.STATES, ", "), "usage")
end

local function do_list(args, dir)
  check_state(args.state)
  local ok_mod = pcall(require, "smtpkit.outbox")
  local records, damaged = {}, {}
  local has_store = false
  if ok_mod then
    local fh = io.open(dir, "rb")
    if fh then
      fh:close()
      has_store = true
      local box = open_box(dir)
      local list, err = box:list(args.state)
      if not list then common.fail_error(err, "listing the outbox " .. dir) end
      records = list
      damaged = box.damaged and box:damaged() or {}
    end
  end
  -- files that are not readable records are skipped by the outbox: say so
  for _, d in ipairs(damaged) do
    io.stderr:write(("smtpkit outbox: warning: %s/msg/%s is not a readable record (%s): skipped\n")
      :format(dir, tostring(d.id), tostring(d.why)))
  end
  table.sort(records, function(a, b) return tostring(a.id) < tostring(b.id) end)
  local emls = args.state and {} or eml_files(dir)
  if args.json then
    local list = common.array({})
    for i, r in ipairs(records) do
      list[i] = { id = r.id, state = r.state, to = recipients_of(r), attempts = attempts_of(r),
        due = r.due, from = r.from, maybe_delivered = r.maybe_delivered }
    end
    common.print_json({ outbox = dir, messages = list, eml = common.array(emls),
      damaged = common.array(damaged) })
    return common.EXIT.ok
  end
  if #records == 0 and #emls == 0 then
    if args.state then
      io.stdout:write("no messages in state ", args.state, " in the outbox ", dir, "\n")
    else
      io.stdout:write("the outbox ", dir, " is empty", has_store and "" or " (nothing written yet)", "\n")
    end
    return common.EXIT.ok
  end
  if #records > 0 then
    local rows = {}
    for i, r in ipairs(records) do
      rows[i] = { tostring(r.id), tostring(r.state), common.truncate(recipients_of(r), 36),
        tostring(attempts_of(r)), (r.state == "deferred" or r.state == "queued") and when(r.due) or "-" }
    end
    common.print_table({ "ID", "STATE", "TO", "ATTEMPTS", "NEXT" }, rows)
  end
  if #emls > 0 then
    io.stdout:write(#records > 0 and "\n" or "",
      "written without a server (.eml; 'outbox run' does not send these):\n")
    for _, f in ipairs(emls) do io.stdout:write("  ", f, "\n") end
  end
  return common.EXIT.ok
end

local function do_show(args, dir)
  if not args.id then common.fail("usage", "outbox show needs an ID (see 'smtpkit outbox list')", "usage") end
  local box = open_box(dir)
  local rec, err = box:get(args.id)
  if not rec then
    if type(err) == "table" and err.kind ~= "not_found" then
      common.fail_error(err, "reading message " .. args.id .. " in the outbox " .. dir)
    end
    common.fail("input", "no message " .. args.id .. " in the outbox " .. dir, "not_found")
  end
  if args.json then
    common.print_json(rec)
    return common.EXIT.ok
  end
  local keys = {}
  for k, v in pairs(rec) do
    if type(v) ~= "table" and type(v) ~= "function" then keys[#keys + 1] = k end
  end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v = rec[k]
    if TIME_FIELDS[k] and type(v) == "number" then v = when(v) end
    io.stdout:write(("%-16s %s\n"):format(k .. ":", tostring(v)))
  end
  if type(rec.retry) == "table" and rec.state == "deferred" and type(rec.due) == "number" then
    io.stdout:write(("%-16s %s\n"):format("next try:", when(rec.due)
      .. (rec.due > os.time() and (" (in " .. duration(rec.due - os.time()) .. ")") or " (due now)")))
  end
  io.stdout:write(("%-16s %s\n"):format("to:", recipients_of(rec)))
  local has_lib, smtpkit = pcall(require, "smtpkit")
  for _, rc in ipairs(type(rec.rcpts) == "table" and rec.rcpts or {}) do
    local reply = type(rc.reply) == "table" and rc.reply or {}
    local text = reply.code and common.reply_line(reply) or ""
    local advice = ""
    if reply.code and rc.status ~= "delivered" and has_lib and type(smtpkit) == "table"
      and smtpkit.classify then
      -- what the reply means for this recipient (the attempt's line below
      -- is about the message as a whole)
      local cok, v = pcall(smtpkit.classify, text)
      if cok and type(v) == "table" then advice = "  (" .. common.verdict_line(v) .. ")" end
    end
    io.stdout:write((("  %-30s %-10s %s%s"):format(tostring(rc.address), tostring(rc.status or "?"),
      text, advice):gsub("%s+$", "")), "\n")
  end
  local hist = type(rec.attempts) == "table" and rec.attempts or rec.history
  if type(hist) == "table" and #hist > 0 then
    io.stdout:write("attempts:\n")
    for i, a in ipairs(hist) do
      local reply = type(a.reply) == "table" and a.reply or a
      local what = reply.code and common.reply_line(reply) or tostring(a.why or a.message or "")
      local advice = {}
      if a.reason then advice[#advice + 1] = tostring(a.reason) end
      if a.action and a.action ~= "none" then advice[#advice + 1] = "-> " .. tostring(a.action) end
      io.stdout:write(("  %d. %s %s%s %s\n"):format(i, when(a.at or a.time),
        tostring(a.outcome or (a.classification and a.classification.outcome) or "?"),
        #advice > 0 and (" (" .. table.concat(advice, " ") .. ")") or "", what))
    end
  end
  return common.EXIT.ok
end

local function do_run(args, dir)
  local conn = common.server_opts(args)
  if not conn then
    common.fail("usage", "outbox run needs --server HOST:PORT (where to send the waiting messages)", "usage")
  end
  local retry = common.need("smtpkit.retry", "retry policies (smtpkit.retry)")
  local box = open_box(dir)
  -- recipients refused during this run (a message partly delivered ends
  -- `delivered`, but its refused recipients are failures all the same)
  local refused = {}
  local function on_result(rec, d)
    for _, rc in ipairs(type(rec.rcpts) == "table" and rec.rcpts or {}) do
      if type(d.recipients) == "table" and d.recipients[rc.address] == "failed" then
        local reply = type(rc.reply) == "table" and rc.reply or {}
        refused[#refused + 1] = { id = rec.id, address = rc.address, code = reply.code,
          enhanced = reply.enhanced, text = reply.text }
      end
    end
  end
  local summary, err = box:run{ connect = conn, policy = retry.policy(), limit = args.limit,
    now = args.now or nil, on_result = on_result }
  if summary == nil then common.fail_error(err, "outbox run") end
  if type(summary) == "table" and summary.error then
    local e = summary.error
    local where = ("outbox run stopped (%s:%d)"):format(conn.host, conn.port)
    local c = type(e) == "table" and type(e.classification) == "table" and e.classification or nil
    if type(e) == "table" and e.kind == "server" and c and c.outcome == "deferred" then
      -- the server said "not now" to the session: the messages wait (exit 7)
      common.fail("deferred", where .. ": " .. common.cli_message(e.message)
        .. "; the messages wait in the outbox for their next try", "deferred")
    end
    common.fail_error(e, where)
  end
  local after = box:list() or {}
  local counts = {}
  for _, r in ipairs(after) do counts[r.state] = (counts[r.state] or 0) + 1 end
  local emls = eml_files(dir)
  if type(summary) == "table" then summary.refused = #refused end
  if args.json then
    local list = common.array({})
    for i, r in ipairs(refused) do list[i] = r end
    common.print_json({ run = type(summary) == "table" and summary or nil, states = counts,
      refused = list, eml_not_sent = #emls })
  else
    local rows = {}
    for state, n in pairs(counts) do rows[#rows + 1] = { state, tostring(n) } end
    table.sort(rows, function(a, b) return a[1] < b[1] end)
    common.print_table({ "STATE", "MESSAGES" }, rows)
    if type(summary) == "table" then
      io.stdout:write(("this run: %d attempted, %d delivered, %d deferred, %d bounced, "
        .. "%d recipient%s refused%s\n"):format(summary.attempted or 0, summary.delivered or 0,
        summary.deferred or 0, summary.bounced or 0, #refused, #refused == 1 and "" or "s",
        (summary.skipped or 0) > 0 and (", " .. summary.skipped .. " not due (domain slowed down "
          .. "or paused)") or ""))
    end
    for _, r in ipairs(refused) do
      local reply = r.code and common.reply_line(r) or "refused"
      io.stdout:write("refused: ", r.address, " (", r.id, "): ", reply, "\n")
    end
    if #emls > 0 then
      io.stdout:write(("%d .eml file%s in %s not sent: they were written without a server "
        .. "(outbox run sends only queued messages)\n"):format(#emls, #emls == 1 and "" or "s", dir))
    end
  end
  if #refused > 0 or (type(summary) == "table" and ((summary.bounced or 0) > 0
    or (summary.failed or 0) > 0)) then
    return common.EXIT.failure
  end
  if (counts.deferred or 0) > 0 or (counts.queued or 0) > 0 then return common.EXIT.deferred end
  return common.EXIT.ok
end

function M.run(args)
  local dir = common.outbox_dir(args)
  if args.action == "list" then return do_list(args, dir)
  elseif args.action == "show" then return do_show(args, dir)
  elseif args.action == "run" then return do_run(args, dir)
  else
    common.fail("usage", "unknown action '" .. args.action .. "': use list, show ID or run", "usage")
  end
end

return M
