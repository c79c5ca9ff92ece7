-- The encoders of csrc/codec.c through smtpkit.core. Decoding is checked
-- with Python's base64, quopri and email.header (an independent
-- implementation), run with /usr/bin/python3.
local core = require "smtpkit.core"

local function tmpfile(data)
  local name = os.tmpname()
  local f = assert(io.open(name, "wb"))
  f:write(data)
  f:close()
  return name
end

-- Runs a Python snippet on `input` (a file the snippet reads as sys.argv[1]);
-- returns its standard output as a string.
local function python(code, input)
  local script, data = tmpfile(code), tmpfile(input)
  local p = assert(io.popen("/usr/bin/python3 " .. script .. " " .. data .. " 2>&1"))
  local out = p:read("*a")
  local ok = p:close()
  os.remove(script)
  os.remove(data)
  assert(ok, "python failed: " .. out)
  return out
end

-- Pseudo-random bytes, reproducible.
local function noise(n, seed)
  local t, x = {}, seed or 1
  for i = 1, n do
    x = (x * 1103515245 + 12345) % 2147483648
    t[i] = string.char(math.floor(x / 65536) % 256)
  end
  return table.concat(t)
end

-- Feeds s to a fresh streaming encoder in pieces of the given sizes (cycled).
local function streamed(make, s, sizes)
  local enc, out, pos, k = make(), {}, 1, 1
  while pos <= #s do
    local n = sizes[(k - 1) % #sizes + 1]
    out[#out + 1] = enc:update(s:sub(pos, pos + n - 1))
    pos, k = pos + n, k + 1
  end
  out[#out + 1] = enc:finish()
  return table.concat(out)
end

local function lines_of(s)
  local t = {}
  for l in (s .. "\r\n"):gmatch("(.-)\r\n") do t[#t + 1] = l end
  if t[#t] == "" then t[#t] = nil end
  return t
end

describe("base64", function()
  it("encodes the RFC 4648 test vectors", function()
    local v = { [""] = "", f = "Zg==", fo = "Zm8=", foo = "Zm9v", foob = "Zm9vYg==",
      fooba = "Zm9vYmE=", foobar = "Zm9vYmFy" }
    for plain, enc in pairs(v) do
      assert.equal(enc, core.base64_encode(plain, 0))
      assert.equal(enc == "" and "" or enc .. "\r\n", core.base64_encode(plain))
    end
  end)

  it("writes lines of 76 characters with CRLF, and the same whatever the chunk sizes", function()
    local s = noise(10000, 7)
    local whole = core.base64_encode(s)
    for _, l in ipairs(lines_of(whole)) do assert.is_true(#l <= 76) end
    assert.equal(76, #lines_of(whole)[1])
    assert.is_nil(whole:find("[^\r]\n"))
    for _, sizes in ipairs({ { 1 }, { 2 }, { 57 }, { 1, 2, 3, 100 }, { 4096 }, { 10000 } }) do
      assert.equal(whole, streamed(core.base64_encoder, s, sizes))
    end
  end)

  it("is decoded by Python to the same bytes", function()
    local s = noise(5000, 3) .. string.rep("\0", 3) .. "\255"
    local out = python([[
import base64, sys
data = open(sys.argv[1], "rb").read()
sep = data.index(b"\n--\n")
print(base64.b64decode(data[sep + 4:], validate=False) == data[:sep])
]], s .. "\n--\n" .. core.base64_encode(s))
    assert.equal("True\n", out)
  end)

  it("refuses a line length that is not a multiple of 4 (programming mistake)", function()
    assert.has_error(function() core.base64_encode("x", 75) end)
    assert.has_error(function() core.base64_encoder(80) end)
  end)
end)

describe("quoted-printable", function()
  it("encodes '=', 8-bit bytes, trailing white space and a leading dot", function()
    assert.equal("a=3Db", core.qp_encode("a=b"))
    assert.equal("Caf=C3=A9", core.qp_encode("Café"))
    assert.equal("end =20\r\nnext=09\r\n", core.qp_encode("end  \nnext\t\r\n"))
    assert.equal("x =20", core.qp_encode("x  "))
    assert.equal("=2E\r\n=2Eline\r\nno.dot", core.qp_encode(".\n.line\nno.dot"))
    assert.equal("a=0Db", core.qp_encode("a\rb"))
    assert.equal("a=0D", core.qp_encode("a\r"))
  end)

  it("keeps lines at most 76 characters with soft breaks, never splitting an escape", function()
    local s = string.rep("é", 200) .. "\n" .. string.rep("x", 500) .. "\n" .. string.rep(" a", 300)
    local enc = core.qp_encode(s)
    for _, l in ipairs(lines_of(enc)) do
      assert.is_true(#l <= 76, l)
      assert.is_nil(l:find("=%x$"), "split escape: " .. l)
    end
  end)

  it("gives the same output whatever the chunk sizes (state across chunks)", function()
    local s = "a \r\nb\t\r\r\nc  \n.d\r" .. string.rep("tricky = line ", 30) .. " \r\n\r\n é.\n"
      .. noise(3000, 5)
    for _, binary in ipairs({ false, true }) do
      local whole = core.qp_encode(s, binary)
      for _, sizes in ipairs({ { 1 }, { 2 }, { 3, 1 }, { 7, 11, 13 }, { 4096 } }) do
        assert.equal(whole, streamed(function() return core.qp_encoder(binary) end, s, sizes))
      end
    end
  end)

  it("is decoded by Python to the input (line ends as CRLF in text mode, exact in binary mode)", function()
    local s = "Hello.\n.dot\r\nspace at end  \ntab\t\nequals = sign\nbare\rcr\n" .. string.rep("long", 100)
      .. "\n" .. noise(2000, 9)
    local text, bin = core.qp_encode(s), core.qp_encode(s, true)
    local expect_text = s:gsub("\r?\n", "\r\n")
    local out = python([[
import quopri, sys
parts = open(sys.argv[1], "rb").read().split(b"\n--SPLIT--\n")
print(quopri.decodestring(parts[0]) == parts[1], quopri.decodestring(parts[2]) == parts[3])
]], table.concat({ text, expect_text, bin, s }, "\n--SPLIT--\n"))
    assert.equal("True True\n", out)
    assert.is_nil(bin:find("[^=]\r\n") and bin:gsub("=\r\n", ""):find("[\r\n]"))
    assert.is_nil(text:find("[\128-\255]"))
  end)
end)

describe("utf8_check", function()
  it("accepts UTF-8 and points at the first bad byte", function()
    assert.is_true(core.utf8_check("ascii 請求書 🎉 عربي עברית"))
    local bad = {
      { "ab\192\128", 3 },          -- overlong
      { "\237\160\128", 1 },        -- surrogate U+D800
      { "\244\144\128\128", 1 },    -- past U+10FFFF
      { "x\226\130", 2 },           -- truncated
      { "\255", 1 },
      { "é\128", 3 },               -- stray continuation byte
    }
    for _, case in ipairs(bad) do
      local ok, at = core.utf8_check(case[1])
      assert.is_false(ok)
      assert.equal(case[2], at)
    end
  end)
end)

describe("encoded_words", function()
  local samples = {
    "請求書のご案内",
    "🎉🚀 Launch day 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🧑🏽‍💻",
    "مرحبا بالعالم — שלום עולם",
    "Café crème, naïve résumé",
    string.rep("請求書のご案内、", 20),
    "under_score = equals ? question",
  }

  it("cuts at whole characters, each word at most its room, decoded back exactly by Python", function()
    local words_all = {}
    for _, s in ipairs(samples) do
      for _, first in ipairs({ 0, 13, 30, 69, 75 }) do
        local words, enc = core.encoded_words(s, first, 75)
        assert.truthy(enc == "B" or enc == "Q")
        for i, w in ipairs(words) do
          assert.is_true(#w <= (i == 1 and first or 75), w)
          if i > 1 or w ~= "" then assert.truthy(w:find("^=%?UTF%-8%?[BQ]%?[!-~]+%?=$"), w) end
        end
        words_all[#words_all + 1] = table.concat(words, " ")
        words_all[#words_all + 1] = s
      end
    end
    local out = python([[
import sys, email.header
items = open(sys.argv[1], "rb").read().decode("utf-8").split("\n\0\n")
bad = 0
for i in range(0, len(items), 2):
    words, want = items[i], items[i + 1]
    # each word alone must be whole UTF-8 characters
    for w in words.split():
        for raw, cs in email.header.decode_header(w):
            raw.decode("utf-8")
    got = str(email.header.make_header(email.header.decode_header(words)))
    if got != want:
        bad += 1
        print(repr(got), repr(want))
print("bad", bad)
]], table.concat(words_all, "\n\0\n"))
    assert.equal("bad 0\n", out)
  end)

  it("chooses Q for mostly-ASCII text and B for Japanese", function()
    assert.equal("Q", select(2, core.encoded_words("Invoice for Café Müller", 75, 75)))
    assert.equal("B", select(2, core.encoded_words("請求書のご案内", 75, 75)))
    assert.equal("B", select(2, core.encoded_words("Café crème", 75, 75)))   -- 16 < 20 characters
    assert.same({ "=?UTF-8?Q?Invoice_for_Caf=C3=A9_M=C3=BCller?=" },
      (core.encoded_words("Invoice for Café Müller", 75, 75)))
  end)

  it("returns an empty first word when not one character fits the first line", function()
    local words = core.encoded_words("請求書", 10, 75)
    assert.equal("", words[1])
    assert.equal(2, #words)
  end)
end)

describe("rfc2231_pieces", function()
  it("percent-encodes whole characters into pieces of at most the room", function()
    local s = "請求書 2026年12月分 (final) \"copy\"; 🎉.pdf"
    local pieces = core.rfc2231_pieces(s, 30, 40)
    local joined = {}
    for i, p in ipairs(pieces) do
      assert.is_true(#p <= (i == 1 and 30 or 40))
      assert.is_nil(p:find("[^%w!#$&+%-%.^_`|~%%]"), p)
      local raw = p:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
      assert.is_true(core.utf8_check(raw), "piece cuts a character: " .. p)
      joined[#joined + 1] = raw
    end
    assert.equal(s, table.concat(joined))
  end)
end)

describe("random_bytes", function()
  it("returns n bytes that differ between calls", function()
    local a, b = core.random_bytes(16), core.random_bytes(16)
    assert.equal(16, #a)
    assert.are_not.equal(a, b)
  end)
end)
