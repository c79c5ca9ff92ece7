-- smtpkit.envelope: the message preparation both clients (smtpkit.client,
-- smtpkit.resty) share. Pure Lua: these specs need no server.
local envelope = require "smtpkit.envelope"
local smtpkit = require "smtpkit"

local function drain(it)
  local out = {}
  for c in it do out[#out + 1] = c end
  return table.concat(out)
end

describe("smtpkit.envelope", function()
  it("loads without smtpkit.net or ngx (OpenResty loads it)", function()
    local src = assert(io.open("lua/smtpkit/envelope.lua")):read("*a")
    assert.is_nil(src:find("require%s*%(?%s*[\"']smtpkit%.net"))
    assert.is_nil(src:find("%f[%w_]ngx%."))

  end)

  it("is the one copy: neither client keeps its own header_lines, addr_list or X-SMTPAPI step", function()
    for _, f in ipairs { "lua/smtpkit/client.lua", "lua/smtpkit/resty.lua" } do
      local src = assert(io.open(f)):read("*a")
      assert.is_nil(src:find("function header_lines", 1, true), f)
      assert.is_nil(src:find("function addr_list", 1, true), f)
      assert.is_nil(src:find("smtpapi\").encode", 1, true), f)
      assert.truthy(src:find('require "smtpkit.envelope"', 1, true), f)
    end
  end)

  it("puts to, cc and bcc in the envelope and headers on top of the body", function()
    local env, body = assert(envelope.prepare { from = "a@example.com", to = "b@example.com",
      cc = { "c@example.com" }, bcc = { { address = "d@example.com", notify = "NEVER" } },
      headers = { { "Subject", "hi" }, { "X-A", "1" } }, body = "text\r\n" })
    assert.equal("a@example.com", env.from)
    assert.same({ "b@example.com", "c@example.com", { address = "d@example.com", notify = "NEVER" } },
      env.to)
    assert.equal("Subject: hi\r\nX-A: 1\r\n\r\ntext\r\n", body)
    assert.equal(#body, env.size)
    assert.is_nil(env.body_8bit)   -- a string: the transport scans it
  end)

  it("sorts a {Name = value} header table, and refuses names and values that could inject", function()
    local _, body = assert(envelope.prepare { from = "", to = "b@example.com",
      headers = { Subject = "s", From = "f" }, body = "" })
    assert.equal("From: f\r\nSubject: s\r\n\r\n", body)
    local r, err = envelope.prepare { to = "b@example.com", headers = { Subject = "x\r\nBcc: e@x" },
      body = "" }
    assert.is_nil(r)
    assert.equal("validation", err.kind)
    assert.matches("CR, LF or NUL", err.message)
    r, err = envelope.prepare { to = "b@example.com", headers = { ["Bad Name"] = "x" }, body = "" }
    assert.is_nil(r)
    assert.matches("invalid header name", tostring(err))
    -- a name with a line end is shown escaped: the message stays one line
    r, err = envelope.prepare { to = "b@example.com", headers = { { "X-A\r\nBcc", "x" } }, body = "" }
    assert.is_nil(r)
    assert.equal('invalid header name "X-A\\r\\nBcc"', err.message)
  end)

  it("validates and encodes X-SMTPAPI on top of the body, or refuses it with the problems", function()
    local _, body = assert(envelope.prepare { to = "b@example.com", body = "Subject: x\r\n\r\ny",
      smtpapi = { category = { "news" } } })
    assert.matches("^X%-SMTPAPI: .*news.*\r\nSubject: x\r\n\r\ny$", body)
    local r, err = envelope.prepare { to = "b@example.com", body = "x", smtpapi = "{not json" }
    assert.is_nil(r)
    assert.equal("validation", err.kind)
    assert.matches("^invalid X%-SMTPAPI header: ", err.message)
    assert.is_table(err.problems)
    -- the message names the JSON path and where, as the validator does
    r, err = envelope.prepare { to = "b@example.com", body = "x",
      smtpapi = '{"filters":{"clicktrack":{"settings":{"enable":2}}}}' }
    assert.is_nil(r)
    assert.matches("filters.clicktrack.settings.enable: must be 0 or 1 (line 1, column", err.message, 1, true)
  end)

  it("refuses a message without recipients; raises for wrong types", function()
    local r, err = envelope.prepare { from = "a@example.com", body = "x" }
    assert.is_nil(r)
    assert.equal("validation", err.kind)
    assert.has_error(function() envelope.prepare { to = "b@example.com", body = 42 } end)
    assert.has_error(function() envelope.prepare { to = 42, body = "x" } end)
    assert.has_error(function() envelope.prepare "x" end)
  end)

  it("gives a body again for another pass: strings, seekable files and composed messages", function()
    local _, body, again = envelope.prepare { to = "b@example.com", body = "abc", headers = { A = "1" } }
    assert.equal(body, again())
    local env
    local f = io.tmpfile()
    f:write("0123456789")
    f:seek("set", 2)
    env, body, again = envelope.prepare { to = "b@example.com", body = f }
    assert.is_nil(env.body_8bit)   -- a stream: not known (the transport decides)
    assert.equal("23456789", drain(envelope.chunks(body)))
    assert.equal("23456789", drain(envelope.chunks(again())))
    f:close()
    -- an iterator after a header prefix: once only, and the source says so
    local parts, i = { "a", "b" }, 0
    _, body, again = envelope.prepare { to = "b@example.com", headers = { A = "1" },
      body = function() i = i + 1 return parts[i] end }
    assert.is_nil(again)
    local src = envelope.source(body, again)
    assert.equal("A: 1\r\n\r\nab", drain(src()))
    local it2, why = src()
    assert.is_nil(it2)
    assert.matches("only once", why)
    -- a composed message: its size and 8-bit flag, rendered afresh each pass
    local msg = assert(smtpkit.message.new { from = "a@example.com", to = "b@example.com",
      subject = "s", text = "hello" })
    env, body, again = envelope.prepare(msg)
    assert.equal(msg:size(), env.size)
    assert.is_false(env.body_8bit)
    src = envelope.source(body, again)
    assert.equal(msg:render(), drain(src()))
    assert.equal(msg:render(), drain(src()))
  end)
end)
