--- `smtpkit bulk CSV --template FILE`: one personalised message per CSV row,
-- sent over reused connections with a rate limit; a progress bar on a
-- terminal (plain lines otherwise), a summary of outcomes and reasons at the
-- end; deferred messages go to the outbox.
-- @module smtpkit.cli.bulk
local common = require "smtpkit.cli.common"
local send_cmd = require "smtpkit.cli.send"

local M = {
  summary = "Send one message per CSV row from a template, with a rate limit.",
}

function M.parser(p)
  p:description([[Send one message per row of a CSV file, made from a template.

The CSV's first row names the columns; one column holds the address (--column,
default "email"). The template is a small message: header lines (Subject:,
and optionally From:, Reply-To:, or any other), a blank line, then the text
body. {{name}} anywhere is replaced by that row's column "name". Every field
the template uses must be a column: this is checked before anything is sent.

Messages go over one reused connection at most --rate per second; with
--rate 0 they go in batches, each message's commands written together with
the previous one's end of data when the server offers PIPELINING. Deferred
ones (4xx) go to the outbox: retry them with 'smtpkit outbox run'. Without
--server every message is written to the outbox directory as an .eml file.]])
  p:argument("csv", "The recipients, a CSV file with a header row (- for standard input).")
  p:option("--template", "The message template file."):argname("<file>")
  p:option("--column", "The CSV column with the address."):argname("<name>"):default("email")
  p:option("--from", "Sender, when the template has no From: line."):argname("<addr>")
  p:option("--rate", "At most this many messages per second (0: no limit)."):argname("<n>")
    :default("5"):convert(tonumber)
  p:option("--category", "X-SMTPAPI category (repeatable)."):argname("<name>"):count("*")
  p:flag("--no-click-tracking", "X-SMTPAPI: disable click tracking.")
  common.add_server_options(p)
  p:flag("--progress", "Force the progress bar even when not on a terminal.")
  p:flag("--json", "Print one JSON object per message, then a summary object.")
  p:epilog([[Template example (welcome.txt):
   Subject: Welcome, {{name}}
   From: Team <team@example.com>

   Hello {{name}}, your plan is {{plan}}.

Exit status: 0 every message accepted (or written), 1 some refused, 2 usage,
3 bad CSV or template, 4 network, 5 TLS, 6 authentication, 7 some deferred
(and none refused).]])
  return p
end

