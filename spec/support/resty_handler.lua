-- luacheck: globals ngx
-- Loaded inside nginx by spec/resty_spec.lua (not by busted): sends one mail
-- with smtpkit.resty from the options in the request's query string and the
-- request body as the message, and prints the result as "key=value" lines
-- (spec/resty_spec.lua parses them). Query: port, tls, server_name, user,
-- password, verify=0, pool=0, pool_size, backlog, max_messages, to (comma
-- list), from, timeout_<group>, n (a request number, put in a header). The
-- output has "sent=" the verbs of the commands the client wrote.
local resty = require "smtpkit.resty"

local M = {}

local function opts_from(args)
  local timeouts = {}
  for k, v in pairs(args) do
    local name = type(k) == "string" and k:match("^timeout_(.+)$")
    if name then timeouts[name] = tonumber(v) end
  end
  return {
    host = args.host or "127.0.0.1",
    port = tonumber(args.port),
    tls = args.tls,
    server_name = args.server_name,
    username = args.user,
    password = args.password,
    verify = args.verify ~= "0",
    pool = args.pool ~= "0",
    pool_size = tonumber(args.pool_size),
    backlog = tonumber(args.backlog),
    max_messages = tonumber(args.max_messages),
    timeouts = timeouts,
    cafile = args.cafile,
    -- log=1: the engine's and the transport's notes go to nginx's error log
    trace = args.log == "1" and function(line, direction)
      if direction == "info" then ngx.log(ngx.WARN, "smtpkit: ", line) end
    end or nil,
  }
end

