--- Checking rendered messages for the message specs (message_spec.lua,
-- message_extra_spec.lua): an independent parser, Python's email package
-- (spec/support/parse_email.py, BytesParser with policy.default), reads what
-- smtpkit.message wrote, and the rules every message must keep are asserted.
local assert = require "luassert"
local json = require "dkjson"

local M = {}

local PARSER = "spec/support/parse_email.py"

--- Writes data to the file name (binary).
function M.write_file(name, data)
  local f = assert(io.open(name, "wb"))
  f:write(data)
  f:close()
end

--- Parses raw message bytes with Python; returns what it understood (JSON).
function M.parse_raw(raw)
  local name = os.tmpname()
  M.write_file(name, raw)
  local p = assert(io.popen("/usr/bin/python3 " .. PARSER .. " " .. name .. " 2>&1"))
  local out = p:read("*a")
  local ok = p:close()
  os.remove(name)
  assert(ok, "parse_email.py failed: " .. out)
  local doc, _, err = json.decode(out, 1, json.null)
  assert(doc, "bad JSON from parse_email.py: " .. tostring(err) .. ": " .. out:sub(1, 400))
  return doc
end

--- Renders msg, checks what every rendered message must satisfy (no defect,
-- no bare CR or LF, lines within 998 octets, header lines within
-- max_header_line, 8-bit as declared) and returns (parsed, raw).
function M.parse(msg, max_header_line)
  local raw = assert(msg:render())
  local doc = M.parse_raw(raw)
  assert.same({}, doc.defects)
  assert.is_false(doc.lines.bare_lf)
  assert.is_false(doc.lines.bare_cr)
  assert.is_true(doc.lines.max_line <= 998)
  assert.is_true(doc.lines.max_header_line <= (max_header_line or 78),
    "header line of " .. doc.lines.max_header_line)
  assert.equal(msg.eightbit, doc.lines.eightbit)
  return doc, raw
end

--- The header block of raw message bytes (up to the first empty line).
function M.header_block(raw)
  return raw:sub(1, (raw:find("\r\n\r\n", 1, true)))
end

--- Decodes base64 (ignoring line breaks and padding).
function M.unb64(s)
  local map = {}
  local chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  for i = 1, 64 do map[chars:sub(i, i)] = i - 1 end
  local out, bits, nbits = {}, 0, 0
  for c in s:gmatch("[%w+/]") do
    bits = bits * 64 + map[c]
    nbits = nbits + 6
    if nbits >= 8 then
      nbits = nbits - 8
      local b = math.floor(bits / 2 ^ nbits)
      out[#out + 1] = string.char(b)
      bits = bits - b * 2 ^ nbits
    end
  end
  return table.concat(out)
end

local base = { from = "Sender <sender@example.com>", to = "rcpt@example.net" }
--- Message fields: a sender and a recipient, plus (over them) the fields of t.
function M.with(t)
  local o = {}
  for k, v in pairs(base) do o[k] = v end
  for k, v in pairs(t) do o[k] = v end
  return o
end

return M
