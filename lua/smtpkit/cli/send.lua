--- `smtpkit send`: compose one message and send it, or, with no server,
-- write it to the local outbox directory as an .eml file.
-- @module smtpkit.cli.send
local common = require "smtpkit.cli.common"

local M = {
  summary = "Send one message (or write it to the outbox as .eml without --server).",
}

function M.parser(p)
  p:description([[Compose one message and send it; print the classified result per recipient.

Without --server nothing goes on the network: the message is written to the
outbox directory as an .eml file, so everything can be tried without an
account. The password for --user comes from $SMTPKIT_PASSWORD or a prompt on
a terminal, never from the command line.]])
  p:option("--from", "Sender address (\"Name <addr>\" allowed)."):argname("<addr>")
  p:option("--to", "Recipient (repeatable)."):argname("<addr>"):count("*")
  p:option("--cc", "Cc recipient (repeatable)."):argname("<addr>"):count("*")
  p:option("--bcc", "Bcc recipient, envelope only (repeatable)."):argname("<addr>"):count("*")
  p:option("--subject", "Subject (UTF-8 is fine)."):argname("<text>")
  p:option("--text", "Plain text body; @FILE reads a file, @- standard input."):argname("<text>")
  p:option("--html", "HTML body; @FILE reads a file."):argname("<html>")
  p:option("--attach", "Attach a file (repeatable)."):argname("<file>"):count("*")
  p:option("--header", "Extra header \"Name: value\" (repeatable)."):argname("<header>"):count("*")
  p:option("--smtpapi", "X-SMTPAPI header from a JSON file (validated before sending)."):argname("<file>")
  p:option("--category", "X-SMTPAPI category (repeatable)."):argname("<name>"):count("*")
  p:flag("--no-click-tracking", "X-SMTPAPI: disable click tracking (the seed's example).")
  p:option("--template", "Apply a named X-SMTPAPI template, e.g. disable_open_tracking "
    .. "(repeatable)."):argname("<name>"):count("*")
  common.add_server_options(p)
  p:flag("--json", "Print the result as JSON.")
  p:epilog([[Examples:
   smtpkit send --from me@example.com --to you@example.com --subject Hi \
       --text "Hello"
   export SMTPKIT_PASSWORD=...   # a SendGrid API key: user "apikey"
   smtpkit send --server smtp.sendgrid.net:587 --user apikey \
       --from me@example.com --to you@example.com --subject Hi \
       --text @body.txt --category welcome --no-click-tracking

Exit status: 0 accepted for every recipient (or written to the outbox), 1 a
recipient refused, 2 usage, 3 bad input, 4 network, 5 TLS, 6 authentication,
7 deferred (queued in the outbox for a retry).]])
  return p
end

local function body_arg(v, what)
  if v and v:sub(1, 1) == "@" then
    return common.read_file(v:sub(2), what .. " file")
  end
  return v
end

--- Builds the X-SMTPAPI value (JSON text) from --smtpapi and the shortcuts,
-- validated; nil when none was asked for.
function M.smtpapi_from_args(args)
  local shortcuts = #(args.category or {}) > 0 or args.no_click_tracking or #(args.template or {}) > 0
  if not args.smtpapi and not shortcuts then return nil end
  local smtpapi = common.need("smtpkit.smtpapi", "X-SMTPAPI support (smtpkit.smtpapi)")
  local function invalid(problems, where)
    local p = problems and problems[1] or {}
    for _, pr in ipairs(problems or {}) do
      if pr.severity == "error" then p = pr break end
    end
    where = where and (where .. ":" .. (p.line or 1) .. ":" .. (p.column or 1) .. ": ") or ""
    common.fail("input", ("invalid X-SMTPAPI header: %s%s%s"):format(where,
      (p.path and p.path ~= "") and (p.path .. ": ") or "", tostring(p.message)), "validation")
  end
  local json
  if args.smtpapi then
    json = common.read_file(args.smtpapi, "X-SMTPAPI file")
    local ok, problems = smtpapi.validate(json)
    if not ok then invalid(problems, args.smtpapi) end
  end
  if shortcuts then
    local init
    if json then
      local problems
      init, problems = smtpapi.decode(json)
      if not init then invalid(problems, args.smtpapi) end
    end
    local b = smtpapi.new(init)
    for _, c in ipairs(args.category or {}) do b:add_category(c) end
    if args.no_click_tracking then b:apply("disable_click_tracking") end
    for _, name in ipairs(args.template or {}) do
      local ok, err = pcall(b.apply, b, name)
      if not ok then
        common.fail("usage", "--template " .. name .. ": "
          .. (tostring(err):gsub("^[^:]*:%d+: ", ""):match("^[^\n]*")), "usage")
      end
    end
    json = b:json()
    local ok, problems = smtpapi.validate(json)
    if not ok then invalid(problems) end
  end
  return json
