--- Composing RFC 5322 / MIME messages.
--
--     local message = require "smtpkit.message"   -- or smtpkit.message
--     local msg, err = message{
--       from = "Billing <billing@example.com>",
--       to = { "a@example.net", { name = "山田 太郎", address = "taro@example.jp" } },
--       subject = "請求書のご案内",
--       text = "...", html = "<p>...</p>",
--       attachments = { { path = "/tmp/invoice.pdf", filename = "請求書.pdf" } },
--     }
--     msg:write(io.stdout)            -- or msg:render(), or for c in msg:chunks() ...
--
-- Encoding choices (every rendered line is ASCII, CRLF-ended, at most 998
-- octets; header lines are folded at 78 where there is a place to fold):
--
-- * Subject and custom header values: the words that hold non-ASCII text,
--   `=?` or too many characters to fold (with the spaces between such words)
--   become RFC 2047 encoded words in UTF-8, the other words stay as they are;
--   a value with control characters or irregular spacing is encoded whole.
--   Display names: plain, quoted ("Doe, John") or encoded whole, in one
--   encoded word when it fits. Encoded words are at most 75 characters, cut
--   between whole characters; B or Q, whichever is shorter for that text.
-- * Attachment file names that are not short plain ASCII use RFC 2231
--   (`filename*=UTF-8''...`, in numbered pieces `filename*0*=` when long).
-- * text= and html= bodies (charset=utf-8): 7bit when they are ASCII with
--   lines of at most 998 octets and no bare CR; otherwise quoted-printable
--   when that is no longer than base64 (text with few non-ASCII bytes: accented
--   Latin), else base64 (Japanese, Arabic, emoji-heavy text). Line ends become
--   CRLF. Quoted-printable also encodes a '.' that starts a line.
-- * Attachments and inline parts: always base64, encoded while the message is
--   written, in chunks (bounded memory whatever the size).
-- * Multipart boundaries start with "=_", which neither base64 nor
--   quoted-printable output can contain, plus 96 random bits; 7bit parts are
--   checked as well.
--
-- Refused (nil, err of kind "validation"), so nothing can inject a header:
-- CR, LF or NUL in any header name or value, address, file name, content
-- type or cid; in addresses (written as they are) also other control
-- characters and the Unicode line separators U+0085, U+2028, U+2029, which
-- some software takes for line ends (in the subject, display names, file
-- names and header values they are encoded like any non-ASCII text, so
-- they never appear raw); a date= that is not an RFC 5322 date; a
-- message_id that is not printable ASCII; a content_type that is not
-- type/subtype with "; name=value" parameters; text= or html= that is not
-- UTF-8 (the parts say charset=utf-8); a Bcc or Resent-Bcc in headers=.
-- A 7bit line that starts with "." counts one octet more (SMTP doubles the
-- dot), so no line exceeds 998 octets on the wire either.
-- @module smtpkit.message
local core = require "smtpkit.core"

local M = {}

-- chunks() yields about CHUNK bytes at a time, never more than 2 * CHUNK:
-- SLICE input bytes (whole base64 lines) encode to 59904 bytes < CHUNK.
local CHUNK = 65536
local SLICE = 57 * 768
local MAXLINE = 998

-- -------------------------------------------------------------------------
-- Errors

local error_mod
do
  local ok, mod = pcall(require, "smtpkit.error")
  if ok and type(mod) == "table" and type(mod.new) == "function" then error_mod = mod end
end

local ErrMT = { __tostring = function(e) return e.message end }
local quote = error_mod.quote   -- a value shown in a message, on one line

-- Failures to read an attachment (path=, iter=) are "io" when smtpkit.error
-- knows that kind, else "validation".
local IO = (error_mod and type(error_mod.kinds) == "table" and error_mod.kinds.io) and "io" or "validation"
M.IO_KIND = IO

local function fail(kind, message, extra)
  local e
  if error_mod then
    local ok, made = pcall(error_mod.new, kind, message, extra)
    if ok and type(made) == "table" then e = made end
  end
  if not e then
    e = setmetatable({ kind = kind, message = message }, ErrMT)
    for k, v in pairs(extra or {}) do e[k] = v end
  end
  return nil, e
end

local function invalid(message, extra) return fail("validation", message, extra) end

-- -------------------------------------------------------------------------
-- Small helpers

local function check_type(v, types, what)
  local t = type(v)
  for ty in types:gmatch("[^|]+") do
    if t == ty then return v end
  end
  error(("smtpkit.message: %s must be a %s, not a %s"):format(what, types:gsub("|", " or "), t), 3)
end

-- nil when s is safe in a header; else an error message (no header injection).
local function injection(s, what)
  if s:find("[\r\n]") then
    return ("%s contains a CR or LF (header injection refused)"):format(what)
  end
  if s:find("%z") then return ("%s contains a NUL byte"):format(what) end
end

local function utf8_problem(s, what)
  local ok, at = core.utf8_check(s)
  if not ok then return ("%s is not valid UTF-8 (bad byte at position %d)"):format(what, at) end
end

local function hex(s)
  return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