--- Parses a template file: returns headers (list of {name, value}), body.
function M.parse_template(text, name)
  text = text:gsub("\r\n", "\n")
  local head, body = text:match("^(.-)\n\n(.*)$")
  if not head then
    common.fail("input", "malformed template " .. name .. ": it needs header lines, a blank "
      .. "line, then the body", "template")
  end
  local headers, n = {}, 0
  for line in (head .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if line == "" then -- luacheck: ignore 542 (an empty head: no header lines)
    elseif line:match("^[ \t]") and #headers > 0 then
      headers[#headers][2] = headers[#headers][2] .. " " .. line:match("^%s*(.-)$")
    else
      local k, v = line:match("^([!-9;-~]+):%s*(.*)$")
      if not k then
        common.fail("input", ("malformed template %s:%d: expected \"Name: value\", got '%s'")
          :format(name, n, common.truncate(line, 40)), "template")
      end
      headers[#headers + 1] = { k, v }
    end
  end
  return headers, body
end

--- The {{fields}} used in `s`, as a set.
function M.fields_in(s, set)
  set = set or {}
  for f in s:gmatch("{{%s*([^{}]-)%s*}}") do set[f] = true end
  return set
end

local function substitute(s, record)
  return (s:gsub("{{%s*([^{}]-)%s*}}", function(f) return record[f] or "" end))
end

-- Progress: a bar on a terminal, plain lines otherwise.
local function progress(total, tty, ok_label)
  local last_len = 0
  local p = {}
  function p.update(i, counts, address, outcome)
    if tty then
      local w = 30
      local filled = total > 0 and math.floor(w * i / total) or w
      local line = ("\r[%s%s] %d/%d  %s %d  deferred %d  failed %d")
        :format(string.rep("#", filled), string.rep(".", w - filled), i, total, ok_label,
          counts.delivered or 0, counts.deferred or 0, counts.failed or 0)
      io.stderr:write(line, string.rep(" ", math.max(0, last_len - #line)))
      last_len = #line
      io.stderr:flush()
    else
      io.stderr:write(("bulk: %d/%d %s: %s\n"):format(i, total, address, outcome))
    end
  end
  function p.finish()
    if tty then io.stderr:write("\n") end
  end
  return p
end

function M.run(args)
  if not args.template then common.fail("usage", "give --template FILE", "usage") end
  if not args.rate or args.rate < 0 then common.fail("usage", "--rate must be a number >= 0", "usage") end
  local csv_name = args.csv == "-" and "<stdin>" or args.csv
  local tpl_text = common.read_file(args.template, "template")
  local csv_text = common.read_file(args.csv, "CSV file")
  local header, records = common.parse_csv(csv_text, csv_name)
  if #records == 0 then
    -- a header alone is a mistake (the wrong file, or an export cut short),
    -- not "0 messages sent, success"
    common.fail("input", ("malformed CSV: %s: no rows after the header row"):format(csv_name), "csv")
  end
  local columns = {}
  for _, h in ipairs(header) do columns[h] = true end
  if not columns[args.column] then
    common.fail("input", ("malformed CSV: %s: no column '%s' (columns: %s); use --column")
      :format(csv_name, args.column, table.concat(header, ", ")), "csv")
  end
  local theaders, tbody = M.parse_template(tpl_text, args.template)
  local used = M.fields_in(tbody)
  for _, h in ipairs(theaders) do M.fields_in(h[2], used) end
  for f in pairs(used) do
    if not columns[f] then
      common.fail("input", ("template %s uses {{%s}}, which is not a column of %s (columns: %s)")
        :format(args.template, f, csv_name, table.concat(header, ", ")), "template")
    end
  end
  local from, subject
  local extra = {}
  for _, h in ipairs(theaders) do
    local lname = h[1]:lower()
    if lname == "from" then from = h[2]
    elseif lname == "subject" then subject = h[2]
    elseif lname ~= "to" then extra[#extra + 1] = h end -- To: comes from the CSV
  end
  from = from or args.from
  if not from then common.fail("usage", "no sender: add a From: line to the template or give --from",
    "usage") end
  for i, rec in ipairs(records) do
    local a = rec.fields[args.column]
    if not a or not a:match("^[^@%s]+@[^@%s]+$") then
      common.fail("input", ("malformed CSV: %s:%d: '%s' is not an address (row %d)")
        :format(csv_name, rec.line, tostring(a), i), "csv")
    end
  end
  -- a field with a line break would make a header of its own: refused for
  -- every row before the first message goes, not half-way through the run
  local header_values = { { "From", from }, { "Subject", subject } }
  for _, h in ipairs(extra) do header_values[#header_values + 1] = h end
  for _, rec in ipairs(records) do
    for _, h in ipairs(header_values) do
      if h[2] and substitute(h[2], rec.fields):find("[\r\n]") then
        common.fail("input", ("malformed CSV: %s:%d: a field used in the %s: header has a line break")
          :format(csv_name, rec.line, h[1]), "csv")
      end
    end
  end
  local smtpapi = send_cmd.smtpapi_from_args{ category = args.category,
    no_click_tracking = args.no_click_tracking, template = {} }

  local conn = common.server_opts(args)
  local outbox_dir = common.outbox_dir(args)
  local smtpkit = conn and common.smtpkit("connect") or nil
  local client
  local function connect()
    local c, err = smtpkit.connect(conn)
    if not c then common.fail_error(err, ("%s:%d"):format(conn.host, conn.port)) end
    return c
  end
  local box
  local function to_outbox(msg, attempt)
    if not box then
      local outbox = common.need("smtpkit.outbox", "the outbox (smtpkit.outbox)")
      local b, err = outbox.open(outbox_dir)
      if not b then common.fail_error(err, "opening the outbox " .. outbox_dir) end
      box = b
    end
    -- the attempt is recorded: the next run applies the backoff
    return (common.queue_deferred(box, msg, attempt))
  end

  local tty = args.progress or (not args.json and common.isatty(2))
  local prog = progress(#records, tty, conn and "delivered" or "written")
  local counts, reasons = {}, {}

  local function compose(rec)
    local fields = {
      from = substitute(from, rec.fields), to = rec.fields[args.column],
      subject = subject and substitute(subject, rec.fields) or nil,
      text = substitute(tbody, rec.fields), smtpapi = smtpapi,
    }
    if #extra > 0 then
      fields.headers = {}
      for _, h in ipairs(extra) do
        fields.headers[#fields.headers + 1] = { h[1], substitute(h[2], rec.fields) }
      end
    end
    return send_cmd.compose(fields)
  end

  -- What the send of row i's message came to (result, or nil and err):
  -- counted, printed, deferred ones queued in the outbox.
  local function account(i, rec, msg, result, err)
    local address = rec.fields[args.column]
    local entry = { address = address, row = rec.line }
    if not conn then
      entry.outcome, entry.written = "written", send_cmd.write_eml(msg, outbox_dir)
    elseif not result then
      local ek = common.exit_for_error(err)
      if ek == "tls" or ek == "auth" then common.fail_error(err) end
      entry.outcome, entry.reason, entry.text = "failed", err and err.kind or "error", tostring(err)
    else
      local r = send_cmd.recipient_rows(result, { address })[1] or {}
      entry.outcome, entry.reason, entry.action = r.outcome, r.reason, r.action
      entry.code, entry.text = r.code, send_cmd.reply_string(r)
      if result.maybe_delivered then entry.outcome = "unknown" entry.reason = "maybe_delivered" end
    end
    if entry.outcome == "deferred" then entry.outbox_id = to_outbox(msg, result or err) end
    local bucket = (entry.outcome == "delivered" or entry.outcome == "written") and "delivered"
      or entry.outcome == "deferred" and "deferred" or "failed"
    counts[bucket] = (counts[bucket] or 0) + 1
    local key = tostring(entry.outcome) .. "\0" .. tostring(entry.reason or "")
    reasons[key] = (reasons[key] or 0) + 1
    if args.json then common.print_json(entry) end
    prog.update(i, counts, address, entry.outcome .. (entry.reason and (" " .. entry.reason) or ""))
  end

  if conn and args.rate == 0 then
    -- no rate limit: batches over one connection, each message's commands
    -- written with the previous end of data (client:send_many), which also
    -- reconnects when the server closed the connection between messages
    local BATCH = 100
    client = connect()
    for first = 1, #records, BATCH do
      local msgs, rows = {}, {}
      for i = first, math.min(first + BATCH - 1, #records) do
        rows[#rows + 1] = i
        msgs[#msgs + 1] = compose(records[i])
      end
      local results, errs = client:send_many(msgs)
      for k, i in ipairs(rows) do account(i, records[i], msgs[k], results[k] or nil, errs[k]) end
    end
  else
    local interval = args.rate > 0 and 1 / args.rate or 0
    local next_at = common.now()
    for i, rec in ipairs(records) do
      local msg = compose(rec)
      local result, err
      if conn then
        local wait = next_at - common.now()
        if wait > 0 then common.sleep(wait) end
        next_at = math.max(next_at, common.now()) + interval
        client = client or connect()
        result, err = client:send(msg)
        if not result and type(err) == "table" and common.exit_for_error(err) == "network" then
          -- the connection went away between messages: one fresh connection
          pcall(function() client:close() end)
          client = connect()
          result, err = client:send(msg)
        end
      end
      account(i, rec, msg, result, err)
    end
  end
  prog.finish()
  if client then pcall(function() client:close() end) end

  local rows = {}
  for key, n in pairs(reasons) do
    local o, r = key:match("^(.-)%z(.*)$")
    rows[#rows + 1] = { o, r ~= "" and r or "-", tostring(n) }
  end
  table.sort(rows, function(a, b) return a[1] .. a[2] < b[1] .. b[2] end)
  if args.json then
    common.print_json({ summary = { total = #records, delivered = counts.delivered or 0,
      deferred = counts.deferred or 0, failed = counts.failed or 0,
      outbox = (counts.deferred or not conn) and outbox_dir or nil } })
  else
    common.print_table({ "OUTCOME", "REASON", "MESSAGES" }, rows)
    io.stdout:write(("%d messages: %d %s, %d deferred, %d failed\n"):format(#records,
      counts.delivered or 0, conn and "delivered" or "written to " .. outbox_dir,
      counts.deferred or 0, counts.failed or 0))
    if (counts.deferred or 0) > 0 then
      io.stdout:write("deferred messages are in the outbox ", outbox_dir,
        ": smtpkit outbox run ", common.server_args_string(args), "\n")
    end
  end
  if (counts.failed or 0) > 0 then return common.EXIT.failure end
  if (counts.deferred or 0) > 0 then return common.EXIT.deferred end
  return common.EXIT.ok
end

return M
