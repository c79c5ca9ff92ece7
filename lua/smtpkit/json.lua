--- smtpkit.json: the one JSON encoder and decoder of the Lua side, for the
-- command's `--json` output and the outbox's records. (X-SMTPAPI headers go
-- through the C core and cJSON instead: they need paths, lines and columns.)
--
--     json.encode(v)                               -- output for any parser
--     json.encode(v, { bytes = true, strict = true })  -- a record to store
--     json.decode(text) -> value | nil, why
--
-- Objects are written with their keys sorted, so the same value always gives
-- the same text. Pure Lua, no dependencies.
-- @module smtpkit.json
local type, pairs, ipairs, tostring, tonumber, error, pcall, setmetatable, getmetatable =
  type, pairs, ipairs, tostring, tonumber, error, pcall, setmetatable, getmetatable
local concat, sort, format, char = table.concat, table.sort, string.format, string.char
local floor, huge = math.floor, math.huge

local M = {}

local array_mt = { __name = "smtpkit.json.array" }

--- Marks a table as a JSON array, so that an empty one is written `[]`
-- (an empty table is otherwise `{}`).
function M.array(t)
  return setmetatable(t or {}, array_mt)
end

--- `s` with every byte that is not part of a well-formed UTF-8 sequence
-- replaced by U+FFFD: server replies and headers may carry Latin-1 or other
-- 8-bit bytes, and JSON for other programs must be UTF-8 to be read at all.
function M.utf8_clean(s)
  if not s:find("[\128-\255]") then return s end
  local out, i, n = {}, 1, #s
  while i <= n do
    local c = s:byte(i)
    local len = c < 0x80 and 1 or (c >= 0xC2 and c <= 0xDF) and 2 or (c >= 0xE0 and c <= 0xEF) and 3
      or (c >= 0xF0 and c <= 0xF4) and 4 or 0
    local ok = len > 0 and i + len - 1 <= n
    if ok and len > 1 then
      for k = i + 1, i + len - 1 do
        local b = s:byte(k)
        if b < 0x80 or b > 0xBF then ok = false break end
      end
      local c2 = s:byte(i + 1)
      if ok and ((c == 0xE0 and c2 < 0xA0) or (c == 0xED and c2 > 0x9F) or (c == 0xF0 and c2 < 0x90)
        or (c == 0xF4 and c2 > 0x8F)) then
        ok = false   -- overlong forms, UTF-16 surrogates, beyond U+10FFFF
      end
    end
    if ok then
      out[#out + 1] = s:sub(i, i + len - 1)
      i = i + len
    else
      out[#out + 1] = "\239\191\189"
      i = i + 1
    end
  end
  return concat(out)
end

local escapes = {
  ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}

local function is_array(t)
  if getmetatable(t) == array_mt then return true end
  local n = #t
  if n == 0 then return false end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

-- The shortest of %.14g and %.17g that reads back as v.
local function number(v, strict)
  if v ~= v or v == huge or v == -huge then
    if strict then error("json: cannot encode " .. tostring(v), 0) end
    return "null"
  end
  if floor(v) == v and v > -2 ^ 53 and v < 2 ^ 53 then return format("%d", v) end
  local s = format("%.14g", v)
  if tonumber(s) ~= v then s = format("%.17g", v) end
  return s
end

local function encoder(opts)
  local bytes, strict = opts.bytes, opts.strict
  local function str(s)
    if not bytes then s = M.utf8_clean(s) end
    return '"' .. s:gsub('[%c"\\]', function(c)
      return escapes[c] or format("\\u%04x", c:byte())
    end) .. '"'
  end
  local function value(v, out, depth)
    if depth > 64 then error("json: value nested too deep", 0) end
    local t = type(v)
    if v == nil then out[#out + 1] = "null"
    elseif t == "boolean" then out[#out + 1] = v and "true" or "false"
    elseif t == "number" then out[#out + 1] = number(v, strict)
    elseif t == "string" then out[#out + 1] = str(v)
    elseif t == "table" then
      if is_array(v) then
        out[#out + 1] = "["
        for i = 1, #v do
          if i > 1 then out[#out + 1] = "," end
          value(v[i], out, depth + 1)
        end
        out[#out + 1] = "]"
      else
        -- keys: strings, and numbers written as strings; others are an
        -- error (strict) or left out
        local keys, vals = {}, {}
        for k, val in pairs(v) do
          local tk = type(k)
          if tk == "string" or tk == "number" then
            local ks = tostring(k)
            keys[#keys + 1] = ks
            vals[ks] = val
          elseif strict then
            error("json: cannot encode a table key of type " .. tk, 0)
          end
        end
        sort(keys)
        out[#out + 1] = "{"
        for i, k in ipairs(keys) do
          if i > 1 then out[#out + 1] = "," end
          out[#out + 1] = str(k)
          out[#out + 1] = ":"
          value(vals[k], out, depth + 1)
        end
        out[#out + 1] = "}"
      end
    elseif strict then
      error("json: cannot encode a value of type " .. t, 0)
    else
      out[#out + 1] = str(tostring(v))
    end
  end
  return value
end

local for_output, for_records = encoder {}, encoder { bytes = true, strict = true }

--- Encodes v as one line of compact JSON.
-- @param v a Lua value: nil, booleans, numbers, strings, tables
-- @tparam[opt] table opts `bytes = true`: strings are byte strings, written
--   as they are (bytes >= 0x80 unchanged; for our own records, read back by
--   `decode`); by default bytes that are not UTF-8 become U+FFFD, so any
--   parser reads the output. `strict = true`: a value JSON cannot hold
--   (NaN, infinities, functions, tables as keys) raises instead of becoming
--   null, text, or nothing.
-- @treturn string
function M.encode(v, opts)
  local enc = not opts and for_output
    or (opts.bytes and opts.strict and for_records) or encoder(opts)
  local out = {}
  enc(v, out, 0)
  return concat(out)
end

local function utf8_char(cp)
  if cp < 0x80 then return char(cp) end
  if cp < 0x800 then return char(0xC0 + floor(cp / 64), 0x80 + cp % 64) end
  if cp < 0x10000 then
    return char(0xE0 + floor(cp / 4096), 0x80 + floor(cp / 64) % 64, 0x80 + cp % 64)
  end
  return char(0xF0 + floor(cp / 262144), 0x80 + floor(cp / 4096) % 64,
    0x80 + floor(cp / 64) % 64, 0x80 + cp % 64)
end

local unescapes = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r",
  t = "\t" }

--- Decodes JSON text.
-- @tparam string s
-- @return the value, or nil and why ("... at byte N")
function M.decode(s)
  local pos = 1
  local function fail(msg) error({ json = msg .. " at byte " .. pos }, 0) end
  local function ws() pos = s:find("[^ \t\r\n]", pos) or #s + 1 end
  local value
  local function str()
    pos = pos + 1
    local out = {}
    while true do
      local a, b = s:find('["\\]', pos)
      if not a then fail("unterminated string") end
      out[#out + 1] = s:sub(pos, a - 1)
      if s:sub(a, a) == '"' then pos = b + 1; break end
      local e = s:sub(a + 1, a + 1)
      if e == "u" then
        local hex = s:sub(a + 2, a + 5)
        if not hex:match("^%x%x%x%x$") then fail("bad \\u escape") end
        local cp = tonumber(hex, 16)
        pos = a + 6
        if cp >= 0xD800 and cp < 0xDC00 and s:sub(pos, pos + 1) == "\\u" then
          local lo = tonumber(s:sub(pos + 2, pos + 5), 16)
          if lo and lo >= 0xDC00 and lo < 0xE000 then
            cp = 0x10000 + (cp - 0xD800) * 1024 + (lo - 0xDC00)
            pos = pos + 6
          end
        end
        out[#out + 1] = utf8_char(cp)
      else
        if not unescapes[e] then fail("bad escape") end
        out[#out + 1] = unescapes[e]
        pos = a + 2
      end
    end
    return concat(out)
  end
  value = function(depth)
    if depth > 200 then fail("too deep") end
    ws()
    local c = s:sub(pos, pos)
    if c == "{" then
      local t = {}
      pos = pos + 1
      ws()
      if s:sub(pos, pos) == "}" then pos = pos + 1; return t end
      while true do
        ws()
        if s:sub(pos, pos) ~= '"' then fail("expected a key") end
        local k = str()
        ws()
        if s:sub(pos, pos) ~= ":" then fail("expected ':'") end
        pos = pos + 1
        t[k] = value(depth + 1)
        ws()
        local d = s:sub(pos, pos)
        if d ~= "," and d ~= "}" then fail("expected ',' or '}'") end
        pos = pos + 1
        if d == "}" then return t end
      end
    elseif c == "[" then
      local t = {}
      pos = pos + 1
      ws()
      if s:sub(pos, pos) == "]" then pos = pos + 1; return t end
      while true do
        t[#t + 1] = value(depth + 1)
        ws()
        local d = s:sub(pos, pos)
        if d ~= "," and d ~= "]" then fail("expected ',' or ']'") end
        pos = pos + 1
        if d == "]" then return t end
      end
    elseif c == '"' then
      return str()
    elseif s:find("^true", pos) then pos = pos + 4; return true
    elseif s:find("^false", pos) then pos = pos + 5; return false
    elseif s:find("^null", pos) then pos = pos + 4; return nil
    else
      local num = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
      if not num or num == "" then fail("unexpected character") end
      pos = pos + #num
      return tonumber(num)
    end
  end
  local ok, res = pcall(function()
    local v = value(0)
    ws()
    if pos <= #s then fail("trailing characters") end
    return v
  end)
  if ok then return res end
  if type(res) == "table" then return nil, res.json end
  error(res, 0)
end

return M
