-- smtpkit.json: the one JSON encoder/decoder of the Lua side (the command's
-- --json output, the outbox's records).
local json = require "smtpkit.json"

describe("smtpkit.json", function()
  it("writes compact JSON with the keys sorted", function()
    assert.equal('{"a":1,"b":[true,false,[]],"c":{"x":"y"}}',
      json.encode { c = { x = "y" }, a = 1, b = { true, false, json.array() } })
    assert.equal('{"a":[],"b":{}}', json.encode { a = json.array(), b = {} })
    assert.equal('[1,2,3]', json.encode { 1, 2, 3 })
    assert.equal('{"1":"a","3":"b"}', json.encode { [1] = "a", [3] = "b" })   -- not a sequence
  end)

  it("escapes control characters, quotes and backslashes", function()
    assert.equal('"a\\"b\\\\c\\n\\r\\t\\u0001"', json.encode('a"b\\c\n\r\t\1'))
  end)

  it("turns bytes that are not UTF-8 into U+FFFD by default, and keeps them with bytes", function()
    assert.equal('"caf\239\191\189 \195\169"', json.encode("caf\233 \195\169"))
    assert.equal('"caf\233"', json.encode("caf\233", { bytes = true }))
    assert.equal("caf\233", json.decode(json.encode("caf\233", { bytes = true })))
    -- overlong forms and surrogates are not UTF-8 either
    assert.equal('"\239\191\189\239\191\189"', json.encode("\192\175"))
    assert.equal('"\239\191\189\239\191\189\239\191\189"', json.encode("\237\160\128"))
  end)

  it("writes numbers that read back the same", function()
    for _, v in ipairs { 0, -7, 2 ^ 52, 0.1, 1 / 3, -1.5e-300, 123456.789 } do
      assert.equal(v, json.decode(json.encode(v)))
    end
    assert.equal("0.1", json.encode(0.1))
    assert.equal("42", json.encode(42.0))
  end)

  it("is lenient for output and strict for records", function()
    assert.equal('{"n":null}', json.encode { n = 0 / 0 })
    assert.equal('{"a":1}', json.encode { a = 1, [true] = 2 })
    assert.truthy(json.encode(print):match('^"function'))
    assert.has_error(function() json.encode({ n = 0 / 0 }, { strict = true }) end,
      "json: cannot encode " .. tostring(0 / 0))
    assert.has_error(function() json.encode({ [true] = 1 }, { strict = true }) end,
      "json: cannot encode a table key of type boolean")
    assert.has_error(function() json.encode(print, { bytes = true, strict = true }) end,
      "json: cannot encode a value of type function")
    local deep = {}
    local t = deep
    for _ = 1, 70 do t[1] = {} t = t[1] end
    assert.has_error(function() json.encode(deep) end, "json: value nested too deep")
  end)

  it("decodes what it encodes, and says where text is broken", function()
    local v = { id = "m-1", n = 3, list = { "a", "b" }, nested = { ok = true }, text = "x\ny\0z" }
    assert.same(v, json.decode(json.encode(v, { bytes = true, strict = true })))
    assert.equal("\240\159\152\128", json.decode('"\\ud83d\\ude00"'))   -- a surrogate pair
    local r, why = json.decode('{"a": [1, 2}')
    assert.is_nil(r)
    assert.equal("expected ',' or ']' at byte 12", why)
    assert.equal("trailing characters at byte 3", select(2, json.decode("1 x")))
    assert.equal("unterminated string at byte 2", select(2, json.decode('"abc')))
  end)
end)
