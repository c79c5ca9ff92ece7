--- `smtpkit outbox list|run|show ID`: the messages waiting in the outbox
-- (deferred by `send` and `bulk`), and the .eml files written without a server.
-- @module smtpkit.cli.outbox
local common = require "smtpkit.cli.common"

local M = {
  summary = "List, show and retry the messages waiting in the outbox.",
}

function M.parser(p)
  p:description([[The outbox: messages deferred by 'smtpkit send' and 'smtpkit bulk' wait
there for a retry, on disk (nothing is lost if the process dies).

   smtpkit outbox list [--state STATE]   the messages and their states
   smtpkit outbox show ID                one message's record and attempts
   smtpkit outbox run --server HOST:PORT send what is due, apply retry rules

.eml files written by 'smtpkit send' without --server are listed too.]])
  p:argument("action", "list, show or run.")
  p:argument("id", "The message id (for show)."):args("?")
  p:option("--state", "list: only this state (queued, sending, deferred, delivered, bounced).")
    :argname("<state>")
  p:option("--limit", "run: send at most this many messages."):argname("<n>"):convert(tonumber)
  common.add_server_options(p)
  p:flag("--json", "Print JSON.")
  p:epilog([[Exit status: 0 ok, 1 a message failed during run, 2 usage, 3 no such
message or unreadable outbox, 4 network, 5 TLS, 6 authentication,
7 messages are still deferred after run.]])
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

local function do_list(args, dir)
  local ok_mod = pcall(require, "smtpkit.outbox")
  local records = {}
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
    end
  end
  table.sort(records, function(a, b) return tostring(a.id) < tostring(b.id) end)
  local emls = args.state and {} or eml_files(dir)
  if args.json then
    local list = common.array({})
    for i, r in ipairs(records) do
      list[i] = { id = r.id, state = r.state, to = recipients_of(r), attempts = attempts_of(r),
        due = r.due, from = r.from, maybe_delivered = r.maybe_delivered }
    end
    common.print_json({ outbox = dir, messages = list, eml = common.array(emls) })
    return common.EXIT.ok
  end
  if #records == 0 and #emls == 0 then
    io.stdout:write("the outbox ", dir, " is empty", has_store and "" or " (nothing written yet)", "\n")
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
    io.stdout:write(#records > 0 and "\n" or "", "written without a server (.eml):\n")
    for _, f in ipairs(emls) do io.stdout:write("  ", f, "\n") end
  end
  return common.EXIT.ok
end

local function do_show(args, dir)
  if not args.id then common.fail("usage", "outbox show needs an ID (see 'smtpkit outbox list')", "usage") end
  local box = open_box(dir)
  local rec, err = box:get(args.id)
  if not rec then
    common.fail("input", "no message " .. args.id .. " in the outbox " .. dir
      .. (err and (": " .. tostring(err)) or ""), "not_found")
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
  for _, k in ipairs(keys) do io.stdout:write(("%-16s %s\n"):format(k .. ":", tostring(rec[k]))) end
  io.stdout:write(("%-16s %s\n"):format("to:", recipients_of(rec)))
  for _, rc in ipairs(type(rec.rcpts) == "table" and rec.rcpts or {}) do
    local reply = type(rc.reply) == "table" and rc.reply or {}
    io.stdout:write(("  %-30s %-10s %s\n"):format(tostring(rc.address), tostring(rc.status or "?"),
      reply.code and (tostring(reply.code) .. " " .. tostring(reply.text or "")) or ""))
  end
  local hist = type(rec.attempts) == "table" and rec.attempts or rec.history
  if type(hist) == "table" and #hist > 0 then
    io.stdout:write("attempts:\n")
    for i, a in ipairs(hist) do
      local reply = type(a.reply) == "table" and a.reply or a
      local what = reply.code and (tostring(reply.code) .. " " .. tostring(reply.text or ""))
        or tostring(a.why or a.message or "")
      io.stdout:write(("  %d. %s %s %s\n"):format(i, when(a.at or a.time),
        tostring(a.outcome or (a.classification and a.classification.outcome) or "?"), what))
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
  local summary, err = box:run{ connect = conn, policy = retry.policy(), limit = args.limit }
  if summary == nil then common.fail_error(err, "outbox run") end
  if type(summary) == "table" and summary.error then
    common.fail_error(summary.error, ("outbox run stopped (%s:%d)"):format(conn.host, conn.port))
  end
  local after = box:list() or {}
  local counts = {}
  for _, r in ipairs(after) do counts[r.state] = (counts[r.state] or 0) + 1 end
  if args.json then
    common.print_json({ run = type(summary) == "table" and summary or nil, states = counts })
  else
    local rows = {}
    for state, n in pairs(counts) do rows[#rows + 1] = { state, tostring(n) } end
    table.sort(rows, function(a, b) return a[1] < b[1] end)
    common.print_table({ "STATE", "MESSAGES" }, rows)
  end
  if type(summary) == "table" and ((summary.bounced or 0) > 0 or (summary.failed or 0) > 0) then
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
