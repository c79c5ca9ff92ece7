-- smtpkit.resty from an adversarial review, in real nginx (spec/support/nginx.lua)
-- against real servers (a Postfix with a recipient limit, aiosmtpd without
-- 8BITMIME): streamed bodies, 8-bit octets, too many recipients. Every
-- failure must come back as a result or nil, err: never raised.
local nginx = require "support.nginx"
local servers = require "support.servers"

-- The handler: /case?name=...&port=... runs one case and prints key=value lines.
local HANDLER = [=[
-- luacheck: globals ngx
local resty = require "smtpkit.resty"
local M = {}

local function iter(parts)
  local i = 0
  return function()
    i = i + 1
    return parts[i]
  end
end

local CASES = {}

-- a streamed 8-bit body: BODY=8BITMIME when offered, else a validation error
CASES.stream8 = function(port)
  return { from = "a@x.test", to = "eight@x.test",
    body = iter { "Subject: 8bit\r\n\r\n", "caf\195\169\r\n" } },
    { host = "127.0.0.1", port = port, tls = "none" }
end

-- a streamed 7-bit body
CASES.stream7 = function(port)
  return { from = "a@x.test", to = "seven@x.test",
    body = iter { "Subject: 7bit\r\n\r\n", "plain\r\n" } }, { host = "127.0.0.1", port = port, tls = "none" }
end

-- 1001 recipients: a validation error, nothing sent
CASES.many = function(port)
  local to = {}
  for i = 1, 1001 do to[i] = "r" .. i .. "@x.test" end
  return { from = "a@x.test", to = to, body = "x\r\n" }, { host = "127.0.0.1", port = port, tls = "none" }
end

-- 5 recipients against smtpd_recipient_limit = 2, one refused
CASES.limit = function(port)
  return { from = "lim@x.test", to = { "r1@x.test", "bad@x.test", "r2@x.test", "r3@x.test", "r4@x.test" },
    body = "Subject: lim\r\n\r\nhi\r\n" }, { host = "127.0.0.1", port = port, tls = "none" }
end

function M.handle()
  local args = ngx.req.get_uri_args()
  local msg, opts = CASES[args.name](tonumber(args.port))
  opts.pool = false
  local lines = {}
  opts.trace = function(line) lines[#lines + 1] = "trace=" .. line end
  local res, err = resty.send(opts, msg)
  local out = {}
  if res then
    out[#out + 1] = "ok=" .. tostring(res.ok)
    out[#out + 1] = "accepted=" .. tostring(res.accepted)
    for i, r in ipairs(res.recipients) do
      out[#out + 1] = ("rcpt%d=%s %s"):format(i, r.address, tostring(r.ok))
      out[#out + 1] = ("qid%d=%s"):format(i, tostring(r.queue_id))
    end
  end
  err = err or (res and res.error)
  if err then
    out[#out + 1] = "kind=" .. tostring(err.kind)
    out[#out + 1] = "message=" .. tostring(err):gsub("[\r\n]", " ")
  end
  for _, l in ipairs(lines) do out[#out + 1] = l end
  ngx.print(table.concat(out, "\n"), "\n")
end

-- /timeouts: resty.connect with a timeout of 0 or less raises (a mistake)
function M.timeouts()
  for _, v in ipairs { 0, -1 } do
    local ok, why = pcall(resty.connect, { host = "127.0.0.1", port = 9, tls = "none",
      timeouts = { greeting = v } })
    ngx.say("v", v, "=", tostring(ok), " ", tostring(why):gsub("[\r\n]", " "))
  end
end

return M
]=]

local function parse(text)
  local t, trace = {}, {}
  for line in (text or ""):gmatch("[^\n]+") do
    local k, v = line:match("^([^=]+)=(.*)$")
    if k == "trace" then trace[#trace + 1] = v elseif k then t[k] = v end
  end
  return t, trace
end

local function find_line(lines, pattern)
  for _, l in ipairs(lines) do
    if l:find(pattern) then return l end
  end
end


describe("smtpkit.resty (adversarial cases) in real nginx", function()
  local srv, pf, plain
  setup(function()
    srv = assert(nginx.start {
      server = [[
    location = /case { content_by_lua_block { require("handlers.extra").handle() } }
    location = /timeouts { content_by_lua_block { require("handlers.extra").timeouts() } }
]],
      files = { ["handlers/extra.lua"] = HANDLER },
      lua_path = "$prefix/?.lua",
    })
    pf = servers.postfix { open = true, main = table.concat({
      "smtpd_recipient_limit = 2",
      "smtpd_recipient_restrictions = reject_non_fqdn_recipient,"
        .. " check_recipient_access inline:{bad@x.test=REJECT}",
    }, "\n") }
    plain = servers.scripted { replies = { EHLO = "250-x\r\n250 PIPELINING" } }
  end)
  teardown(function()
    if srv then srv:stop() end
    servers.stop_all()
  end)
  after_each(function()
    assert.same({}, srv:raised())
  end)

  local function run(name, port)
    local status, text = srv:request("GET", "/case?name=" .. name .. "&port=" .. port)
    assert.equal(200, status, text)
    local r, trace = parse(text)
    return r, trace, text
  end

  it("a streamed 8-bit body goes with BODY=8BITMIME to Postfix", function()
    local r, trace, text = run("stream8", pf.port)
    assert.equal("true", r.ok, text)
    assert.truthy(find_line(trace, "^C: MAIL FROM:<a@x%.test> BODY=8BITMIME$"), text)
  end)

  it("a streamed 8-bit body to a server without 8BITMIME: validation, nothing delivered", function()
    local r, trace, text = run("stream8", plain.port)
    assert.equal("validation", r.kind, text)
    assert.truthy(r.message:find("8BITMIME", 1, true), text)
    assert.is_nil(find_line(trace, "^C: %.$"), text)
    local r2, _, text2 = run("stream7", plain.port)
    assert.equal("true", r2.ok, text2)
    require("socket").sleep(0.3)
    local msgs = plain:messages()
    assert.equal(1, #msgs)
    assert.same({ "seven@x.test" }, msgs[1].to)
  end)

  it("1001 recipients: a validation error returned, nothing sent", function()
    local r, trace, text = run("many", plain.port)
    assert.equal("validation", r.kind, text)
    assert.truthy(r.message:find("1001 recipients", 1, true), text)
    assert.is_nil(find_line(trace, "^S: 220"), text)   -- checked before connecting
  end)

  it("a timeout of 0 or less is a mistake: resty.connect raises", function()
    local status, text = srv:request("GET", "/timeouts")
    assert.equal(200, status, text)
    local r = parse(text)
    assert.truthy(r.v0:find("^false .*timeouts%.greeting"), text)
    assert.truthy(r["v-1"]:find("^false .*timeouts%.greeting"), text)
  end)

  it("5 recipients against a limit of 2 with one refused: each other one delivered once", function()
    local r, _, text = run("limit", pf.port)
    assert.equal("true", r.ok, text)
    assert.equal("4", r.accepted, text)
    assert.equal("bad@x.test false", r.rcpt2, text)
    assert.equal("nil", r.qid2, text)
    assert.are_not.equal("nil", r.qid1, text)
    assert.equal(r.qid1, r.qid3, text)
    assert.are_not.equal("nil", r.qid4, text)
    assert.are_not.equal(r.qid1, r.qid4, text)
    assert.equal(r.qid4, r.qid5, text)
    local seen = pf:wait_recipients("lim@x.test", 4)
    assert.same({ "r1@x.test", "r2@x.test", "r3@x.test", "r4@x.test" }, seen)
  end)
end)