local function split(s)
  local out = {}
  for a in (s or ""):gmatch("[^,]+") do out[#out + 1] = a end
  return out
end

--- Sends; returns the result as text lines.
function M.run(args, body)
  local lines = {}
  local function put(k, v)
    if v ~= nil then lines[#lines + 1] = k .. "=" .. tostring(v):gsub("[\r\n]", " ") end
  end
  local msg = {
    from = args.from or "sender@smtpkit.test",
    to = split(args.to or "rcpt@example.org"),
    -- hdr=1: `headers` given, the body is the text after them
    headers = args.hdr and { { "Subject", "headers " .. tostring(args.n) }, { "X-Request", args.n } }
      or nil,
    body = body,
    smtpapi = args.smtpapi,   -- JSON text
  }
  -- sent: the commands the client wrote, "EHLO STARTTLS ... ." (verbs only)
  local o, sent = opts_from(args), {}
  local user_trace = o.trace
  o.trace = function(line, direction)
    local verb = line:match("^C: (%S+)")
    if verb then sent[#sent + 1] = verb end
    if user_trace then user_trace(line, direction) end
  end
  local c, err = resty.connect(o)
  if not c then
    put("kind", err.kind)
    put("message", tostring(err))
    return table.concat(lines, "\n") .. "\n"
  end
  local res, serr = c:send(msg)
  put("reused", c:reused_times())
  put("sent", table.concat(sent, " "))
  put("tls", c:tls())
  c:close()
  serr = serr or (res and res.error)
  if serr then
    put("kind", serr.kind)
    put("message", tostring(serr))
  end
  if res then
    for _, k in ipairs{ "ok", "outcome", "reason", "action", "retry", "queue_id", "maybe_delivered" } do
      put(k, res[k])
    end
    if res.reply then
      put("code", res.reply.code)
      put("enhanced", res.reply.enhanced)
      put("text", res.reply.text)
    end
    for i, r in ipairs(res.recipients or {}) do
      put("rcpt" .. i, table.concat({ r.address, tostring(r.ok), r.reply and r.reply.code or "-",
        tostring(r.outcome), tostring(r.reason) }, ","))
    end
  end
  return table.concat(lines, "\n") .. "\n"
end

--- Sends `count` messages with one send_many (message i: the request body
-- with "#i" after it) and prints, for each, "m<i>=ok,outcome,maybe_delivered,
-- queue_id,error kind", the client's reuse count, and how many MAIL commands
-- went out behind an end of data (before its reply).
function M.run_many(args, body)
  local lines = {}
  local msgs = {}
  for i = 1, tonumber(args.count) or 1 do
    msgs[i] = { from = args.from or "sender@smtpkit.test", to = split(args.to or "rcpt@example.org"),
      body = body .. "#" .. i .. "\r\n" }
  end
  -- overlapped: MAIL lines sent after an end of data and before its reply
  local overlapped, awaiting = 0, false
  local o = opts_from(args)
  o.trace = function(line)
    if line == "C: ." then awaiting = true
    elseif line:match("^C: MAIL FROM") and awaiting then overlapped = overlapped + 1
    elseif line:match("^S: [245]%d%d ") and awaiting then awaiting = false
    end
  end
  local c, err = resty.connect(o)
  if not c then return "kind=" .. err.kind .. "\nmessage=" .. tostring(err) .. "\n" end
  local results, errs = c:send_many(msgs)
  lines[#lines + 1] = "reused=" .. c:reused_times()
  lines[#lines + 1] = "overlapped=" .. overlapped
  c:close()
  for i = 1, #msgs do
    local r, e = results[i], errs[i] or (results[i] and results[i].error)
    lines[#lines + 1] = ("m%d=%s,%s,%s,%s,%s"):format(i, r and tostring(r.ok) or "false",
      r and r.outcome or "-", r and tostring(r.maybe_delivered) or "-", r and r.queue_id or "-",
      e and e.kind or "-")
  end
  return table.concat(lines, "\n") .. "\n"
end

function M.handle_many()
  ngx.req.read_body()
  ngx.header["Content-Type"] = "text/plain"
  ngx.print(M.run_many(ngx.req.get_uri_args(), ngx.req.get_body_data() or ""))
end

--- content_by_lua / access_by_lua: send and print.
function M.handle()
  ngx.req.read_body()
  local out = M.run(ngx.req.get_uri_args(), ngx.req.get_body_data() or "")
  ngx.header["Content-Type"] = "text/plain"
  ngx.print(out)
  return ngx.exit(200)
end

--- Connects (greeting, EHLO, TLS, AUTH) and closes, sending nothing.
function M.handle_connect()
  local c, err = resty.connect(opts_from(ngx.req.get_uri_args()))
  if not c then
    ngx.print("connected=false\nkind=", err.kind, "\nmessage=", tostring(err), "\n")
    return
  end
  local info = c:info()
  c:close()
  ngx.print("connected=true\ntls=", tostring(info.tls), "\nreused=", info.reused, "\n")
end

--- Sends from an ngx.timer.at callback and waits for it (shared dict "results").
function M.handle_timer()
  ngx.req.read_body()
  local args, body = ngx.req.get_uri_args(), ngx.req.get_body_data() or ""
  local dict = ngx.shared.results
  local key = "timer:" .. tostring(args.n or ngx.now())
  dict:delete(key)
  local ok, err = ngx.timer.at(0, function(premature)
    if premature then return end
    dict:set(key, M.run(args, body))
  end)
  if not ok then
    ngx.print("kind=timer\nmessage=", err, "\n")
    return
  end
  for _ = 1, 600 do
    local out = dict:get(key)
    if out then
      ngx.print("phase=timer\n", out)
      return
    end
    ngx.sleep(0.05)
  end
  ngx.print("kind=timer\nmessage=the timer gave no result\n")
end

--- log_by_lua: cosockets are disabled there; the failure must be returned,
-- not raised. The outcome goes to the shared dict for /log_result.
function M.handle_log()
  local args = ngx.req.get_uri_args()
  local ok, out = pcall(M.run, args, "Subject: from log phase\r\n\r\nx\r\n")
  ngx.shared.results:set("log", (ok and "raised=false\n" or "raised=true\n") .. tostring(out))
end

return M
