-- The DATA encoder (csrc/data.c): CRLF normalisation, dot-stuffing, the end
-- of data, at every chunk split; the SMTP smuggling class (CVE-2023-51764).
local core = require "smtpkit.core"

-- What the encoder must produce, written the slow and obvious way.
local function reference(body)
  local s = body:gsub("\r\n", "\n"):gsub("\r", "\n")
  local out = {}
  for line in (s .. "\n"):gmatch("(.-)\n") do
    if line:sub(1, 1) == "." then line = "." .. line end
    out[#out + 1] = line .. "\r\n"
  end
  if s:sub(-1) == "\n" or s == "" then out[#out] = nil end   -- no line after the last LF
  return table.concat(out) .. ".\r\n"
end

-- Encodes body given as the list of chunks.
local function encode_chunks(chunks, long_lines)
  local enc = core.data_encoder(long_lines)
  local out = {}
  for _, c in ipairs(chunks) do
    local bytes, err = enc:encode(c)
    if not bytes then return nil, err end
    out[#out + 1] = bytes
  end
  out[#out + 1] = enc:finish()
  return table.concat(out)
end

-- The output ends DATA exactly once, at its end, and has no bare CR or LF.
local function check_wire(out)
  local p = ("\r\n" .. out):find("\r\n.\r\n", 1, true)
  assert.equal(#out - 2, p, "end of data before the end: " .. ("%q"):format(out))
  local bare = out:gsub("\r\n", ""):find("[\r\n]")
  assert.is_nil(bare, "bare CR or LF in " .. ("%q"):format(out))
end

describe("DATA encoder", function()
  it("normalises every line ending to CRLF and ends with .CRLF", function()
    assert.equal("a\r\nb\r\nc\r\nd\r\n.\r\n", core.encode_data("a\nb\rc\r\nd"))
    assert.equal("a\r\n\r\nb\r\n.\r\n", core.encode_data("a\r\r\nb"))
    assert.equal("a\r\n\r\n.\r\n", core.encode_data("a\n\r"))
    assert.equal(".\r\n", core.encode_data(""))
    assert.equal("x\r\n.\r\n", core.encode_data("x\r\n"))
    assert.equal("x", core.encode_data("x", false, false))
  end)

  it("dot-stuffs lines that start with a dot", function()
    assert.equal("..\r\n..x\r\n...\r\n.\r\n", core.encode_data(".\n.x\n.."))
    assert.equal("a.\r\n.. b\r\n.\r\n", core.encode_data("a.\n. b"))
  end)

  it("gives the same bytes at every split into two and three chunks", function()
    local bodies = { "a\r\n.b\r\n.\r\nc", "\r\n.\r\n", ".\r.\n.\r\n.", "x\r", "\r\n\r\n.",
                     "line\n.\nmore\r.\rend\n.\r\n", ("ab\r\n"):rep(5) .. "." }
    for _, body in ipairs(bodies) do
      local want = reference(body)
      assert.equal(want, core.encode_data(body))
      for i = 0, #body do
        assert.equal(want, encode_chunks({ body:sub(1, i), body:sub(i + 1) }))
        for j = i, #body do
          assert.equal(want, encode_chunks({ body:sub(1, i), body:sub(i + 1, j), body:sub(j + 1) }))
        end
      end
      -- one byte at a time
      local bytes = {}
      for i = 1, #body do bytes[i] = body:sub(i, i) end
      assert.equal(want, encode_chunks(bytes))
    end
  end)

  it("matches the reference on random bodies cut at random places", function()
    math.randomseed(4242)
    local alphabet = { "a", "b", ".", "\r", "\n", "\r\n", " ", "\0", "\255" }
    for _ = 1, 3000 do
      local parts = {}
      for i = 1, math.random(0, 40) do parts[i] = alphabet[math.random(#alphabet)] end
      local body = table.concat(parts)
      local chunks, i = {}, 1
      while i <= #body do
        local n = math.random(1, 7)
        chunks[#chunks + 1] = body:sub(i, i + n - 1)
        i = i + n
      end
      local out = encode_chunks(chunks)
      assert.equal(reference(body), out)
      check_wire(out)
    end
  end)

  describe("SMTP smuggling (CVE-2023-51764)", function()
    local attacks = {
      "\n.\n", "\r.\r", "\n.\r\n", "\r\n.\n", "\r.\n", "\r\n.\r", ".\r\n", ".\n", ".\r",
      "\r\n.\r\n", "\n.\nMAIL FROM:<evil@x>\nRCPT TO:<victim@x>\nDATA\nforged\n.\n",
      "hello\r\n.\r\nMAIL FROM:<evil@x>\r\n", "x\r\r\n.\r\r\n", "x\n\r.\n\r", "\0.\r\n",
    }
    for _, a in ipairs(attacks) do
      local shown = a:gsub("\r", "\\r"):gsub("\n", "\\n"):gsub("%z", "\\0")
      it("never ends DATA early on " .. shown, function()
        for _, body in ipairs({ a, "head\r\n" .. a, a .. "tail", "x" .. a .. "y" }) do
          check_wire(core.encode_data(body))
          for i = 0, #body do
            check_wire(encode_chunks({ body:sub(1, i), body:sub(i + 1) }))
          end
        end
      end)
    end
  end)

  describe("long lines", function()
    it("takes 998 octets and refuses 999", function()
      assert.is_string(core.encode_data(("x"):rep(998) .. "\n"))
      local out, err = core.encode_data(("x"):rep(999) .. "\n")
      assert.is_nil(out)
      assert.equal("validation", err.kind)
    end)

    it("counts a line across chunks", function()
      local chunks = {}
      for i = 1, 10 do chunks[i] = ("y"):rep(100) end
      assert.is_nil((encode_chunks(chunks)))
      chunks[10] = ("y"):rep(98) .. "\r\n"
      assert.is_string(encode_chunks(chunks))
    end)

    it("does not count the stuffed dot", function()
      assert.is_string(core.encode_data("." .. ("x"):rep(997) .. "\n"))
    end)

    it("passes long lines when asked", function()
      local body = ("x"):rep(5000) .. "\n." .. ("y"):rep(3000)
      local out = core.encode_data(body, true)
      assert.equal(reference(body), out)
      check_wire(out)
    end)
  end)
end)
