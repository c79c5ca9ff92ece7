--- smtpkit.envelope: turns a message as users give it to `send` into what a
-- transport hands to the engine: the SMTP envelope and the body. Shared by
-- the plain-Lua client (smtpkit.client) and the OpenResty one
-- (smtpkit.resty), so both take the same messages and refuse the same ones.
-- Pure Lua: no I/O, no ngx, no smtpkit.net (OpenResty loads it).
--
--     local env, body, again = envelope.prepare(msg)
--     if not env then return nil, body end      -- body is the error here
--
-- Errors: `nil, err` (smtpkit.error, kind `validation`) for a message that
-- cannot be sent as it is; error() for wrong argument types.
-- @module smtpkit.envelope
local E = require "smtpkit.error"

local type, tostring, pairs, ipairs, error = type, tostring, pairs, ipairs, error
local concat, sort = table.concat, table.sort

local M = {}

M.CHUNK = 16384   -- octets read from a file body at a time

--- error() unless `type(v)` is one of `types` ("string|table").
-- @param v the value
-- @tparam string types the allowed types, "|"-separated
-- @tparam string what what v is, for the message ("message 'from'")
-- @tparam[opt=2] number level error()'s level, as seen by the caller of check
function M.check(v, types, what, level)
  local t = type(v)
  if not types:find(t, 1, true) then
    error(what .. " must be " .. types:gsub("|", " or ") .. ", not " .. t, (level or 2) + 1)
  end
end