end

local function parse_headers(list)
  local headers = {}
  for _, h in ipairs(list or {}) do
    local name, value = h:match("^([!-9;-~]+):%s*(.*)$")
    if not name then
      common.fail("usage", "--header must be \"Name: value\", not '" .. h .. "'", "usage")
    end
    headers[#headers + 1] = { name, value }
  end
  return headers
end

--- Composes a message from parsed arguments (fields given explicitly).
function M.compose(fields)
  local smtpkit = common.smtpkit()
  local has, message = pcall(function() return smtpkit.message end)
  if not has or not message then
    common.fail("unavailable", "message composition (smtpkit.message) is not available in this build",
      "unavailable")
  end
  local ok, msg, err = pcall(message, fields)
  if not ok then
    -- composition raises for programming mistakes: here they come from user input
    common.fail("input", "cannot compose the message: " .. tostring(msg):gsub("^[^:]*:%d+: ", ""),
      "message")
  end
  if not msg then common.fail_error(err, "cannot compose the message") end
  return msg
end

--- Opens the outbox directory `dir`, or fails with one line.
function M.open_outbox(dir)
  local outbox = common.need("smtpkit.outbox", "the outbox (smtpkit.outbox)")
  local box, err = outbox.open(dir)
  if not box then common.fail_error(err, "cannot open the outbox " .. dir) end
  return box
end

--- ", next try at DATE" from a retry decision (empty without one).
function M.next_try(d)
  if type(d) ~= "table" or type(d.at) ~= "number" then return "" end
  return ", next try " .. os.date("!%Y-%m-%d %H:%M:%SZ", math.floor(d.at))
end

local counter = 0
--- Writes a message to `dir` as an .eml file; returns the path.
function M.write_eml(msg, dir)
  common.mkdir_p(dir)
  counter = counter + 1
  local name = ("%s-%05d-%d.eml"):format(os.date("!%Y%m%dT%H%M%SZ"), math.random(0, 99999), counter)
  local path = dir .. "/" .. name
  local tmp = path .. ".tmp"
  local fh, err = io.open(tmp, "wb")
  if not fh then common.fail("input", "cannot write " .. tmp .. ": " .. tostring(err), "io") end
  -- a file of the message's bytes that ends with a line break (CRLF), as
  -- mail files do: the rendered message ends after its last body line
  local ok, werr, last
  if type(msg.write) == "function" then
    local tail = ""
    ok, werr = msg:write({ write = function(_, c)
      tail = (tail .. c):sub(-2)
      return fh:write(c)
    end })
    last = tail
  else
    local text = msg:render()
    ok, werr = fh:write(text)
    last = text:sub(-2)
  end
  if ok and last ~= "\r\n" then ok, werr = fh:write("\r\n") end
  fh:close()
  if not ok then
    os.remove(tmp)
    common.fail("input", "cannot write " .. path .. ": " .. tostring(werr), "io")
  end
  os.rename(tmp, path)
  return path
end

--- Flattens a send result into rows, one per recipient: address, reply,
-- outcome, reason, action, retry.
function M.recipient_rows(result, addresses)
  local rows = {}
  local list = type(result) == "table" and result.recipients or nil
  if type(list) == "table" and #list > 0 then
    for i, r in ipairs(list) do
      local c = type(r.classification) == "table" and r.classification or r
      local reply = type(r.reply) == "table" and r.reply or c
      rows[#rows + 1] = {
        address = r.address or r.to or r.rcpt or addresses[i] or "?",
        code = reply.code, enhanced = reply.enhanced, text = reply.text,
        outcome = c.outcome, reason = c.reason, action = c.action, retry = c.retry,
      }
    end
  elseif type(result) == "table" then
    local c = type(result.classification) == "table" and result.classification or result
    local reply = type(result.reply) == "table" and result.reply or c
    for _, a in ipairs(addresses) do
      rows[#rows + 1] = { address = a, code = reply.code, enhanced = reply.enhanced, text = reply.text,
        outcome = c.outcome, reason = c.reason, action = c.action, retry = c.retry }
    end
  end
  return rows
end

M.reply_string = common.reply_line

function M.run(args)
  if #(args.to or {}) + #(args.cc or {}) + #(args.bcc or {}) == 0 then
    common.fail("usage", "no recipient: give --to (or --cc, --bcc)", "usage")
  end
  if not args.from then common.fail("usage", "no sender: give --from", "usage") end
  local conn = common.server_opts(args)
  local smtpapi = M.smtpapi_from_args(args)
  local attachments
  for _, f in ipairs(args.attach or {}) do
    common.read_file(f, "attachment") -- fail early with a clear line
    attachments = attachments or {}
    attachments[#attachments + 1] = { path = f, filename = f:match("[^/]+$") }
  end
  local headers = parse_headers(args.header)
  local fields = {
    from = args.from, to = args.to, cc = #args.cc > 0 and args.cc or nil,
    bcc = #args.bcc > 0 and args.bcc or nil, subject = args.subject,
    text = body_arg(args.text, "--text"), html = body_arg(args.html, "--html"),
    attachments = attachments, smtpapi = smtpapi,
  }
  if #headers > 0 then
    fields.headers = {}
    for _, h in ipairs(headers) do fields.headers[#fields.headers + 1] = h end
  end
  if not fields.text and not fields.html then fields.text = "" end
  local msg = M.compose(fields)

  local outbox_dir = common.outbox_dir(args)
  if not conn then
    local path = M.write_eml(msg, outbox_dir)
    if args.json then
      common.print_json({ ok = true, written = path, sent = false })
    else
      io.stdout:write("no --server given: wrote ", path, "\n")
    end
    return common.EXIT.ok
  end

  local smtpkit = common.smtpkit("send")
  local result, err = smtpkit.send(conn, msg)
  if not result then
    -- refused for now before the message was offered (a 421 greeting, a 4xx
    -- to MAIL): the message waits in the outbox
    local c = type(err) == "table" and err.kind == "server" and type(err.classification) == "table"
      and err.classification or nil
    if c and c.outcome == "deferred" then
      local box = M.open_outbox(outbox_dir)
      local id, d = common.queue_deferred(box, msg, err)
      common.fail("deferred", common.cli_message(err.message) .. "; queued in " .. outbox_dir
        .. " as " .. id .. M.next_try(d) .. " (retry with: smtpkit outbox run "
        .. common.server_args_string(args) .. "; add --now to retry before then)", "deferred")
    end
    common.fail_error(err, ("%s:%d"):format(conn.host, conn.port))
  end
  local addresses = {}
  for _, list in ipairs({ args.to, args.cc, args.bcc }) do
    for _, a in ipairs(list) do addresses[#addresses + 1] = a end
  end
  local rows = M.recipient_rows(result, addresses)
  local code = common.EXIT.ok
  local any_deferred = false
  for _, r in ipairs(rows) do
    if r.outcome == "deferred" then any_deferred = true
    elseif r.outcome ~= "delivered" then code = common.EXIT.failure end
  end
  if result.maybe_delivered then code = common.EXIT.failure end
  local queued, decision
  if any_deferred then
    queued, decision = common.queue_deferred(M.open_outbox(outbox_dir), msg, result)
    if code == common.EXIT.ok then code = common.EXIT.deferred end
  end
  if args.json then
    local list = common.array({})
    for i, r in ipairs(rows) do list[i] = r end
    common.print_json({ ok = code == common.EXIT.ok, outcome = result.outcome,
      queue_id = result.queue_id, maybe_delivered = result.maybe_delivered,
      recipients = list, outbox_id = queued, outbox_due = decision and decision.at or nil,
      retry_command = queued and ("smtpkit outbox run " .. common.server_args_string(args)) or nil })
  else
    local t = {}
    for i, r in ipairs(rows) do
      t[i] = { r.address, common.truncate(M.reply_string(r), 50), r.outcome or "?", r.reason or "?",
        r.action or "?" }
    end
    common.print_table({ "RECIPIENT", "REPLY", "OUTCOME", "REASON", "ACTION" }, t)
    if result.queue_id then io.stdout:write("queue id: ", tostring(result.queue_id), "\n") end
    if result.maybe_delivered then
      io.stdout:write("no reply after the end of the message: it may have been delivered\n")
    end
    if queued then
      io.stdout:write("deferred: queued in ", outbox_dir, " as ", tostring(queued), M.next_try(decision),
        "; retry with: smtpkit outbox run ", common.server_args_string(args),
        " (add --now to retry before then)\n")
    end
  end
  return code
end

return M