local function random_hex(n)
  local b, err = core.random_bytes(n)
  if not b then error("smtpkit.message: " .. err) end
  return hex(b)
end

-- -------------------------------------------------------------------------
-- Header folding

-- Builds "Name: tokens\r\n" with the tokens joined by single spaces, each of
-- which may become a fold (CRLF SPACE) so lines stay within 78 where the
-- tokens allow. A token {ew = utf8} is written as encoded words filling the
-- current line. Returns the header, or nil and an error message when a line
-- would exceed 998 octets.
local function fold(name, tokens)
  local lines, line = {}, name .. ":"
  local start = line
  local function put(t, anywhere)
    -- a token that does not fit goes on a new line, even one longer than
    -- 78 (its own line is the shortest it can get), but not right after
    -- the header name unless `anywhere` (an encoded word, at most 75)
    if #line + 1 + #t > 78 and (line ~= start or anywhere) then
      lines[#lines + 1] = line
      line = " " .. t
    else
      line = line .. " " .. t
    end
  end
  for _, t in ipairs(tokens) do
    local single = type(t) == "table" and t.single and core.encoded_words(t.ew, 75, 75)
    if single and #single == 1 then
      put(single[1], true)
    elseif type(t) == "table" then
      local room = 78 - #line - 1
      if room > 75 then room = 75 end
      if room < 0 then room = 0 end
      local words = core.encoded_words(t.ew, room, 75)
      for i, w in ipairs(words) do
        if i == 1 then
          if w ~= "" then line = line .. " " .. w end
        else
          lines[#lines + 1] = line
          line = " " .. w
        end
      end
    else
      put(t)
    end
  end
  lines[#lines + 1] = line
  for _, l in ipairs(lines) do
    if #l > MAXLINE then
      return nil, ("header %s has a line of %d octets that cannot be folded (at most %d)")
        :format(name, #l, MAXLINE)
    end
  end
  return table.concat(lines, "\r\n") .. "\r\n"
end

-- Splits s at spaces into tokens; runs of spaces stay attached to the token
-- that follows, so a fold never makes a line of whitespace only.
local function space_tokens(s)
  local tokens, pending = {}, ""
  for piece in (s .. " "):gmatch("(.-) ") do
    if piece == "" then
      pending = pending .. " "
    else
      tokens[#tokens + 1] = pending .. piece
      pending = ""
    end
  end
  return tokens
end

-- True when s can go into an unstructured header as it is: printable ASCII
-- words separated by single spaces, none longer than fits a folded line,
-- nothing that looks like an encoded word.
local function plain_text(s, name)
  if s == "" then return true end
  if s:find("[^\32-\126]") or s:find("^ ") or s:find(" $") or s:find("  ", 1, true)
    or s:find("=?", 1, true) then
    return false
  end
  local first = true
  for w in s:gmatch("[^ ]+") do
    if #w > (first and 78 - #name - 2 or 77) then return false end
    first = false
  end
  return true
end

-- Tokens of unstructured text that holds words needing encoding (non-ASCII,
-- "=?", too long to fold): those words, with the spaces between them, become
-- encoded words; the others stay as they are, so "Café Müller invoice" is
-- "=?UTF-8?Q?Caf=C3=A9_M=C3=BCller?= invoice". Words separated by one space
-- only, none at either end; else the whole value is encoded (white space
-- between encoded words is not kept by decoders, RFC 2047 section 6.2).
local function mixed_tokens(value, name)
  if value:find("[%c]") or value:find("^ ") or value:find(" $") or value:find("  ", 1, true) then
    return { { ew = value } }
  end
  local tokens, run = {}, nil
  -- the first word shares its line with "Name: "
  local room = math.min(70, 78 - #name - 2)
  for w in value:gmatch("[^ ]+") do
    if w:find("[\128-\255]") or w:find("=?", 1, true) or #w > room then
      run = run and (run .. " " .. w) or w
    else
      if run then tokens[#tokens + 1] = { ew = run } end
      run = nil
      tokens[#tokens + 1] = w
    end
    room = 70
  end
  if run then tokens[#tokens + 1] = { ew = run } end
  return tokens
end

-- An unstructured header (Subject): as it is when it can be, else with
-- encoded words where needed.
local function text_header(name, value)
  if plain_text(value, name) then
    return fold(name, space_tokens(value))
  end
  return fold(name, mixed_tokens(value, name))
end

-- A header from headers=: ASCII values are folded at spaces and otherwise
-- left alone (they may be structured: List-Unsubscribe, a pre-encoded
-- value); non-ASCII text is encoded (treated as unstructured).
local function custom_header(name, value)
  if value:find("[\1-\8\11\12\14-\31\127-\255]") then
    return fold(name, mixed_tokens(value, name))
  end
  local tokens = space_tokens(value)
  if #tokens == 0 then return name .. ":\r\n" end
  return fold(name, tokens)
end

-- -------------------------------------------------------------------------
-- Addresses

local ATEXT = "[%w!#$%%&'*+/=?^_`{|}~%-]"

local function check_addr_spec(a, what)
  if #a > 254 then return ("%s is longer than 254 octets"):format(what) end
  -- addresses are written as they are (UTF-8 ones need SMTPUTF8): no
  -- control character, and no U+0085, U+2028, U+2029, which some software
  -- takes for line ends
  if a:find("[%c\127]") or a:find("\194[\128-\159]") or a:find("\226\128[\168\169]") then
    return ("%s contains a control character or a Unicode line separator: %s"):format(what, quote(a))
  end
  local loc, dom = a:match("^(.+)@([^@]+)$")
  if not loc then
    return ("%s is not an address (local@domain expected): %s"):format(what, quote(a))
  end
  if dom:find("^%[") then
    if not dom:find("^%[[^%[%]\\%s]+%]$") then
      return ("%s has a bad address literal: %s"):format(what, quote(a))
    end
  elseif dom:find("[^%w%-%.\128-\255]") or dom:find("^%.") or dom:find("%.$") or dom:find("..", 1, true) then
    return ("%s has a bad domain: %s"):format(what, quote(a))
  end
  if loc:find('^".*"$') then
    local inner = loc:sub(2, -2)
    if inner:find('[%c]') or inner:gsub('\\.', ""):find('["\\]') then
      return ("%s has a bad quoted local part: %s"):format(what, quote(a))
    end
  else
    local atom = ATEXT:sub(1, -2) .. "\128-\255]"
    if loc:find("^%.") or loc:find("%.$") or loc:find("..", 1, true)
      or loc:gsub(atom, ""):gsub("%.", "") ~= "" then
      return ("%s has a bad local part: %s"):format(what, quote(a))
    end
  end
  return utf8_problem(a, what)
end

-- Parses one address: "a@b.c", "Name <a@b.c>", {name=, address=}.
-- Returns {name=, address=} or nil, message.
local function parse_address(v, what)
  local name, addr
  if type(v) == "table" then
    name, addr = v.name, v.address
    check_type(addr, "string", what .. ".address")
    if name ~= nil then check_type(name, "string", what .. ".name") end
  else
    check_type(v, "string", what)
    local p = injection(v, what)
    if p then return nil, p end
    local n, a = v:match("^%s*(.-)%s*<([^<>]*)>%s*$")
    if a then
      name, addr = n, a
      local q = name:match('^"(.*)"$')
      if q then name = q:gsub("\\(.)", "%1") end
    else
      addr = v:match("^%s*(.-)%s*$")
    end
  end
  local p = injection(addr, what) or (name and injection(name, what .. " display name"))
  if p then return nil, p end
  if name then
    p = utf8_problem(name, what .. " display name")
    if p then return nil, p end
    if name == "" then name = nil end
  end
  p = check_addr_spec(addr, what)
  if p then return nil, p end
  return { name = name, address = addr }
end

-- A list of addresses: one address (string or {address=}) or an array of them.
local function parse_list(v, what)
  if v == nil then return {} end
  check_type(v, "string|table", what)
  local items = (type(v) == "string" or v.address ~= nil) and { v } or v
  local out = {}
  for i, item in ipairs(items) do
    local a, err = parse_address(item, #items > 1 and ("%s[%d]"):format(what, i) or what)
    if not a then return nil, err end
    out[#out + 1] = a
  end
  return out
end

-- Header tokens of a display name.
local function name_tokens(name, tokens)
  if not name:find("[^\32-\126]") and not name:find("=?", 1, true) then
    local longest = 0
    for w in name:gmatch("[^ ]+") do
      if #w > longest then longest = #w end
    end
    if longest <= 60 then
      local plain = not name:find("[^%w!#$%%&'*+/=?^_`{|}~%- ]")
      local t = space_tokens(plain and name or ('"' .. name:gsub('(["\\])', "\\%1") .. '"'))
      for _, w in ipairs(t) do tokens[#tokens + 1] = w end
      return
    end
  end
  -- one encoded word when it fits: Python's email package (policy.default)
  -- keeps the space between adjacent encoded words of a display name,
  -- against RFC 2047 section 6.2, so a name is cut only when it must be.
  tokens[#tokens + 1] = { ew = name, single = true }
end

local function address_header(name, list)
  local tokens = {}
  for i, a in ipairs(list) do
    local last = i == #list and "" or ","
    if a.name then
      name_tokens(a.name, tokens)
      tokens[#tokens + 1] = "<" .. a.address .. ">" .. last
    else
      tokens[#tokens + 1] = a.address .. last
    end
  end
  return fold(name, tokens)
end

-- -------------------------------------------------------------------------
-- Date, Message-ID, MIME pieces

local DAYS = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" }
local MONTHS = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" }

--- The RFC 5322 date of time t (default now), in UTC, locale-independent.
function M.date(t)
  local d = os.date("!*t", t)
  return ("%s, %02d %s %04d %02d:%02d:%02d +0000"):format(DAYS[d.wday], d.day, MONTHS[d.month],
    d.year, d.hour, d.min, d.sec)
end

local MONTH_SET = {}
for _, m in ipairs(MONTHS) do MONTH_SET[m] = true end
local DAY_SET = {}
for _, d in ipairs(DAYS) do DAY_SET[d] = true end

-- True when s is an RFC 5322 date-time (section 3.3): "[Day, ]D Mon YYYY
-- hh:mm[:ss] +hhmm", or an obsolete alphabetic zone such as GMT (4.3).
local function rfc5322_date(s)
  local day, rest = s:match("^(%a%a%a), *(.*)$")
  if day and not DAY_SET[day] then return false end
  local d, mon, y, hh, mm, tail = (rest or s):match("^(%d%d?) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d)(.*)$")
  if not d or not MONTH_SET[mon] then return false end
  local ss, zone = tail:match("^:(%d%d) (.+)$")
  if not ss then zone = tail:match("^ (.+)$") end
  if not zone or not (zone:find("^[+-]%d%d%d%d$") or zone:find("^%a%a?%a?%a?%a?$")) then return false end
  return tonumber(d) >= 1 and tonumber(d) <= 31 and tonumber(y) >= 1900 and tonumber(hh) <= 23
    and tonumber(mm) <= 59 and (ss == nil or tonumber(ss) <= 60)
end

local function message_id(from)
  local dom = from.address:match("@([^@]+)$")
  if dom:find("[\128-\255]") then dom = "localhost.localdomain" end
  return ("<%s.%d@%s>"):format(random_hex(12), os.time(), dom)
end

local TYPES = {
  pdf = "application/pdf", zip = "application/zip", gz = "application/gzip",
  json = "application/json", xml = "application/xml", csv = "text/csv",
  txt = "text/plain", html = "text/html", htm = "text/html", ics = "text/calendar",
  png = "image/png", jpg = "image/jpeg", jpeg = "image/jpeg", gif = "image/gif",
  webp = "image/webp", svg = "image/svg+xml", doc = "application/msword",
  docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
  xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
  pptx = "application/vnd.openxmlformats-officedocument.presentationml.presentation",
  xls = "application/vnd.ms-excel", mp3 = "audio/mpeg", mp4 = "video/mp4",
  eml = "message/rfc822",
}

local function guess_type(filename)
  local ext = filename and filename:match("%.([%w]+)$")
  return ext and TYPES[ext:lower()] or "application/octet-stream"
end

-- Parameter tokens for a file name: filename="x", or RFC 2231 pieces.
local function filename_params(param, filename, tokens)
  if #filename <= 60 and not filename:find('[^\32-\126]') and not filename:find('["\\]')
    and not filename:find("=?", 1, true) then
    tokens[#tokens + 1] = ('%s="%s"'):format(param, filename)
    return
  end
  local prefix = param .. "*0*=UTF-8''"
  local pieces = core.rfc2231_pieces(filename, 76 - #prefix, 60)
  if #pieces == 1 then
    tokens[#tokens + 1] = param .. "*=UTF-8''" .. pieces[1]
    return
  end
  for i, p in ipairs(pieces) do
    tokens[#tokens + 1] = ("%s*%d*=%s%s"):format(param, i - 1, i == 1 and "UTF-8''" or "", p)
  end
end

-- "Name: value; p1; p2" folded between parameters.
local function param_header(name, value, params)
  local tokens = { value }
  for _, p in ipairs(params) do
    tokens[#tokens] = tokens[#tokens] .. ";"
    tokens[#tokens + 1] = p
  end
  return fold(name, tokens)
end

-- -------------------------------------------------------------------------
-- Bodies

local function has_long_line(s)
  local start = 1
  while true do
    local e = s:find("\n", start, true)
    local len = (e or #s + 1) - start
    if e and e > start and s:byte(e - 1) == 13 then len = len - 1 end
    -- a line that starts with "." gains one more on the wire (SMTP dot-stuffing)
    if s:byte(start) == 46 then len = len + 1 end
    if len > MAXLINE then return true end
    if not e then return false end
    start = e + 1
  end
end

-- Chooses the transfer encoding of a text body and encodes it.
-- Returns encoding name, encoded string.
local function encode_text(s)
  local bare_cr = s:find("\r[^\n]") or s:sub(-1) == "\r"
  if not s:find("[\128-\255%z]") and not bare_cr and not has_long_line(s) then
    return "7bit", (s:gsub("\r?\n", "\r\n"))
  end
  local _, k = s:gsub("[%z\1-\8\11\12\14-\31=\127-\255]", "")
  if #s + 2 * k <= math.floor((#s * 4 + 2) / 3) then
    return "quoted-printable", core.qp_encode(s)
  end
  return "base64", core.base64_encode((s:gsub("\r?\n", "\r\n")))
end

-- The length of the base64 encoding (76-character lines, CRLF) of n bytes.
local function base64_size(n)
  local chars = math.floor((n + 2) / 3) * 4
  return chars + 2 * math.floor((chars + 75) / 76)
end

-- -------------------------------------------------------------------------
-- Parts

local Message = {}
Message.__index = Message

-- True when ct is "type/subtype" followed by "; attribute=value" parameters,
-- values being tokens or quoted strings (RFC 2045 section 5.1).
local TOKEN = "[%w!#$%%&'*+%-.^_`{|}~]+"
local function content_type_ok(ct)
  local rest = ct:match("^%s*" .. TOKEN .. "/" .. TOKEN .. "%s*(.*)$")
  if not rest then return false end
  while rest ~= "" do
    rest = rest:match("^;%s*(.*)$")
    if not rest then return false end
    if rest == "" then return true end
    local after = rest:match("^" .. TOKEN .. "%s*=%s*(.*)$")
    if not after then return false end
    local r = after:match("^" .. TOKEN .. "%s*(.*)$")
    if not r then
      if after:sub(1, 1) ~= '"' then return false end
      local i = 2
      while true do
        local ch = after:sub(i, i)
        if ch == "" then return false end
        if ch == '"' then break end
        i = i + (ch == "\\" and 2 or 1)
      end
      r = after:sub(i + 1):match("^%s*(.*)$")
    end
    rest = r
  end
  return true
end

-- Validates one attachment (or inline part) spec; returns a leaf node.
local function parse_attachment(a, what, inline)
  check_type(a, "table", what)
  local n = (a.data ~= nil and 1 or 0) + (a.path ~= nil and 1 or 0) + (a.iter ~= nil and 1 or 0)
  if n ~= 1 then
    error(("smtpkit.message: %s needs exactly one of data=, path=, iter="):format(what), 3)
  end
  if a.data ~= nil then check_type(a.data, "string", what .. ".data") end
  if a.path ~= nil then check_type(a.path, "string", what .. ".path") end
  if a.iter ~= nil then check_type(a.iter, "function", what .. ".iter") end
  local filename = a.filename
  if filename ~= nil then check_type(filename, "string", what .. ".filename") end
  if filename == nil and a.path then filename = a.path:match("([^/\\]+)$") end
  local ctype = a.content_type
  if ctype ~= nil then check_type(ctype, "string", what .. ".content_type") end
  local fwhat = what .. " filename"
  local p = (filename and (injection(filename, fwhat) or utf8_problem(filename, fwhat)))
    or (ctype and injection(ctype, what .. " content_type"))
  if p then return invalid(p) end
  if ctype and ctype:find("[^\32-\126]") then
    return invalid(("%s content_type must be ASCII"):format(what))
  end
  if ctype and not content_type_ok(ctype) then
    return invalid(("%s content_type is not type/subtype with optional ; name=value "
      .. "parameters (RFC 2045 section 5.1): %s"):format(what, quote(ctype)))
  end
  local cid
  if inline then
    check_type(a.cid, "string", what .. ".cid")
    cid = a.cid:match("^<(.*)>$") or a.cid
    p = injection(cid, what .. " cid")
    if p then return invalid(p) end
    if not cid:find("^[%w!#$%%&'*+/=?^_`{|}~%-%.@]+$") then
      return invalid(("%s cid has characters a Content-ID cannot hold: %s"):format(what, quote(cid)))
    end
  end
  if a.path then
    local fh, err = io.open(a.path, "rb")
    if not fh then return fail(IO, ("%s: cannot read %s"):format(what, err)) end
    -- a directory opens but cannot be read: refuse it now, not mid-send
    local _, rerr = fh:read(0)
    fh:close()
    if rerr then return fail(IO, ("%s: cannot read %s: %s"):format(what, a.path, rerr)) end
  end
  ctype = ctype or guess_type(filename)
  local headers = {}
  local ct_params = {}
  if filename then filename_params("name", filename, ct_params) end
  local h, err = param_header("Content-Type", ctype, ct_params)
  if not h then return invalid(err) end
  headers[#headers + 1] = h
  local cd_params = {}
  if filename then filename_params("filename", filename, cd_params) end
  h, err = param_header("Content-Disposition", inline and "inline" or "attachment", cd_params)
  if not h then return invalid(err) end
  headers[#headers + 1] = h
  if cid then headers[#headers + 1] = "Content-ID: <" .. cid .. ">\r\n" end
  headers[#headers + 1] = "Content-Transfer-Encoding: base64\r\n"
  return { headers = table.concat(headers), stream = { data = a.data, path = a.path, iter = a.iter } }
end

local function text_part(s, subtype)
  local cte, body = encode_text(s)
  return {
    headers = ("Content-Type: text/%s; charset=utf-8\r\nContent-Transfer-Encoding: %s\r\n")
      :format(subtype, cte),
    body = body, sevenbit = cte == "7bit",
  }
end

local function multipart(subtype, parts, extra)
  return { subtype = subtype, parts = parts, extra = extra }
end

-- New boundary that no 7bit part of the tree contains.
local function new_boundary(node_list)
  while true do
    local b = "=_" .. random_hex(12)
    local clash = false
    for _, leaf in ipairs(node_list) do
      if leaf.sevenbit and leaf.body:find("--" .. b, 1, true) then clash = true end
    end
    if not clash then return b end
  end
end

-- Appends the plan of node (its own content headers, blank line, body) to plan.
local function plan_node(node, plan, leaves)
  if node.parts then
    local b = new_boundary(leaves)
    plan[#plan + 1] = ("Content-Type: multipart/%s;%s\r\n boundary=\"%s\"\r\n\r\n")
      :format(node.subtype, node.extra and (" " .. node.extra) or "", b)
    for _, part in ipairs(node.parts) do
      plan[#plan + 1] = "--" .. b .. "\r\n"
      plan_node(part, plan, leaves)
      plan[#plan + 1] = "\r\n"
    end
    plan[#plan + 1] = "--" .. b .. "--\r\n"
  else
    plan[#plan + 1] = node.headers .. "\r\n"
    if node.stream then
      plan[#plan + 1] = node.stream
    else
      plan[#plan + 1] = node.body
    end
  end
end

-- -------------------------------------------------------------------------
-- Header names the composer writes itself, and the field that sets them.

local OWNED = {
  ["from"] = "from=", ["to"] = "to=", ["cc"] = "cc=", ["reply-to"] = "reply_to=",
  ["subject"] = "subject=", ["x-smtpapi"] = "smtpapi=", ["mime-version"] = "nothing (it is always 1.0)",
  ["content-type"] = "text=, html=, attachments=, inline=",
  ["content-transfer-encoding"] = "nothing (the composer chooses)",
  ["content-disposition"] = "attachments=/inline=", ["content-id"] = "inline= (cid=)",
}

local function custom_headers(h)
  if h == nil then return {} end
  check_type(h, "table", "headers")
  local list = {}
  if #h > 0 then
    for i, pair in ipairs(h) do
      check_type(pair, "table", ("headers[%d]"):format(i))
      list[#list + 1] = { pair[1], pair[2] }
    end
  else
    for k, v in pairs(h) do list[#list + 1] = { k, v } end
    table.sort(list, function(a, b) return a[1] < b[1] end)
  end
  for _, pair in ipairs(list) do
    check_type(pair[1], "string", "a header name")
    if type(pair[2]) == "number" then pair[2] = tostring(pair[2]) end
    check_type(pair[2], "string", "header " .. pair[1])
  end
  return list
end

-- -------------------------------------------------------------------------
-- The constructor

--- Makes a message; `message{...}` is the same call.
--
-- Fields of `o` (all optional except `from` and one recipient):
--
-- * `from`: one address; `to`, `cc`, `bcc`, `reply_to`: one address or a
--   list. An address is `"a@example.com"`, `"Name <a@example.com>"`
--   (`"\"Doe, John\" <j@example.com>"` for a quoted name) or
--   `{name=, address=}`. Bcc goes to the envelope only, never a header.
-- * `subject`, `text`, `html`: UTF-8 strings.
-- * `attachments`, `inline`: lists of `{filename=, content_type=, data= |
--   path= | iter=}`; `inline` parts also need `cid=` (the html refers to
--   `cid:<cid>`). `path=`: the file is read while the message is written
--   (filename defaults to its base name); `iter=`: a function returning
--   strings then nil (usable for one rendering only). `content_type`
--   defaults from the file name's extension, else application/octet-stream.
-- * `headers`: `{Name = value}` (written sorted by name) or
--   `{{name, value}, ...}` (in order, repeats allowed). Date and Message-ID
--   given here replace the generated ones; From, To, Cc, Reply-To, Subject,
--   X-SMTPAPI, MIME-Version, Content-Type/-Transfer-Encoding/-Disposition/-ID
--   are refused (set by their fields), and so is Bcc.
-- * `date` (RFC 5322 text, default now in UTC), `message_id` (`<x@y>`,
--   default random on the sender's domain).
-- * `smtpapi`: a value for `require("smtpkit.smtpapi").encode` (table, JSON
--   text or builder), written as the X-SMTPAPI header.
--
-- Returns the message, or nil and an error (`kind` "validation", or
-- `M.IO_KIND` when an attachment file cannot be read; `tostring(err)` is the
-- message; `err.problems` for an invalid smtpapi=). Raises only for wrong
-- argument types.
function M.new(o)
  check_type(o, "table", "the argument")
  for _, k in ipairs({ "subject", "text", "html", "date", "message_id" }) do
    if o[k] ~= nil then check_type(o[k], "string", k) end
  end
  local self = setmetatable({ eightbit = false, smtputf8 = false }, Message)

  -- addresses
  if o.from == nil then return invalid("from= is required") end
  check_type(o.from, "string|table", "from")
  local from, err = parse_address(o.from, "from")
  if not from then return invalid(err) end
  local lists = {}
  for _, k in ipairs({ "to", "cc", "bcc", "reply_to" }) do
    lists[k], err = parse_list(o[k], k)
    if not lists[k] then return invalid(err) end
  end
  if #lists.to + #lists.cc + #lists.bcc == 0 then
    return invalid("the message has no recipient: give to=, cc= or bcc=")
  end
  local rcpt, seen = {}, {}
  for _, k in ipairs({ "to", "cc", "bcc" }) do
    for _, a in ipairs(lists[k]) do
      local key = a.address:lower()
      if not seen[key] then
        seen[key] = true
        rcpt[#rcpt + 1] = a.address
      end
    end
  end
  self._from, self._rcpt = from.address, rcpt
  for _, addr in ipairs(rcpt) do
    if addr:find("[\128-\255]") then self.smtputf8 = true end
  end
  if from.address:find("[\128-\255]") then self.smtputf8 = true end

  -- headers
  local H = {}
  local function add(h, herr)
    if not h then return false, herr end
    H[#H + 1] = h
    return true
  end
  local customs = custom_headers(o.headers)
  local given = {}
  for _, pair in ipairs(customs) do
    local name, value = pair[1], pair[2]
    local lname = name:lower()
    local p = injection(name, "header name " .. quote(name)) or injection(value, "header " .. name)
    if p then return invalid(p) end
    if not name:find("^[\33-\57\59-\126]+$") then
      return invalid(("header name %s must be printable ASCII without ':' or spaces"):format(quote(name)))
    end
    if lname == "bcc" or lname == "resent-bcc" then
      return invalid("a Bcc header would show the blind copies to every recipient: use bcc=, "
        .. "which puts them in the envelope only")
    end
    if OWNED[lname] then
      return invalid(("header %s is written by the composer: set it with %s"):format(name, OWNED[lname]))
    end
    p = utf8_problem(value, "header " .. name)
    if p then return invalid(p) end
    given[lname] = true
  end
  local date = o.date
  if date then
    local p = injection(date, "date")
    if p then return invalid(p) end
    if not rfc5322_date(date) then
      return invalid(("date must be an RFC 5322 date in printable ASCII, such as %s: %s")
        :format(quote(M.date(0)), quote(date)))
    end
  end
  if o.message_id then
    local p = injection(o.message_id, "message_id")
    if p then return invalid(p) end
    if o.message_id:find("[^\33-\126]") then
      return invalid(("message_id must be printable ASCII: %s"):format(quote(o.message_id)))
    end
    if not o.message_id:find("^<[^<>%s]+@[^<>%s]+>$") then
      return invalid(("message_id must look like <unique@domain>: %s"):format(quote(o.message_id)))
    end
  end
  if not given["date"] then add(("Date: %s\r\n"):format(date or M.date())) end
  local ok
  ok, err = add(address_header("From", { from }))
  if not ok then return invalid(err) end
  for _, f in ipairs({ { "reply_to", "Reply-To" }, { "to", "To" }, { "cc", "Cc" } }) do
    if #lists[f[1]] > 0 then
      ok, err = add(address_header(f[2], lists[f[1]]))
      if not ok then return invalid(err) end
    end
  end
  if o.subject then
    local p = injection(o.subject, "subject") or utf8_problem(o.subject, "subject")
    if p then return invalid(p) end
    ok, err = add(text_header("Subject", o.subject))
    if not ok then return invalid(err) end
  end
  if not given["message-id"] then add(("Message-ID: %s\r\n"):format(o.message_id or message_id(from))) end
  H[#H + 1] = "MIME-Version: 1.0\r\n"
  if o.smtpapi ~= nil then
    local sm = require "smtpkit.smtpapi"
    local value, problems = sm.encode(o.smtpapi)
    if not value then
      local text = type(problems) == "table" and problems.message or tostring(problems)
      if not tostring(text):find("X%-SMTPAPI") then text = "invalid X-SMTPAPI header: " .. tostring(text) end
      return invalid(text, { problems = problems })
    end
    if value:gsub("\r\n[ \t]", ""):find("[\r\n%z]") then
      return invalid("the X-SMTPAPI encoder returned a value with a bare CR or LF")
    end
    H[#H + 1] = "X-SMTPAPI: " .. value .. "\r\n"
  end
  for _, pair in ipairs(customs) do
    local h
    h, err = custom_header(pair[1], pair[2])
    if not h then return invalid(err) end
    H[#H + 1] = h
  end

  -- body structure
  local leaves = {}
  local function leaf(node)
    leaves[#leaves + 1] = node
    return node
  end
  -- the parts say charset=utf-8: other bytes would be mislabelled
  for _, k in ipairs({ "text", "html" }) do
    local p = o[k] and utf8_problem(o[k], k)
    if p then return invalid(p) end
  end
  local text = o.text and leaf(text_part(o.text, "plain"))
  local html = o.html and leaf(text_part(o.html, "html"))
  local body
  if text and html then
    body = multipart("alternative", { text, html })
  else
    body = text or html
  end
  if o.inline ~= nil then
    check_type(o.inline, "table", "inline")
    if #o.inline > 0 then
      if not html then return invalid("inline= parts are for an html= body that refers to them by cid") end
      local parts = { body }
      for i, a in ipairs(o.inline) do
        local node, e2 = parse_attachment(a, ("inline[%d]"):format(i), true)
        if not node then return nil, e2 end
        parts[#parts + 1] = leaf(node)
      end
      body = multipart("related", parts,
        ('type="%s";'):format(body.parts and "multipart/alternative" or "text/html"))
    end
  end
  if o.attachments ~= nil then
    check_type(o.attachments, "table", "attachments")
    if #o.attachments > 0 then
      local parts = { body }
      if not body then parts = {} end
      for i, a in ipairs(o.attachments) do
        local node, e2 = parse_attachment(a, ("attachments[%d]"):format(i), false)
        if not node then return nil, e2 end
        parts[#parts + 1] = leaf(node)
      end
      body = multipart("mixed", parts)
    end
  end
  body = body or leaf(text_part("", "plain"))

  local plan = { table.concat(H) }
  plan_node(body, plan, leaves)
  self._plan = plan
  for _, item in ipairs(plan) do
    if type(item) == "string" and item:find("[\128-\255]") then self.eightbit = true end
  end
  return self
end

setmetatable(M, { __call = function(_, o) return M.new(o) end })

-- -------------------------------------------------------------------------
-- Output

--- `{from = address, to = {address, ...}}`: the envelope (to, cc and bcc,
-- bare addresses, each once).
function Message:envelope()
  local to = {}
  for i, a in ipairs(self._rcpt) do to[i] = a end
  return { from = self._from, to = to }
end

-- A source of base64 text for one attachment, read in SLICE steps.
local function open_stream(s)
  local enc = core.base64_encoder(76)
  local st = { enc = enc }
  if s.data then
    local pos = 1
    st.read = function()
      if pos > #s.data then return nil end
      local piece = s.data:sub(pos, pos + SLICE - 1)
      pos = pos + SLICE
      return piece
    end
  elseif s.path then
    local fh, err = io.open(s.path, "rb")
    if not fh then return fail(IO, "cannot read attachment: " .. err) end
    st.read = function()
      local piece, rerr = fh:read(SLICE)
      if piece == nil then
        fh:close()
        if rerr then return nil, rerr end
      end
      return piece
    end
    st.close = function() pcall(fh.close, fh) end
  else
    if s.consumed then
      return fail("validation", "an iter= attachment can be written only once: its iterator is spent")
    end
    s.consumed = true
    st.read = function()
      local ok, piece, ierr = pcall(s.iter)
      if not ok then return nil, tostring(piece) end
      if piece == nil then return nil, ierr end
      if type(piece) ~= "string" then
        return nil, "an attachment iterator returned a " .. type(piece) .. ", not a string"
      end
      return piece
    end
  end
  -- next(): encoded text, or nil at the end, or nil, err
  function st.next()
    if st.done then return nil end
    local piece, err = st.read()
    if piece == nil then
      st.done = true
      if err then return fail(IO, "attachment: " .. tostring(err)) end
      return enc:finish()
    end
    return enc:update(piece)
  end
  return st
end

local function slicer(s)
  local pos = 1
  return {
    next = function()
      if pos > #s then return nil end
      local piece = s:sub(pos, pos + CHUNK - 1)
      pos = pos + CHUNK
      return piece
    end,
  }
end

--- An iterator over the rendered message (headers and body, CRLF line ends)
-- in chunks of 64 to 128 KiB (the last one smaller): each call returns the
-- next chunk, then nil at the end, or nil, err when an attachment cannot be
-- read. Each call of chunks() starts a new pass over the message.
function Message:chunks()
  local plan, i, cur, done = self._plan, 0, nil, false
  return function()
    if done then return nil end
    local buf, n = {}, 0
    while n < CHUNK do
      if cur then
        local s, err = cur.next()
        if s == nil then
          if err then
            if cur.close then cur.close() end
            done = true
            return nil, err
          end
          cur = nil
        elseif s ~= "" then
          buf[#buf + 1] = s
          n = n + #s
        end
      else
        i = i + 1
        local item = plan[i]
        if item == nil then break end
        if type(item) == "string" then
          if #item > CHUNK then
            cur = slicer(item)
          else
            buf[#buf + 1] = item
            n = n + #item
          end
        else
          local st, err = open_stream(item)
          if not st then
            done = true
            return nil, err
          end
          cur = st
        end
      end
    end
    if n == 0 then
      done = true
      return nil
    end
    return table.concat(buf)
  end
end

--- The whole message as one string (or nil, err).
function Message:render()
  local out, it = {}, self:chunks()
  while true do
    local c, err = it()
    if c == nil then
      if err then return nil, err end
      return table.concat(out)
    end
    out[#out + 1] = c
  end
end

--- Writes the message to an open file (anything with :write), chunk by
-- chunk. Returns true, or nil, err.
function Message:write(fh)
  check_type(fh, "table|userdata", "fh")
  local it = self:chunks()
  while true do
    local c, err = it()
    if c == nil then
      if err then return nil, err end
      return true
    end
    local ok, werr = fh:write(c)
    if not ok then return fail(IO, "cannot write the message: " .. tostring(werr)) end
  end
end

--- The exact size in octets of the rendered message, or nil when an iter=
-- attachment makes it unknown (for the SMTP SIZE parameter).
function Message:size()
  local total = 0
  for _, item in ipairs(self._plan) do
    if type(item) == "string" then
      total = total + #item
    elseif item.data then
      total = total + base64_size(#item.data)
    elseif item.path then
      local fh = io.open(item.path, "rb")
      if not fh then return nil end
      local n = fh:seek("end")
      fh:close()
      total = total + base64_size(n)
    else
      return nil
    end
  end
  return total
end

M.Message = Message
return M
