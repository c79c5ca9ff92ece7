-- X-SMTPAPI: validation (csrc/smtpapi.c), encoding, builder and templates
-- (lua/smtpkit/smtpapi.lua). Facts: ../shared/reference/smtpapi.md.
local smtpapi = require "smtpkit.smtpapi"

local check = require "support.smtpapi_check"
local NOW, opts = check.NOW, check.opts
local find, clean, fails, warns = check.find, check.clean, check.fails, check.warns

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local function list(n, f)
  local t = {}
  for i = 1, n do t[i] = f(i) end
  return t
end

local function quoted(t)
  local q = {}
  for i, v in ipairs(t) do q[i] = type(v) == "string" and ('"' .. v .. '"') or tostring(v) end
  return "[" .. table.concat(q, ",") .. "]"
end

-- RFC 5322 unfolding: remove every CRLF that is followed by WSP.
local function unfold(s) return (s:gsub("\r\n([ \t])", "%1")) end

local function lines_of(header)
  local out = {}
  for l in (header .. "\r\n"):gmatch("(.-)\r\n") do out[#out + 1] = l end
  return out
end

describe("smtpapi.validate", function()
  describe("the document", function()
    it("must be one JSON object", function()
      clean("{}")
      fails("[]", "", "one JSON object")
      fails('"to"', "", "one JSON object")
    end)

    it("reports malformed JSON with line, column and an excerpt (SendGrid's own example)", function()
      -- reference 1.5: SendGrid's parser says "at character offset 50" (0-based)
      local text = '{"to":["ben@sendgrid.com","joe@sendgrid.com","sub":{"%name%":["Ben","Joe"]}}'
      local ok, problems = smtpapi.validate(text, opts)
      assert.is_nil(ok)
      local p = problems[1]
      assert.equal("error", p.severity)
      assert.equal(1, p.line)
      assert.equal(51, p.column)
      assert.equal(":", text:sub(51, 51))
      assert.truthy(p.message:find("line 1, column 51", 1, true))
      assert.truthy(p.message:find("expected ',' or ']'", 1, true))
      assert.truthy(p.excerpt:find('"sub":{', 1, true))
      assert.equal("to[2]", p.path)
      assert.equal("smtpapi", problems.kind)
      assert.truthy(tostring(problems):find("column 51", 1, true))
    end)

    it("counts lines and columns in the folded text as given, header name included", function()
      local text = 'X-SMTPAPI: {"to":\r\n ["a@example.com"],\r\n "category": "news",,}'
      local ok, problems = smtpapi.validate(text, opts)
      assert.is_nil(ok)
      assert.equal(3, problems[1].line)
      assert.equal(21, problems[1].column) -- the second comma
      local ok2, p2 = smtpapi.validate('X-SMTPAPI: {"to" ["a@example.com"]}', opts)
      assert.is_nil(ok2)
      assert.equal(1, p2[1].line)
      assert.equal(18, p2[1].column) -- after 11 chars of name and 6 of JSON
      assert.truthy(p2[1].message:find("':'", 1, true))
    end)

    it("names common syntax mistakes", function()
      local cases = {
        { '{"a":1,}', "trailing comma" },
        { '{"a":[1,]}', "trailing comma" },
        { "{'a':1}", "double quotes" },
        { '{"a":1', "ends inside an object" },
        { '{"a":"x', "not closed" },
        { '{"a":01}', "leading zeros" },
        { '{"a":1.}', "decimal point" },
        { '{"a":"\\x"}', "unknown escape" },
        { '{"a":"\\ud83d"}', "surrogate" },
        { '{"a":"\\ude00"}', "surrogate" },
        { '{"a":tru}', "expected a value" },
        { '{} {}', "after the end" },
        { "", "empty" },
        { "   \r\n", "empty" },
      }
      for _, c in ipairs(cases) do
        local ok, problems = smtpapi.validate(c[1], opts)
        assert.is_nil(ok, c[1])
        assert.truthy(problems[1].message:find(c[2], 1, true),
          c[1] .. " -> " .. problems[1].message)
        assert.truthy(problems[1].line)
      end
    end)

    it("accepts the value folded, with or without the header name", function()
      clean('{"to":["a@example.com"]}')
      clean('X-SMTPAPI: {"to":["a@example.com"]}')
      clean('x-smtpapi:{"to":\r\n ["a@example.com"]}\r\n')
      clean('{"to":\n\t["a@example.com",\r\n "b@example.com"]}')
      -- a fold inside a string unfolds to the space that follows the line break
      local v = assert(smtpapi.decode('{"unique_args":{"a":"thank\r\n you"}}', opts))
      assert.equal("thank you", v.unique_args.a)
    end)

    it("refuses a line break not followed by a space or tab", function()
      local p = fails('{"to":\r\n["a@example.com"]}', "", "not followed by a space")
      assert.equal(2, p.line)
      assert.equal(1, p.column)
    end)

    it("refuses a second X-SMTPAPI header", function()
      fails('X-SMTPAPI: {"to":["a@example.com"]}\r\nX-SMTPAPI: {"to":["b@example.com"]}', "",
        "second X-SMTPAPI header")
    end)

    it("refuses lines over 998 characters in a header as it appears in a message", function()
      local long = '{"to":'
        .. quoted(list(80, function(i) return ("user%03d@example.com"):format(i) end)) .. "}"
      assert.truthy(#long > 998)
      clean(long) -- bare JSON: a value still to be encoded
      fails("X-SMTPAPI: " .. long, "", "998")
      fails('{"to":\r\n ' .. long:sub(7), "", "line 2 is")
      clean("X-SMTPAPI: " .. smtpapi.encode(long, opts)) -- folded: no warning
    end)

    it("refuses raw non-ASCII bytes and control characters; \\u escapes pass", function()
      fails('{"category":"caf\195\169"}', "category", "0xC3")
      fails('{"category":"a\tb"}', "category", "control character 0x09")
      fails('{"category":"a\127b"}', "category", "control character 0x7F")
      fails('{"unique_args":{"k":"\0"}}', "unique_args.k", "control character 0x00")
      clean('{"unique_args":{"k":"caf\\u00e9 \\ud83d\\ude00 a\\tb"}}')
      fails('{"unique_args":{"k":"a\\u0000b"}}', "unique_args.k", "NUL")
    end)

    it("finds duplicate keys in every object, with their paths", function()
      clean('{"to":["a@example.com"],"category":"x"}')
      local p = fails('{"to":["a@example.com"],"to":["b@example.com"]}', "to", "duplicate key")
      assert.equal(25, p.column)
      fails('{"filters":{"clicktrack":{"settings":{"enable":0,"enable":1}}}}',
        "filters.clicktrack.settings.enable", "duplicate")
      fails('{"sub":{"-a-":["x"],"-b-":["y"],"-a-":["z"]}}', 'sub["-a-"]', "duplicate")
      -- escapes are decoded before comparing keys
      fails('{"ip_pool":"a","ip_p\\u006fol":"b"}', "ip_pool", "duplicate")
      -- large objects take the hashing path
      local keys = list(40, function(i) return ('"k%d":"v"'):format(i) end)
      keys[#keys + 1] = '"k7":"again"'
      fails('{"unique_args":{' .. table.concat(keys, ",") .. "}}", "unique_args.k7", "duplicate")
      keys[#keys] = nil
      clean('{"unique_args":{' .. table.concat(keys, ",") .. "}}")
    end)

    it("bounds nesting depth", function()
      local ok32 = smtpapi.validate("{\"unique_args\":" .. ("["):rep(31) .. ("]"):rep(31) .. "}", opts)
      assert.is_nil(ok32) -- invalid for its type, but not for its depth:
      local _, p = smtpapi.validate("{\"unique_args\":" .. ("["):rep(31) .. ("]"):rep(31) .. "}", opts)
      assert.falsy(p[1].message:find("deeper", 1, true))
      local _, p2 = smtpapi.validate("{\"unique_args\":" .. ("["):rep(32) .. ("]"):rep(32) .. "}", opts)
      assert.truthy(p2[1].message:find("deeper than 32", 1, true))
    end)

    it("refuses hostile 1 MB headers cleanly", function()
      local deep = ("["):rep(512 * 1024) .. ("]"):rep(512 * 1024)
      local ok, p = smtpapi.validate(deep, opts)
      assert.is_nil(ok)
      assert.truthy(p[1].message:find("deeper than 32", 1, true))
      -- 100,000 keys, most of them duplicates: problems are capped
      local parts = {}
      for i = 1, 100000 do parts[i] = ('"k%d":%d'):format(i % 5000, i) end
      local many = "{" .. table.concat(parts, ",") .. "}"
      assert.truthy(#many > 1000000)
      local ok2, p2 = smtpapi.validate(many, opts)
      assert.is_nil(ok2)
      assert.equal(100, #p2)
      assert.truthy(p2.dropped > 90000)
      assert.equal(#p2 + p2.dropped, p2.errors + p2.warnings)
      assert.equal(95000, p2.errors)
      assert.truthy(tostring(p2):find("more", 1, true))
      local big = '{"to":["' .. ("a"):rep(5 * 1024 * 1024) .. '"]}'
      local ok3, p3 = smtpapi.validate(big, opts)
      assert.is_nil(ok3)
      assert.truthy(p3[1].message:find("4 MiB", 1, true))
    end)

    it("gives line and column for rule problems too", function()
      local p = fails('{"to":["a@example.com"],\r\n "asm_group_id":"7"}', "asm_group_id", "integer")
      assert.equal(2, p.line)
      assert.equal(17, p.column)
    end)
  end)

  describe("to", function()
    it("is an array of address strings", function()
      clean('{"to":["a@example.com","Ben <ben@example.com>"]}')
      fails('{"to":"a@example.com"}', "to", "array")
      fails('{"to":["a@example.com",7]}', "to[1]", "string")
      fails('{"to":[]}', "to", "empty")
      fails('{"to":[""]}', "to[0]", "empty")
      warns('{"to":["nobody"]}', "to[0]", "email address")
    end)

    it("holds at most 10,000 addresses, with a warning past 1,000", function()
      local function to(n)
        return '{"to":' .. quoted(list(n, function(i) return "u" .. i .. "@x.io" end)) .. "}"
      end
      clean(to(1000))
      warns(to(1001), "to", "1,000")
      warns(to(10000), "to", "1,000")
      fails(to(10001), "to", "10,000")
    end)
  end)

  describe("sub", function()
    it("maps tags to arrays of strings", function()
      clean('{"sub":{"-name-":["Ann"]}}')
      fails('{"sub":["x"]}', "sub", "object")
      fails('{"sub":{"-name-":"Ann"}}', 'sub["-name-"]', "array")
      fails('{"sub":{"-name-":["Ann",2,"Cy"]}}', 'sub["-name-"][1]', "string")
      fails('{"to":["a@x.io","b@x.io","c@x.io"],"sub":{"-name-":["A","B",{}]}}', 'sub["-name-"][2]', "string")
      warns('{"sub":{"%first name%":["Ann"]}}', 'sub["%first name%"]', "space")
    end)

    it("has one value per address when to is present", function()
      clean('{"to":["a@x.io","b@x.io"],"sub":{"-name-":["A","B"],"%city%":["P","Q"]}}')
      fails('{"to":["a@x.io","b@x.io"],"sub":{"-name-":["A"]}}', 'sub["-name-"]', "has 1 values")
      fails('{"to":["a@x.io"],"sub":{"-name-":["A","B"]}}', 'sub["-name-"]', '"to" has 1')
      warns('{"sub":{"-a-":["A","B"],"-b-":["x"]}}', 'sub["-b-"]', 'but "-a-" has 2')
      warns(('{"send_each_at":[%d]}'):format(NOW), "send_each_at", 'without "to"')
      clean('{"sub":{"-a-":["A","B"],"-b-":["x","y"]}}')
    end)
  end)

  it("section is deprecated: a warning; its values must be strings", function()
    warns('{"section":{"-s-":"text"}}', "section", "deprecated")
    fails('{"section":{"-s-":1}}', 'section["-s-"]', "string")
    fails('{"section":"x"}', "section", "object")
  end)

  describe("category", function()
    it("is a string or an array of at most 10 strings", function()
      clean('{"category":"news"}')
      clean('{"category":' .. quoted(list(10, function(i) return "c" .. i end)) .. "}")
      fails('{"category":' .. quoted(list(11, function(i) return "c" .. i end)) .. "}",
        "category", "at most 10")
      fails('{"category":["a",1]}', "category[1]", "string")
      fails('{"category":{"a":"b"}}', "category", "string or an array")
      warns('{"category":"caf\\u00e9"}', "category", "US-ASCII")
      warns('{"category":[]}', "category", "empty")
    end)
  end)

  describe("unique_args", function()
    it("maps names to strings, at most 10,000 bytes", function()
      clean('{"unique_args":{"customer":"42","plan":"pro"}}')
      fails('{"unique_args":{"customer":42}}', "unique_args.customer", "string")
      fails('{"unique_args":["a"]}', "unique_args", "object")
      -- {"k":"..."} is 8 bytes plus the value
      clean('{"unique_args":{"k":"' .. ("v"):rep(9992) .. '"}}')
      fails('{"unique_args":{"k":"' .. ("v"):rep(9993) .. '"}}', "unique_args", "10,000 bytes")
    end)
  end)

  describe("filters", function()
    local function f(name, settings) return ('{"filters":{"%s":{"settings":%s}}}'):format(name, settings) end

    it("each filter is an object with a settings object", function()
      clean(f("clicktrack", '{"enable":0}'))
      fails('{"filters":[]}', "filters", "object")
      fails('{"filters":{"clicktrack":1}}', "filters.clicktrack", "object")
      fails('{"filters":{"clicktrack":{}}}', "filters.clicktrack", 'no "settings"')
      fails(f("clicktrack", "[]"), "filters.clicktrack.settings", "object")
      local _, problems = fails('{"filters":{"clicktrack":{"setting":{"enable":0}}}}',
        "filters.clicktrack", 'no "settings"')
      local w = find(problems, "filters.clicktrack.setting", "warning")
      assert.truthy(w.message:find('did you mean "settings"', 1, true))
    end)

    it("checks the settings of known filters", function()
      clean(f("clicktrack", '{"enable":1,"enable_text":true}'))
      fails(f("clicktrack", '{"enable":2}'), "filters.clicktrack.settings.enable", "0 or 1")
      fails(f("clicktrack", '{"enable":"on"}'), "filters.clicktrack.settings.enable", "0 or 1")
      warns(f("clicktrack", '{"enable":true}'), "filters.clicktrack.settings.enable", "integer 1")
      warns(f("clicktrack", '{"enable":"1"}'), "filters.clicktrack.settings.enable", "integer 1")
      fails(f("clicktrack", '{"enable_text":"yes"}'), "filters.clicktrack.settings.enable_text",
        "true or false")
      warns(f("clicktrack", '{"enable_text":1}'), "filters.clicktrack.settings.enable_text", "true or false")
      warns(f("clicktrack", '{"enabled":1}'), "filters.clicktrack.settings.enabled", 'did you mean "enable"')
      clean(f("footer", '{"enable":1,"text/html":"<p>x</p>","text/plain":"x"}'))
      fails(f("footer", '{"enable":1,"text/html":5}'), 'filters.footer.settings["text/html"]', "string")
      clean(f("ganalytics", '{"enable":1,"utm_source":"a","utm_medium":"b","utm_campaign":"c"}'))
      warns(f("ganalytics", '{"enable":1,"utm_campain":"a"}'), "filters.ganalytics.settings.utm_campain",
        "utm_campaign")
      clean(f("opentrack", '{"enable":1,"replace":"%open%"}'))
      clean(f("dkim", '{"domain":"example.com","use_from":1}'))
      warns(f("dkim", '{"domain":"example.com","use_from":false}'), "filters.dkim.settings.use_from",
        "integer 0")
      clean(f("templates", '{"enable":1,"template_id":"5997fcf6-2b9f-484d-acd5-7e9a99f0dc1f"}'))
      fails(f("templates", '{"enable":1,"template_id":"d-2c214ac919e84170b00855dbe8c3ee6c"}'),
        "filters.templates.settings.template_id", "dynamic template")
      clean(f("subscriptiontrack", '{"enable":1,"replace":"[unsub]"}'))
      warns(f("subscriptiontrack", '{"enable":1,"landing":"x"}'),
        "filters.subscriptiontrack.settings.landing", "cannot be used")
      clean(f("bypass_list_management", '{"enable":1}'))
      fails(f("clicktrack", '{"Enable":1}'), "filters.clicktrack.settings.Enable", "lowercase")
    end)

    it("warns about removed, legacy, v3-only and unknown filters, naming the likely one", function()
      warns(f("bcc", '{"enable":1,"email":"a@x.io"}'), "filters.bcc", "removed")
      warns(f("spamcheck", '{"enable":1,"maxscore":3.5}'), "filters.spamcheck", "removed")
      warns(f("spamcheck", '{"enable":1,"maxscore":11}'), "filters.spamcheck.settings.maxscore", "1 to 10")
      warns(f("gravatar", '{"enable":1}'), "filters.gravatar", "removed")
      warns(f("domainkeys", '{"enable":1}'), "filters.domainkeys", "removed")
      warns(f("forwardspam", '{"enable":1}'), "filters.forwardspam", "removed")
      warns(f("template", '{"enable":1,"text/html":"<% body %>"}'), "filters.template", "legacy")
      warns(f("template", '{"enable":1,"text/html":"x"}'), 'filters.template.settings["text/html"]',
        "<% body %>")
      warns(f("bypass_spam_management", '{"enable":1}'), "filters.bypass_spam_management", "v3")
      warns(f("clicktrak", '{"enable":1}'), "filters.clicktrak", 'did you mean "clicktrack"')
      warns(f("twitter", '{"enable":1}'), "filters.twitter", "unknown filter")
      fails(f("ClickTrack", '{"enable":1}'), "filters.ClickTrack", "lowercase")
    end)
  end)

  describe("send_at and send_each_at", function()
    it("send_at is an integer UNIX time in seconds, at most 72 hours ahead", function()
      clean(('{"send_at":%d}'):format(NOW + 3600))
      clean(('{"send_at":%d}'):format(NOW + 72 * 3600))
      fails(('{"send_at":%d}'):format(NOW + 72 * 3600 + 1), "send_at", "72 hours")
      fails(('{"send_at":%d}'):format((NOW + 60) * 1000), "send_at", "milliseconds")
      fails('{"send_at":1776390000.5}', "send_at", "integer")
      fails('{"send_at":1.7e9}', "send_at", "integer")
      fails('{"send_at":"1776390000"}', "send_at", "not a string")
      fails('{"send_at":-1}', "send_at", "negative")
    end)

    it("uses opts.now, or the current time", function()
      local at = ('{"send_at":%d}'):format(os.time() + 3600)
      assert.truthy(smtpapi.validate(at))
      assert.is_nil(smtpapi.validate(at, { now = os.time() - 72 * 3600 }))
    end)

    it("never both", function()
      fails(('{"to":["a@x.io"],"send_at":%d,"send_each_at":[%d]}'):format(NOW, NOW), "send_at", "both")
    end)

    it("send_each_at has one integer time per address", function()
      clean(('{"to":["a@x.io","b@x.io"],"send_each_at":[%d,%d]}'):format(NOW + 60, NOW + 120))
      fails(('{"to":["a@x.io","b@x.io"],"send_each_at":[%d]}'):format(NOW), "send_each_at", "one per address")
      fails(('{"to":["a@x.io"],"send_each_at":[%d.5]}'):format(NOW), "send_each_at[0]", "integer")
      fails(('{"to":["a@x.io"],"send_each_at":%d}'):format(NOW), "send_each_at", "array")
      fails(('{"to":["a@x.io"],"send_each_at":[%d]}'):format(NOW + 73 * 3600), "send_each_at[0]", "72 hours")
    end)
  end)

  it("batch_id, asm_group_id, asm_groups_to_display and ip_pool have their types and limits", function()
    clean('{"batch_id":"YOUR_BATCH_ID"}')
    fails('{"batch_id":12}', "batch_id", "string")
    clean('{"asm_group_id":7}')
    fails('{"asm_group_id":"7"}', "asm_group_id", "integer")
    fails('{"asm_group_id":7.5}', "asm_group_id", "integer")
    fails('{"asm_group_id":0}', "asm_group_id", "positive")
    clean('{"asm_groups_to_display":' .. quoted(list(25, function(i) return i end)) .. "}")
    fails('{"asm_groups_to_display":' .. quoted(list(26, function(i) return i end)) .. "}",
      "asm_groups_to_display", "at most 25")
    fails('{"asm_groups_to_display":[1,"2"]}', "asm_groups_to_display[1]", "integer")
    fails('{"asm_groups_to_display":7}', "asm_groups_to_display", "array")
    clean('{"ip_pool":"marketing"}')
    fails('{"ip_pool":3}', "ip_pool", "string")
    fails('{"ip_pool":""}', "ip_pool", "empty")
  end)

  it("warns about unknown keys, naming what was probably meant", function()
    warns('{"categories":["a"]}', "categories", 'did you mean "category"')
    warns('{"unique_arg":{}}', "unique_arg", 'did you mean "unique_args"')
    warns('{"sendAt":1}', "sendAt", 'did you mean "send_at"')
    warns('{"To":["a@x.io"]}', "To", 'did you mean "to"')
    warns('{"dynamic_template_data":{"a":1}}', "dynamic_template_data", "dynamic templates")
    local p = warns('{"zzzzzz":1}', "zzzzzz", "unknown key")
    assert.falsy(p.message:find("did you mean", 1, true))
  end)

  it("validates a realistic 10 KB header cleanly", function()
    clean(read("spec/data/smtpapi/realistic_10k.json"))
  end)

  it("accepts tables and builders too", function()
    assert.truthy(smtpapi.validate({ to = { "a@x.io" } }, opts))
    assert.is_nil(smtpapi.validate({ to = "a@x.io" }, opts))
    assert.truthy(smtpapi.validate(smtpapi.new():add_to("a@x.io"), opts))
  end)

  it("raises for arguments of the wrong type", function()
    assert.has_error(function() smtpapi.validate(42) end)
    assert.has_error(function() smtpapi.validate("{}", 5) end)
    assert.has_error(function() smtpapi.decode({}) end)
  end)
end)

describe("smtpapi.encode", function()
  it("returns an ASCII value that decodes to the input", function()
    local value = {
      to = { "Zoë <zoe@example.com>" },
      category = { "café", "日本", "\u{1F600}" },
      unique_args = { quote = 'say "hi"\\', tab = "a\tb" },
    }
    local h = assert(smtpapi.encode(value, opts))
    assert.falsy(h:find("[\128-\255]"))
    assert.truthy(h:find('"caf\\u00e9"', 1, true))
    assert.truthy(h:find('"\\u65e5\\u672c"', 1, true))
    assert.truthy(h:find('"\\ud83d\\ude00"', 1, true)) -- a surrogate pair, lower-case hex
    assert.truthy(h:find('"say \\"hi\\"\\\\"', 1, true))
    assert.truthy(h:find('"a\\tb"', 1, true))
    local back = assert(smtpapi.decode(h, opts))
    assert.same(value, back)
  end)

  it("takes JSON text (UTF-8 allowed), tables and builders", function()
    assert.equal('{"category":"caf\\u00e9 \\ud83d\\ude00"}',
      smtpapi.encode('{"category": "café \xF0\x9F\x98\x80"}', opts))
    assert.equal('{"to":["a@x.io"]}', smtpapi.encode({ to = { "a@x.io" } }, opts))
    assert.equal('{"to":["a@x.io"]}', smtpapi.encode(smtpapi.new():add_to("a@x.io"), opts))
    assert.equal('{"a":[1,2.5,true,false,null]}',
      smtpapi.encode('{"a" : [ 1 , 2.5 , true , false , null ] }', opts))
  end)

  it("refuses an invalid header with its problems", function()
    local h, problems = smtpapi.encode({ to = {} }, opts)
    assert.is_nil(h)
    assert.equal("to", problems[1].path)
    local h2, p2 = smtpapi.encode('{"to":[', opts)
    assert.is_nil(h2)
    assert.truthy(p2[1].line)
    local h3, p3 = smtpapi.encode('{"category":"\xC3("}', opts)
    assert.is_nil(h3)
    assert.truthy(p3[1].message:find("UTF-8", 1, true))
    local h4, p4 = smtpapi.encode({ category = "\xFF" }, opts)
    assert.is_nil(h4)
    assert.equal("category", p4[1].path)
    assert.truthy(p4[1].message:find("UTF-8", 1, true))
    assert.has_error(function() smtpapi.encode(42) end)
  end)

  it("folds with CRLF + space between tokens only: unfolding gives the exact JSON back", function()
    local text = read("spec/data/smtpapi/realistic_10k.json")
    local h = assert(smtpapi.encode(text, opts))
    local lines = lines_of(h)
    local long_lines = 0
    assert.truthy(#lines > 100)
    for i, l in ipairs(lines) do
      local width = #l + (i == 1 and 11 or 0)
      if width > 78 then
        -- only a single token too long for 78 may make a longer line
        local bare = l:gsub("\\.", "")
        local _, quotes = bare:gsub('"', "")
        assert.truthy(bare:match('^ "[^"]*"[,:%]}]*$') and quotes == 2,
          ("line %d is %d long: %s"):format(i, width, l))
        long_lines = long_lines + 1
      end
      if i > 1 then assert.equal(" ", l:sub(1, 1)) end
    end
    assert.equal(1, long_lines) -- the footer's HTML
    assert.falsy(h:find("\r\n$"))
    assert.falsy(h:find("\n[^ ]"))
    local json = unfold(h)
    -- the unfolded JSON is the compact JSON plus the one space of each fold
    assert.equal(text, (h:gsub("\r\n ", "")))
    assert.equal(#text + #lines - 1, #json)
    assert.same(smtpapi.decode(text, opts), smtpapi.decode(json, opts))
    assert.same(smtpapi.decode(text, opts), smtpapi.decode(h, opts))
    clean(h)
    clean("X-SMTPAPI: " .. h .. "\r\n")
  end)

  it("never splits a string: spaces inside strings stay where they are", function()
    local value = { unique_args = {} }
    for i = 1, 30 do value.unique_args["k" .. i] = ("word "):rep(i % 7 + 1) end
    local h = assert(smtpapi.encode(value, opts))
    for _, l in ipairs(lines_of(h)) do
      -- no line ends inside a string: count the quotes on each line
      local _, q = l:gsub('\\"', ""):gsub('"', '"')
      assert.equal(0, q % 2, l)
    end
    assert.same(value, smtpapi.decode(h, opts))
  end)

  it("counts the header name on the first line (opts.name_len)", function()
    local value = { to = list(20, function(i) return ("user%02d@example.com"):format(i) end) }
    local h = assert(smtpapi.encode(value, opts))
    assert.truthy(#lines_of(h)[1] + 11 <= 78)
    assert.truthy(#lines_of(h)[1] + 11 > 50)
    local h2 = assert(smtpapi.encode(value, { now = NOW, name_len = 40 }))
    assert.truthy(#lines_of(h2)[1] + 40 <= 78)
    assert.truthy(#lines_of(h2)[1] < #lines_of(h)[1])
  end)

  it("keeps long tokens whole: lines up to 998, and an error that names a token too long", function()
    -- a string token of 997 characters fits a continuation line (1 + 997)
    local v = { unique_args = { a = ("x"):rep(995) } }
    local h = assert(smtpapi.encode(v, opts))
    local max = 0
    for _, l in ipairs(lines_of(h)) do if #l > max then max = #l end end
    assert.equal(998, max)
    assert.same(v, smtpapi.decode(h, opts))
    local h2, problems = smtpapi.encode({ unique_args = { a = ("x"):rep(996) } }, opts)
    assert.is_nil(h2)
    assert.equal("unique_args.a", problems[1].path)
    assert.truthy(problems[1].message:find("998 characters as JSON", 1, true))
    assert.truthy(problems[1].message:find("too long to fold", 1, true))
    -- escapes count: 200 characters beyond the basic plane take 12 each
    local h3, p3 = smtpapi.encode({ sub = { ["-e-"] = { ("\u{1F600}"):rep(200) } } }, opts)
    assert.is_nil(h3)
    assert.equal('sub["-e-"][0]', p3[1].path)
  end)

  it("round-trips: validate(encode(x)) passes and decodes to x", function()
    local cases = {
      { to = { "a@x.io", "b@x.io" }, sub = { ["-n-"] = { "A", "B" } }, send_each_at = { NOW + 1, NOW + 2 } },
      { category = "one", filters = { clicktrack = { settings = { enable = 0, enable_text = false } } } },
      { unique_args = { ["k e y"] = "v\r\nw", ["ü"] = "\u{10FFFF}" }, asm_group_id = 5,
        asm_groups_to_display = { 5, 6 }, ip_pool = "p", batch_id = "b", send_at = NOW },
      {},
    }
    for _, x in ipairs(cases) do
      local h = assert(smtpapi.encode(x, opts))
      assert.truthy(smtpapi.validate(h, opts))
      assert.same(x, smtpapi.decode(h, opts))
    end
  end)
end)

describe("smtpapi.to_json", function()
  it("writes compact JSON with sorted keys", function()
    assert.equal('{"a":{"x":1,"y":[true,false]},"b":"c","to":["z"]}',
      smtpapi.to_json({ to = { "z" }, b = "c", a = { y = { true, false }, x = 1 } }))
  end)

  it("writes integral numbers as integers on every Lua version, others exactly", function()
    assert.equal('{"a":3,"b":1.5,"c":-7,"d":0.1}', smtpapi.to_json({ a = 3.0, b = 1.5, c = -7, d = 0.1 }))
  end)

  it("writes empty tables as objects unless marked as arrays", function()
    assert.equal('{"a":{},"b":[],"c":null}',
      smtpapi.to_json({ a = {}, b = smtpapi.array(), c = smtpapi.null }))
    assert.equal('[]', smtpapi.to_json(smtpapi.array {}))
    assert.equal('{}', smtpapi.to_json(smtpapi.object {}))
  end)

  it("reports what JSON cannot hold, with a path", function()
    local cases = {
      { { a = { 1, 2, nil, 4 } }, "a", "holes" },
      { { a = { 1, x = 2 } }, "a", "only string keys" },
      { { a = { [1.5] = 1 } }, "a", "only string keys" },
      { { f = print }, "f", "function" },
      { { n = 0 / 0 }, "n", "NaN" },
      { { s = "\xC0\x80" }, "s", "UTF-8" },
    }
    for _, c in ipairs(cases) do
      local s, problems = smtpapi.to_json(c[1])
      assert.is_nil(s)
      assert.equal(c[2], problems[1].path)
      assert.truthy(problems[1].message:find(c[3], 1, true), problems[1].message)
    end
    local t = {}
    t.self = t
    local s, problems = smtpapi.to_json(t)
    assert.is_nil(s)
    assert.truthy(problems[1].message:find("contains itself", 1, true))
  end)
end)

describe("the builder", function()
  it("builds a header with the helper libraries' vocabulary, chained", function()
    local b = smtpapi.new()
      :add_to("a@x.io")
      :add_to("b@x.io", "Bob B")
      :add_to({ "c@x.io" })
      :add_substitution("-name-", "Ann")
      :add_substitution("-name-", { "Bob", "Cy" })
      :add_section("-s-", "text")
      :add_category("news")
      :add_category({ "eu", "spring" })
      :add_unique_arg("customer", "42")
      :add_filter("clicktrack", "enable", 0)
      :add_filter("footer", "enable", 1)
      :add_filter("footer", "text/plain", "bye")
      :set_batch_id("BATCH")
      :set_asm_group_id(7)
      :set_asm_groups_to_display({ 7, 8 })
      :add_asm_group_to_display(9)
      :set_ip_pool("pool")
      :set_send_at(NOW + 60)
    assert.equal('{"asm_group_id":7,"asm_groups_to_display":[7,8,9],"batch_id":"BATCH",'
      .. '"category":["news","eu","spring"],"filters":{"clicktrack":{"settings":{"enable":0}},'
      .. '"footer":{"settings":{"enable":1,"text/plain":"bye"}}},"ip_pool":"pool",'
      .. '"section":{"-s-":"text"},"send_at":' .. (NOW + 60) .. ','
      .. '"sub":{"-name-":["Ann","Bob","Cy"]},"to":["a@x.io","Bob B <b@x.io>","c@x.io"],'
      .. '"unique_args":{"customer":"42"}}', b:json())
    local h, warnings = b:header(opts)
    assert.truthy(h, tostring(warnings))
    assert.truthy(find(warnings, "section", "warning"))
    assert.same(b:table(), smtpapi.decode(h, opts))
    assert.truthy(b:validate(opts))
    assert.truthy(smtpapi.is_builder(b))
    assert.equal(b:json(), tostring(b))
  end)

  it("has the set_ forms that replace", function()
    local b = smtpapi.new({ to = { "old@x.io" } })
      :set_tos({ "a@x.io", "b@x.io" })
      :set_substitutions({ ["-n-"] = { "A", "B" } })
      :set_sections({ ["-s-"] = "x" })
      :set_categories("one")
      :set_unique_args({ k = "v" })
      :set_filters({ opentrack = { settings = { enable = 0 } } })
      :set_send_each_at({ NOW + 1, NOW + 2 })
    local t = b:table()
    assert.same({ "a@x.io", "b@x.io" }, t.to)
    assert.same({ "one" }, t.category)
    assert.same({ ["-n-"] = { "A", "B" } }, t.sub)
    assert.same({ NOW + 1, NOW + 2 }, t.send_each_at)
    assert.truthy(b:validate(opts))
  end)

  it("keeps send_at and send_each_at exclusive", function()
    local b = smtpapi.new():add_to("a@x.io"):set_send_each_at({ NOW })
    b:set_send_at(NOW + 5)
    assert.is_nil(b:table().send_each_at)
    b:add_send_each_at(NOW + 9)
    assert.is_nil(b:table().send_at)
    assert.same({ NOW + 9 }, b:table().send_each_at)
  end)

  it("quotes display names that need it", function()
    local b = smtpapi.new():add_to("a@x.io", 'Doe, "Jo"')
    assert.equal('"Doe, \\"Jo\\"" <a@x.io>', b:table().to[1])
  end)

  it("returns nil, problems from header() when the header is invalid", function()
    local h, problems = smtpapi.new():add_to("a@x.io"):add_substitution("-n-", { "A", "B" }):header(opts)
    assert.is_nil(h)
    assert.truthy(find(problems, 'sub["-n-"]', "error"))
  end)

  it("raises for arguments of the wrong type", function()
    assert.has_error(function() smtpapi.new():add_to(5) end)
    assert.has_error(function() smtpapi.new():set_send_at("soon") end)
    assert.has_error(function() smtpapi.new():add_filter("clicktrack", "enable", {}) end)
    assert.has_error(function() smtpapi.new(5) end)
  end)

  it("does not share state with its init table", function()
    local init = { to = { "a@x.io" } }
    smtpapi.new(init):add_to("b@x.io")
    assert.same({ "a@x.io" }, init.to)
  end)
end)

describe("templates", function()
  it("has the built-in building blocks", function()
    assert.same({ filters = { clicktrack = { settings = { enable = 0 } } } },
      smtpapi.template("disable_click_tracking"))
    assert.same({ filters = { opentrack = { settings = { enable = 0 } } } },
      smtpapi.template("disable_open_tracking"))
    assert.same({ filters = { bypass_list_management = { settings = { enable = 1 } } } },
      smtpapi.template("bypass_list_management"))
    assert.same({ filters = { footer = { settings = {
        enable = 1, ["text/plain"] = "t", ["text/html"] = "<p>h</p>" } } } },
      smtpapi.template("footer", { text = "t", html = "<p>h</p>" }))
    assert.same({ filters = { ganalytics = { settings = {
        enable = 1, utm_source = "s", utm_campaign = "c" } } } },
      smtpapi.template("google_analytics", { source = "s", utm_campaign = "c" }))
    assert.same({ asm_group_id = 5, asm_groups_to_display = { 5, 6 } },
      smtpapi.template("unsubscribe_group", 5, { 5, 6 }))
    assert.same({ send_at = NOW }, smtpapi.template("schedule", NOW))
    assert.same({ send_each_at = { NOW, NOW + 1 } }, smtpapi.template("schedule", { NOW, NOW + 1 }))
    assert.same({ category = { "a" } }, smtpapi.template("categories", "a"))
    assert.has_error(function() smtpapi.template("footer", {}) end)
    assert.has_error(function() smtpapi.template("no_such_template") end)
  end)

  it("mail_merge builds to and aligned sub arrays from records", function()
    local records = {
      { email = "ann@x.io", first = "Ann", code = 17 },
      { email = "bob@x.io", first = "Bob" },
    }
    assert.same({ to = { "ann@x.io", "bob@x.io" },
      sub = { ["-first-"] = { "Ann", "Bob" }, ["%code%"] = { "17", "" } } },
      smtpapi.template("mail_merge", records, { "first", ["%code%"] = "code" }))
    assert.has_error(function() smtpapi.template("mail_merge", { { first = "x" } }, {}) end)
    assert.has_error(function() smtpapi.template("mail_merge", { { email = "a@x.io", f = {} } }, { "f" }) end)
  end)

  it("compose merges in order (later scalars win, lists append) and validates", function()
    local t, w = smtpapi.compose({
      { "mail_merge", { { email = "a@x.io", n = "A" } }, { "n" } },
      { "mail_merge", { { email = "b@x.io", n = "B" } }, { "n" } },
      "disable_click_tracking",
      { "footer", { text = "bye" } },
      { category = "one" },
      { "categories", { "two" } },
      { ip_pool = "first" },
      { ip_pool = "second" },
      { filters = { clicktrack = { settings = { enable_text = true } } } },
    }, opts)
    assert.truthy(t, tostring(w))
    assert.same({ "a@x.io", "b@x.io" }, t.to)
    assert.same({ "A", "B" }, t.sub["-n-"])
    assert.same({ "one", "two" }, t.category)
    assert.equal("second", t.ip_pool)
    assert.same({ enable = 0, enable_text = true }, t.filters.clicktrack.settings)
    assert.equal(1, t.filters.footer.settings.enable)
    -- the same entries in the same order give the same header
    local entries = { "disable_click_tracking", { category = "x" } }
    assert.equal(smtpapi.to_json(smtpapi.compose(entries, opts)),
      smtpapi.to_json(smtpapi.compose(entries, opts)))
    local bad, problems = smtpapi.compose({ { "schedule", NOW }, { "schedule", { NOW } } }, opts)
    assert.is_nil(bad)
    assert.truthy(find(problems, "send_at", "error"))
  end)

  it("users register their own, and a name only once", function()
    smtpapi.register_template("spec_transactional", function(pool)
      return smtpapi.merge(smtpapi.template("bypass_list_management"), { ip_pool = pool, category = "tx" })
    end)
    assert.truthy(smtpapi.templates.spec_transactional)
    local h = assert(smtpapi.new():add_to("a@x.io"):apply("spec_transactional", "tx-pool")
      :apply("disable_open_tracking"):header(opts))
    local v = smtpapi.decode(h, opts)
    assert.equal("tx-pool", v.ip_pool)
    assert.equal(1, v.filters.bypass_list_management.settings.enable)
    assert.equal(0, v.filters.opentrack.settings.enable)
    assert.has_error(function() smtpapi.register_template("spec_transactional", function() end) end)
    assert.has_error(function() smtpapi.register_template("footer", function() end) end)
    assert.has_error(function() smtpapi.register_template("x", "not a function") end)
    assert.has_error(function() smtpapi.templates.x = 1 end)
  end)

  it("merge leaves its arguments alone", function()
    local a = { to = { "a@x.io" }, filters = { f = { settings = { x = 1 } } } }
    local b = { to = { "b@x.io" }, filters = { f = { settings = { y = 2 } } } }
    local m = smtpapi.merge(a, b)
    assert.same({ "a@x.io", "b@x.io" }, m.to)
    assert.same({ x = 1, y = 2 }, m.filters.f.settings)
    assert.same({ "a@x.io" }, a.to)
    assert.is_nil(a.filters.f.settings.y)
  end)

  it("is reachable as smtpkit.smtpapi", function()
    assert.equal(smtpapi, require("smtpkit").smtpapi)
  end)
end)