--- Appends the header lines ("Name: value\r\n") of `headers` to `out`.
-- @tparam table headers `{Name = value}` (written sorted by name) or a list
--   of `{name, value}` (or `{name=, value=}`), written in order
-- @tparam table out the list to append to
-- @treturn true|nil
-- @treturn string why, for a name that is not a header name or a value
--   with CR, LF or NUL
function M.header_lines(headers, out)
  local function add(name, value)
    if type(name) ~= "string" or not name:match("^[!-9;-~]+$") then
      return nil, "invalid header name " .. E.quote(name)
    end
    value = tostring(value)
    if value:find("[\r\n%z]") then
      return nil, "header " .. name .. " contains CR, LF or NUL"
    end
    out[#out + 1] = name .. ": " .. value .. "\r\n"
    return true
  end
  if #headers > 0 then
    for _, h in ipairs(headers) do
      local ok, why = add(h[1] or h.name, h[2] or h.value)
      if not ok then return nil, why end
    end
  else
    local names = {}
    for k in pairs(headers) do names[#names + 1] = k end
    sort(names, function(a, b) return tostring(a) < tostring(b) end)
    for _, k in ipairs(names) do
      local ok, why = add(k, headers[k])
      if not ok then return nil, why end
    end
  end
  return true
end

--- Appends the addresses of `v` (nil, a string, or a list of strings and
-- `{address=, notify=, orcpt=}` tables) to `out`; error() for other types.
function M.addr_list(v, what, out)
  if v == nil then return end
  if type(v) == "string" then
    out[#out + 1] = v
  elseif type(v) == "table" then
    for _, a in ipairs(v) do
      M.check(a, "string|table", what .. " entry", 3)
      out[#out + 1] = a
    end
  else
    error(what .. " must be a string or a list, not " .. type(v), 3)
  end
end

--- The X-SMTPAPI header line ("X-SMTPAPI: ...\r\n", folded) for `value` (a
-- table, JSON text or builder), validated by smtpkit.smtpapi; or nil, err
-- (kind validation, `err.problems` the validator's list).
function M.smtpapi_header(value)
  local text, problems = require("smtpkit.smtpapi").encode(value)
  if not text then
    -- Each error as the validator prints it: its JSON path, what is wrong,
    -- and where ("filters.clicktrack.settings.enable: must be 0 or 1 (line
    -- 1, column 52)"); at most three, the list has them all.
    local why = {}
    for _, p in ipairs(type(problems) == "table" and problems or { problems }) do
      if type(p) ~= "table" or p.severity ~= "warning" then why[#why + 1] = tostring(p) end
      if #why == 3 then break end
    end
    return E.fail("validation", "invalid X-SMTPAPI header: " .. concat(why, "; "),
      { problems = problems })
  end
  if text:gsub("\r\n[ \t]", ""):find("[\r\n%z]") then
    return E.fail("validation", "the encoded X-SMTPAPI value has a bare line end")
  end
  return "X-SMTPAPI: " .. text .. "\r\n"
end

--- Recipients per message at most (the engine's SMTPKIT_SESSION_MAX_RCPT):
-- more is a validation error before anything is sent.
M.MAX_RCPT = 1000

--- True when msg is a composed message (smtpkit.message).
local function composed(msg)
  return type(msg.envelope) == "function" and type(msg.chunks) == "function"
end

--- For send_many: `prepare(msg)` for each message of the list `msgs`, in
-- order; returns the list of what it returned (as {a, b} pairs). A wrong
-- type (a message that is not a table, a body of the wrong type: a
-- programming mistake) raises before anything is sent, naming the message,
-- at the level of send_many's caller.
function M.prepare_each(msgs, prepare)
  M.check(msgs, "table", "send_many's messages", 3)
  local out = {}
  for i = 1, #msgs do
    local msg = msgs[i]
    if type(msg) ~= "table" then
      error(("send_many's message #%d must be a table, not %s"):format(i, type(msg)), 3)
    end
    local ok, a, b = pcall(prepare, msg)
    if not ok then
      error(("send_many's message #%d: %s"):format(i, (tostring(a):gsub("^[^\n]-:%d+: ", ""))), 3)
    end
    out[i] = { a, b }
  end
  return out
end

--- Turns a message into what a transport gives the engine.
-- @tparam table msg `from`, `to` (string or list), `cc`, `bcc` (envelope
--   only), `body` (a string, a file handle or an iterator function returning
--   chunks then nil), `headers` ({Name = value} or a list of {name, value}:
--   then `body` is the text after the header block), `smtpapi` (a table,
--   JSON text or builder: validated, encoded and put on top), `body_8bit`;
--   or a composed message from smtpkit.message.
-- @treturn table|nil the envelope for the engine: `{from=, to={...}, size=,
--   body_8bit=}`; body_8bit is the caller's (or the composed message's)
--   word, else nil: the transport scans a string body, and a streamed one
--   stays unknown (BODY=8BITMIME when offered; otherwise an 8-bit octet
--   fails the send before its end of data)
-- @return the body: a string, a file handle (read from its current
--   position) or an iterator function; or the error (kind validation)
-- @treturn function|nil again: returns the body anew, from its first byte,
--   for a second pass (the server took only part of the recipients); nil
--   when the body can be read only once (an iterator, or a file or an
--   iterator after a header prefix)
function M.prepare(msg)
  M.check(msg, "table", "message", 2)
  if composed(msg) then
    local env = msg:envelope()
    if type(env.to) == "table" and #env.to > M.MAX_RCPT then
      return E.fail("validation", ("the message has %d recipients (to, cc, bcc): at most %d per "
        .. "message; split the list into several messages"):format(#env.to, M.MAX_RCPT))
    end
    local size = type(msg.size) == "function" and msg:size() or nil
    return { from = env.from or "", to = env.to, size = size,
      body_8bit = msg.eightbit and true or false },
      msg:chunks(), function() return msg:chunks() end
  end
  local env = { from = msg.from or "", to = {} }
  M.check(env.from, "string", "message 'from'", 2)
  M.addr_list(msg.to, "message 'to'", env.to)
  M.addr_list(msg.cc, "message 'cc'", env.to)
  M.addr_list(msg.bcc, "message 'bcc'", env.to)
  if #env.to == 0 then return E.fail("validation", "the message has no recipient (to, cc, bcc)") end
  if #env.to > M.MAX_RCPT then
    return E.fail("validation", ("the message has %d recipients (to, cc, bcc): at most %d per "
      .. "message; split the list into several messages"):format(#env.to, M.MAX_RCPT))
  end
  local body = msg.body
  local bt = type(body)
  local is_file = io.type(body) == "file"
  if not (bt == "string" or bt == "function" or is_file) then
    error("message 'body' must be a string, a file handle or an iterator function, not " .. bt, 2)
  end
  local head = {}
  if msg.headers ~= nil then
    M.check(msg.headers, "table", "message 'headers'", 2)
    local ok, why = M.header_lines(msg.headers, head)
    if not ok then return E.fail("validation", why) end
  end
  if msg.smtpapi ~= nil then
    local line, err = M.smtpapi_header(msg.smtpapi)
    if not line then return nil, err end
    head[#head + 1] = line
  end
  local prefix
  if #head > 0 then
    -- with `headers` the body is the text after the header block; with only
    -- `smtpapi`, the body is the whole message and the header goes on top
    prefix = concat(head) .. (msg.headers ~= nil and "\r\n" or "")
  end
  env.body_8bit = msg.body_8bit
  if msg.long_lines ~= nil then
    M.check(msg.long_lines, "boolean", "message 'long_lines'", 2)
    env.long_lines = msg.long_lines
  end
  if bt == "string" then
    if prefix then body = prefix .. body end
    env.size = #body
    return env, body, function() return body end
  end
  if not prefix then
    if is_file then
      local start = body:seek()
      return env, body, start and function()
        if body:seek("set", start) then return body end
      end or nil
    end
    return env, body
  end
  -- a file or an iterator after a header prefix: one iterator over both
  local first, src = true, body
  local read = is_file and function() return src:read(M.CHUNK) end or src
  return env, function()
    if first then
      first = false
      return prefix
    end
    return read()
  end
end

--- A body (string, file or iterator) as an iterator of chunks.
function M.chunks(body)
  if type(body) == "string" then
    local done = false
    return function()
      if done then return nil end
      done = true
      return body
    end
  elseif io.type(body) == "file" then
    return function() return body:read(M.CHUNK) end
  end
  return body
end

--- A restartable body source for transports that feed the engine from Lua:
-- a function that returns a chunk iterator for each pass of the engine (pass
-- 1: the body as prepared; later passes: `again()`), or nil, err when the
-- body cannot be read again.
function M.source(body, again)
  local used = false
  return function()
    if not used then
      used = true
      return M.chunks(body)
    end
    local b = again and again()
    if b == nil then
      return nil, "the body can be read only once (an iterator, or a file after headers): "
        .. "pass a string, a file or a composed message"
    end
    return M.chunks(b)
  end
end

return M
