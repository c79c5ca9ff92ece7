-- X-SMTPAPI: the adversarial cases of an independent review (issue 3), on
-- top of spec/smtpapi_spec.lua: every documented key with wrong types, the
-- limits at their edges, typos, hostile headers, line/column after folds,
-- bare CR, name_len extremes, folding and round trips of random values, and
-- the builder's string conversions.
local smtpapi = require "smtpkit.smtpapi"

local check = require "support.smtpapi_check"
local NOW, opts = check.NOW, check.opts
local find, fails, warns = check.find, check.fails, check.warns

local function addresses(n)
  local t = {}
  for i = 1, n do t[i] = ('"u%d@example.com"'):format(i) end
  return "[" .. table.concat(t, ",") .. "]"
end

-- Deep equality of decoded values (smtpapi.null and array marks aside).
local function same(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

-- The longest JSON string token of a line, and the count of other bytes.
local function string_tokens(line)
  local longest, rest, i = 0, 0, 1
  while i <= #line do
    if line:sub(i, i) == '"' then
      local j = i + 1
      while line:sub(j, j) ~= '"' do j = j + (line:sub(j, j) == "\\" and 2 or 1) end
      local len = j - i + 1
      if len > longest then
        rest = rest + longest
        longest = len
      else
        rest = rest + len
      end
      i = j + 1
    else
      rest = rest + 1
      i = i + 1
    end
  end
  return longest, rest
end

describe("smtpapi (review)", function()
  describe("every documented key with a wrong type is an error at its path", function()
    local wrong = {
      { "to", { '1', '"a@b.c"', '{}', 'true', 'null', '[1]', '[[]]' } },
      { "sub", { '[]', '"x"', '1', '{"-a-":"x"}', '{"-a-":[1]}', '{"-a-":{}}' } },
      { "section", { '[]', '"x"', '{"-a-":1}', '{"-a-":["x"]}' } },
      { "category", { '1', '{}', 'true', '[1]', '[["x"]]', 'null' } },
      { "unique_args", { '[]', '"x"', '1', '{"k":1}', '{"k":true}', '{"k":null}', '{"k":{}}' } },
      { "filters", { '[]', '"x"', '1', '{"clicktrack":1}', '{"clicktrack":{"settings":1}}',
        '{"clicktrack":{"settings":[]}}', '{"clicktrack":{}}' } },
      { "send_at", { '"1776384000"', '1776384000.5', '1.7e9', '[]', 'true', '-1', 'null' } },
      { "send_each_at", { '1776384000', '"x"', '{}', '["1776384000"]', '[1.5]' } },
      { "batch_id", { '1', '[]', '{}', '""', 'true' } },
      { "asm_group_id", { '"1"', '1.5', '0', '-3', '[]', 'true' } },
      { "asm_groups_to_display", { '1', '"1"', '{}', '["1"]', '[1.5]', '[0]' } },
      { "ip_pool", { '1', '[]', '""', 'false' } },
    }
    for _, case in ipairs(wrong) do
      for _, v in ipairs(case[2]) do
        it(case[1] .. " = " .. v, function()
          local ok, problems = smtpapi.validate(('{"%s":%s}'):format(case[1], v), opts)
          assert.is_nil(ok)
          local hit = false
          for _, p in ipairs(problems) do
            if p.severity == "error" and (p.path == case[1] or p.path:sub(1, #case[1] + 1) == case[1] .. "."
                or p.path:sub(1, #case[1] + 1) == case[1] .. "[") then
              hit = true
            end
          end
          assert(hit, tostring(problems))
        end)
      end
    end
  end)

  describe("limits at their edges", function()
    it("to: 1,000 clean, 1,001 warns, 10,000 warns, 10,001 fails", function()
      local ok, w = smtpapi.validate('{"to":' .. addresses(1000) .. '}', opts)
      assert.is_true(ok)
      assert.equal(0, #w)
      warns('{"to":' .. addresses(1001) .. '}', "to", "1,000")
      warns('{"to":' .. addresses(10000) .. '}', "to", "1,000")
      fails('{"to":' .. addresses(10001) .. '}', "to", "10,000")
    end)

    it("category: 10 pass, 11 fail", function()
      local ten = {}
      for i = 1, 10 do ten[i] = '"c' .. i .. '"' end
      assert.is_true((smtpapi.validate('{"category":[' .. table.concat(ten, ",") .. ']}', opts)))
      fails('{"category":[' .. table.concat(ten, ",") .. ',"c11"]}', "category", "10")
    end)

    it("unique_args: 10,000 bytes pass, 10,001 fail", function()
      -- {"k":"..."}: 2 + 3 + 1 + 2 + n bytes
      local n = 10000 - 8
      assert.is_true((smtpapi.validate('{"unique_args":{"k":"' .. ("x"):rep(n) .. '"}}', opts)))
      fails('{"unique_args":{"k":"' .. ("x"):rep(n + 1) .. '"}}', "unique_args", "10,000 bytes")
    end)

    it("asm_groups_to_display: 25 pass, 26 fail", function()
      local g = {}
      for i = 1, 26 do g[i] = tostring(i) end
      local ok = smtpapi.validate('{"asm_groups_to_display":[' .. table.concat(g, ",", 1, 25) .. ']}', opts)
      assert.is_true(ok)
      fails('{"asm_groups_to_display":[' .. table.concat(g, ",") .. ']}', "asm_groups_to_display", "25")
    end)

    it("send_at: 72 h ahead passes, 72 h + 1 s fails, milliseconds and floats fail", function()
      assert.is_true((smtpapi.validate(('{"send_at":%d}'):format(NOW + 72 * 3600), opts)))
      fails(('{"send_at":%d}'):format(NOW + 72 * 3600 + 1), "send_at", "72 hours")
      fails(('{"send_at":%d}'):format(NOW * 1000), "send_at", "milliseconds")
      fails(('{"send_at":%d.0}'):format(NOW), "send_at", "integer")
      -- the horizon follows opts.now
      assert.is_nil((smtpapi.validate(('{"send_at":%d}'):format(NOW + 73 * 3600), opts)))
      assert.is_true((smtpapi.validate(('{"send_at":%d}'):format(NOW + 73 * 3600),
        { now = NOW + 3600 })))
    end)

    it("send_at with send_each_at, and send_each_at/sub shorter or longer than to", function()
      fails(('{"to":["a@b.c"],"send_at":%d,"send_each_at":[%d]}'):format(NOW, NOW), "send_at", "both")
      fails(('{"to":["a@b.c","d@e.f"],"send_each_at":[%d]}'):format(NOW), "send_each_at", "one per")
      fails(('{"to":["a@b.c"],"send_each_at":[%d,%d]}'):format(NOW, NOW), "send_each_at", "one per")
      fails('{"to":["a@b.c","d@e.f"],"sub":{"-n-":["x"]}}', 'sub["-n-"]', "one per")
      fails('{"to":["a@b.c"],"sub":{"-n-":["x","y"]}}', 'sub["-n-"]', "one per")
      fails(('{"to":["a@b.c"],"send_each_at":[%d]}'):format(NOW * 1000), "send_each_at[0]", "milliseconds")
    end)
  end)

  describe("filters", function()
    local bad = {
      { '{"clicktrack":{"settings":{"enable":2}}}', "filters.clicktrack.settings.enable", "error" },
      { '{"clicktrack":{"settings":{"enable":-1}}}', "filters.clicktrack.settings.enable", "error" },
      { '{"clicktrack":{"settings":{"enable":"yes"}}}', "filters.clicktrack.settings.enable", "error" },
      { '{"clicktrack":{"settings":{"enable":"1"}}}', "filters.clicktrack.settings.enable", "warning" },
      { '{"clicktrack":{"settings":{"enable":true}}}', "filters.clicktrack.settings.enable", "warning" },
      { '{"clicktrack":{"settings":{"enable":1,"enable_text":1}}}',
        "filters.clicktrack.settings.enable_text", "warning" },
      { '{"clicktrack":{"settings":{"enable":1,"enable_text":"true"}}}',
        "filters.clicktrack.settings.enable_text", "error" },
      { '{"footer":{"settings":{"enable":1,"text/html":1}}}',
        'filters.footer.settings["text/html"]', "error" },
      { '{"ganalytics":{"settings":{"enable":1,"utm_source":[]}}}',
        "filters.ganalytics.settings.utm_source", "error" },
      { '{"opentrack":{"settings":{"enable":0,"replace":0}}}',
        "filters.opentrack.settings.replace", "error" },
      { '{"templates":{"settings":{"enable":1,"template_id":"d-1234"}}}',
        "filters.templates.settings.template_id", "error" },
      { '{"subscriptiontrack":{"settings":{"enable":1,"landing":"x"}}}',
        "filters.subscriptiontrack.settings.landing", "warning" },
      { '{"dkim":{"settings":{"domain":1}}}', "filters.dkim.settings.domain", "error" },
      { '{"ClickTrack":{"settings":{"enable":1}}}', "filters.ClickTrack", "error" },
      { '{"clicktrack":{"settings":{"Enable":1}}}', "filters.clicktrack.settings.Enable", "error" },
    }
    for _, case in ipairs(bad) do
      it(case[3] .. " at " .. case[2], function()
        local text = '{"filters":' .. case[1] .. '}'
        if case[3] == "error" then fails(text, case[2]) else warns(text, case[2]) end
      end)
    end

    it("removed and legacy filters warn by name", function()
      for _, f in ipairs { "bcc", "spamcheck", "gravatar", "domainkeys", "forwardspam", "template" } do
        warns('{"filters":{"' .. f .. '":{"settings":{"enable":1}}}}', "filters." .. f, f)
      end
    end)

    it("typos name what was meant", function()
      warns('{"categroy":"x"}', "categroy", '"category"')
      warns('{"filter":{}}', "filter", '"filters"')
      warns('{"unique_arg":{}}', "unique_arg", '"unique_args"')
      warns('{"filters":{"clicktrak":{"settings":{"enable":1}}}}', "filters.clicktrak", '"clicktrack"')
      warns('{"filters":{"clicktrack":{"settings":{"enabled":1}}}}',
        "filters.clicktrack.settings.enabled", '"enable"')
      local _, problems = fails('{"filters":{"clicktrack":{"setting":{"enable":1}}}}', "filters.clicktrack")
      local w = find(problems, "filters.clicktrack.setting", "warning")
      assert(w and w.message:find('"settings"', 1, true), tostring(problems))
    end)

    it("finds a duplicate key however deep", function()
      fails('{"filters":{"clicktrack":{"settings":{"enable":1,"enable":0}}}}',
        "filters.clicktrack.settings.enable", "duplicate")
      fails('{"filters":{"clicktrack":{"settings":{"enable":1},"settings":{"enable":0}}}}',
        "filters.clicktrack.settings", "duplicate")
      -- the same key written two ways
      fails('{"unique_args":{"a":"1","\\u0061":"2"}}', "unique_args.a", "duplicate")
    end)
  end)

  describe("text of the header", function()
    it("refuses raw UTF-8 and control bytes in strings, with line and column", function()
      local p = fails('{"category":"caf\195\169"}', "category", "non-ASCII")
      assert.same({ 1, 17 }, { p.line, p.column })
      p = fails('{"category":"a\1b"}', "category", "control character")
      assert.same({ 1, 15 }, { p.line, p.column })
      fails('{"category":"a\tb"}', "category", "control character")
    end)

    it("refuses a bare CR, which a relay takes for a line end (review fix)", function()
      local p = fails('X-SMTPAPI: {"to":\r["a@b.c"]}', "", "carriage return")
      assert.same({ 1, 18 }, { p.line, p.column })
      p = fails('X-SMTPAPI: {"to":\r\n ["a@b.c",\r"d@e.f"]}', "", "carriage return")
      assert.same({ 2, 11 }, { p.line, p.column })
      fails('{"to":["a@b.c"]\r}', "", "carriage return")
      -- CRLF folds stay fine, and encode takes JSON text with CR as white space
      assert.is_true((smtpapi.validate('X-SMTPAPI: {"to":\r\n ["a@b.c"]}\r\n', opts)))
      assert.equal('{"to":["a@b.c"]}', (smtpapi.encode('{"to":\r["a@b.c"]}', opts)))
    end)

    it("gives line and column counted in the text as given (name, folds)", function()
      local p = fails('X-SMTPAPI: {"to" 1,\r\n "x":1}', "to", "':'")
      assert.same({ 1, 18 }, { p.line, p.column })
      p = fails('X-SMTPAPI:\r\n {"to" 1}', "to", "':'")
      assert.same({ 2, 8 }, { p.line, p.column })
      p = fails('x-smtpapi:{"to":["a@b.c",\n\t"x" "y"]}', "to[1]", "',' or ']'")
      assert.same({ 2, 6 }, { p.line, p.column })
      assert.truthy(p.excerpt:find('"x" "y"', 1, true))
    end)

    it("refuses non-objects, empty text and trailing garbage", function()
      for _, t in ipairs { "[]", '"x"', "1", "true", "null" } do fails(t, "", "JSON object") end
      fails("", "", "empty")
      fails("X-SMTPAPI:   ", "", "empty")
      local p = fails('{"to":["a@b.c"]} x', "", "after the end")
      assert.same({ 1, 18 }, { p.line, p.column })
      fails("{}{}", "", "after the end")
    end)

    it("refuses control characters in a to address, which SendGrid writes into a To header (review fix)",
      function()
        fails('{"to":["a@b.c","x@y.z\\r\\nBcc: all@example.com"]}', "to[1]", "control character")
        fails('{"to":["Jo\\tDoe <a@b.c>"]}', "to[0]", "control character")
        local h, problems = smtpapi.new():add_to("a@example.com", "Evil\r\nBcc: x@y.z"):header(opts)
        assert.is_nil(h)
        assert.equal("to[0]", problems[1].path)
      end)

    it("refuses lone surrogates and \\u0000 in escapes", function()
      fails('{"category":"\\ud800"}', "category", "surrogate")
      fails('{"category":"\\udc00x"}', "category", "surrogate")
      fails('{"category":"\\ud83d\\u0041"}', "category", "surrogate")
      fails('{"category":"a\\u0000"}', "category", "NUL")
    end)

    it("refuses 1 MB hostile headers cleanly", function()
      local deep = ("["):rep(100000) .. ("]"):rep(100000)
      local ok, problems = smtpapi.validate(deep, opts)
      assert.is_nil(ok)
      assert.truthy(tostring(problems):find("deeper than 32", 1, true))
      ok = smtpapi.validate(('{"a":'):rep(100000) .. "1" .. ("}"):rep(100000), opts)
      assert.is_nil(ok)
      local keys = {}
      for i = 1, 200000 do keys[i] = ('"k%d":1'):format(i) end
      ok, problems = smtpapi.validate("{" .. table.concat(keys, ",") .. "}", opts)
      assert.is_true(ok)
      assert.equal(100, #problems) -- kept; the rest counted
      assert.equal(200000, problems.warnings)
      for i = 1, 200000 do keys[i] = '"k":1' end
      ok, problems = smtpapi.validate("{" .. table.concat(keys, ",") .. "}", opts)
      assert.is_nil(ok)
      assert.equal(199999, problems.errors)
      ok = smtpapi.validate('{"category":"' .. ("a"):rep(4 * 1024 * 1024) .. '"}', opts)
      assert.is_nil(ok)
    end)
  end)

  describe("encode", function()
    it("escapes beyond the basic plane as surrogate pairs and decodes back", function()
      local v = { category = "😀 café 請求書 \u{10FFFF}" }
      local h = assert(smtpapi.encode(v, opts))
      assert.truthy(h:find("\\ud83d\\ude00", 1, true))
      assert.truthy(h:find("\\udbff\\udfff", 1, true))
      assert.is_nil(h:find("[\128-\255]"))
      assert.equal(v.category, smtpapi.decode(h, opts).category)
    end)

    it("names a single token too long to fold", function()
      local h, problems = smtpapi.encode({ unique_args = { note = ("x"):rep(1000) } }, opts)
      assert.is_nil(h)
      assert.equal("unique_args.note", problems[1].path)
      assert.truthy(problems[1].message:find("too long", 1, true))
      assert.truthy((smtpapi.encode({ unique_args = { note = ("x"):rep(980) } }, opts)))
    end)

    it("folds a random mix of values between tokens; unfolding gives the same value", function()
      math.randomseed(42)
      local pieces = { "a", " ", "  ", '"', "\\", "/", "\n", "\t", "é", "請", "😀", "\u{2028}",
        ",", ":", "{", "]", "%" }
      local function rs(n)
        local t = {}
        for i = 1, math.random(0, n) do t[i] = pieces[math.random(#pieces)] end
        return table.concat(t)
      end
      for _ = 1, 300 do
        local to, names = {}, {}
        for i = 1, math.random(1, 30) do
          to[i] = "u" .. i .. "@example.com"
          names[i] = rs(60)
        end
        local v = { to = to, sub = { ["-name-"] = names }, category = { rs(10) },
          unique_args = { [rs(5) .. "k"] = rs(200) } }
        local name_len = math.random(0, 60)
        local h = assert(smtpapi.encode(v, { now = NOW, name_len = name_len }))
        assert.is_nil(h:find("[^\32-\126\r\n]"))
        assert.is_nil(h:find("\r\n[^ ]"))
        local first = true
        for line in (h .. "\r\n"):gmatch("(.-)\r\n") do
          local len = #line + (first and (name_len == 0 and 11 or name_len) or 0)
          assert(len <= 998)
          if len > 78 and not first then
            -- only a string token (plus its punctuation) too long to share a line
            local longest, rest = string_tokens(line:gsub("^ ", ""))
            assert(rest <= 6 and longest + rest > 77, line)
          end
          first = false
        end
        local back = assert(smtpapi.decode((h:gsub("\r\n ", " ")), opts))
        assert(same(back, assert(smtpapi.decode(assert(smtpapi.to_json(v)), opts))))
        assert.is_true((smtpapi.validate("X-SMTPAPI: " .. h, opts)))
      end
    end)

    it("folds the first token when a long header name leaves no room (review fix)", function()
      local v = { to = { "a@example.com" } }
      for _, n in ipairs { 0, 1, 78, 997, 998 } do
        local h = assert(smtpapi.encode(v, { now = NOW, name_len = n }))
        local first = h:match("^[^\r]*")
        assert((n == 0 and 11 or n) + #first <= 998, n)
        assert.same(v, (smtpapi.decode((h:gsub("\r\n ", " ")), opts)))
      end
      assert.has_error(function() smtpapi.encode(v, { now = NOW, name_len = -1 }) end)
      assert.has_error(function() smtpapi.encode(v, { now = NOW, name_len = 999 }) end)
    end)
  end)

  describe("builder", function()
    it("has the method names of the issue", function()
      local b = smtpapi.new()
      for _, m in ipairs { "add_to", "set_tos", "add_substitution", "set_substitutions", "add_section",
        "add_category", "set_categories", "add_unique_arg", "set_unique_args", "add_filter",
        "set_filters", "set_send_at", "set_send_each_at", "add_send_each_at", "set_batch_id",
        "set_asm_group_id", "set_asm_groups_to_display", "set_ip_pool", "json", "header" } do
        assert.equal("function", type(b[m]), m)
      end
    end)

    it("writes numbers given as unique args and substitutions as strings (review fix)", function()
      local b = smtpapi.new():add_to("a@example.com"):add_to("b@example.com")
        :add_unique_arg("id", 42):add_unique_arg("flag", true)
        :add_substitution("-n-", 1):add_substitution("-n-", 2.0)
      assert.equal('{"sub":{"-n-":["1","2"]},"to":["a@example.com","b@example.com"],'
        .. '"unique_args":{"flag":"true","id":"42"}}', b:json())
      assert.truthy((b:header(opts)))
    end)

    it("writes an empty substitution list as an array (review fix)", function()
      assert.equal('{"sub":{"-x-":[]}}', smtpapi.new():set_substitutions({ ["-x-"] = {} }):json())
    end)

    it("merges templates deterministically and validates the result", function()
      local a = assert(smtpapi.compose({ "disable_click_tracking", { "categories", { "a" } },
        { "schedule", NOW + 60 }, { category = "b" } }, opts))
      local b = assert(smtpapi.compose({ "disable_click_tracking", { "categories", { "a" } },
        { "schedule", NOW + 60 }, { category = "b" } }, opts))
      assert.equal(smtpapi.to_json(a), smtpapi.to_json(b))
      assert.same({ "a", "b" }, a.category) -- a scalar joins a list
      -- later scalars win
      local c = assert(smtpapi.compose({ { "schedule", NOW + 60 }, { "schedule", NOW + 120 } }, opts))
      assert.equal(NOW + 120, c.send_at)
      -- lists append, and the result is validated: 11 categories fail
      local parts = {}
      for i = 1, 11 do parts[i] = { "categories", "c" .. i } end
      local none, problems = smtpapi.compose(parts, opts)
      assert.is_nil(none)
      assert.equal("category", problems[1].path)
      -- send_at merged with send_each_at is refused
      none = smtpapi.compose({ { "schedule", NOW + 60 }, { "schedule", { NOW + 60 } },
        { to = { "a@b.c" } } }, opts)
      assert.is_nil(none)
    end)

    it("two mail merges keep to and sub aligned", function()
      local h = smtpapi.new()
        :apply("mail_merge", { { email = "a@x.io", first = "A" } }, { "first" })
        :apply("mail_merge", { { email = "b@x.io", first = "B" }, { email = "c@x.io" } }, { "first" })
      local t = h:table()
      assert.same({ "a@x.io", "b@x.io", "c@x.io" }, t.to)
      assert.same({ "A", "B", "" }, t.sub["-first-"])
      assert.truthy((h:header(opts)))
    end)
  end)
end)
