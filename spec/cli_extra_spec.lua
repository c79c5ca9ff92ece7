-- The smtpkit command, adversarial cases: CSV edge cases (BOM, CRLF, empty
-- lines, a header only), the rate limit and the one reused connection counted
-- at a real smtp-sink, --json parsed for every subcommand, no password flag,
-- and the demo twice in a row leaving nothing behind.
local servers = require "support.servers"
local json = require "dkjson"
local socket = require "socket"

local cli = require "support.cli_run"
local q, slurp, spit = servers.q, servers.read_file, servers.write_file
local tmp, smtpkit, lines = cli.tmp, cli.run, cli.lines
-- (stdout is not checked here: some of these print their --json document too)
local function assert_one_line(r, code, pattern)
  return cli.assert_one_line(r, code, pattern, { stdout = true })
end

-- Every line of stdout is a JSON document (or the whole of it is one).
local function assert_json(r)
  local whole = json.decode(r.out)
  if whole ~= nil and not r.out:find("\n.", 1) then return { whole } end
  local docs = {}
  for _, l in ipairs(lines(r.out)) do
    local d, _, e = json.decode(l)
    assert(d ~= nil, "not JSON: " .. l .. " (" .. tostring(e) .. ")")
    docs[#docs + 1] = d
  end
  assert.is_true(#docs > 0, "no JSON on stdout; stderr: " .. r.err)
  return docs
end

teardown(function() servers.stop_all() end)

local TEMPLATE = "From: Team <team@x.test>\nSubject: Hi {{name}}\n\nHello {{name}}.\n"

describe("smtpkit bulk CSV edge cases", function()
  it("refuses a CSV with a header row only: one line, exit 3", function()
    local tpl = spit(tmp() .. "/t1.txt", TEMPLATE)
    for i, text in ipairs{ "email,name\n", "email,name\r\n\r\n", "\239\187\191email,name" } do
      local csv = spit(tmp() .. "/hdr" .. i .. ".csv", text)
      local r = smtpkit({ "bulk", csv, "--template", tpl, "--outbox", tmp() .. "/ob-hdr" })
      assert_one_line(r, 3, "no rows after the header")
      assert.are.equal("", r.out)
    end
  end)

  it("reads a BOM, CRLF line ends, empty lines and quoted fields", function()
    local csv = spit(tmp() .. "/bom.csv", "\239\187\191email,name\r\n\r\nann@x.test,\"Ann, \"\"A\"\"\"\r\n"
      .. "\r\nbob@x.test,\"Bob\r\nB.\"\r\n")
    local tpl = spit(tmp() .. "/t2c.txt", "From: Team <team@x.test>\nSubject: Hi\n\nHello {{name}}.\n")
    local r = smtpkit({ "bulk", csv, "--template", tpl, "--json", "--outbox", tmp() .. "/ob-bom" })
    assert.are.equal(0, r.code, r.err)
    local docs = assert_json(r)
    assert.are.equal(3, #docs)
    assert.are.equal("ann@x.test", docs[1].address)
    assert.are.equal("bob@x.test", docs[2].address)
    assert.are.equal(2, docs[3].summary.total)
    local eml = assert(slurp(docs[1].written))
    assert.truthy(eml:find("Hello Ann, \"A\"%."), eml)
    assert.truthy(assert(slurp(docs[2].written)):find("Hello Bob\r?\nB%."))
  end)

  it("refuses a field with a line break used in a header before sending anything", function()
    local tpl = spit(tmp() .. "/t2b.txt", TEMPLATE)
    local csv = spit(tmp() .. "/nl.csv",
      "email,name\r\nann@x.test,Ann\r\nbob@x.test,\"Bob\r\nBcc: evil@x.test\"\r\n")
    local dir = tmp() .. "/ob-nl"
    local r = smtpkit({ "bulk", csv, "--template", tpl, "--outbox", dir })
    assert_one_line(r, 3, "nl%.csv:3: .*Subject")
    assert.are.equal("", (servers.sh("(ls -A " .. q(dir) .. ") 2>/dev/null; true")))
  end)
end)

describe("smtpkit bulk against smtp-sink", function()
  -- smtp-sink -c prints "sess=N quit=N mesg=N" counters: sessions begun,
  -- QUITs, messages
  local function counters(srv)
    local log = slurp(srv.dir .. "/sink.log") or ""
    local last = { sess = 0, quit = 0, mesg = 0 }
    for s, qu, m in log:gmatch("sess=(%d+) quit=(%d+) mesg=(%d+)") do
      last = { sess = tonumber(s), quit = tonumber(qu), mesg = tonumber(m) }
    end
    return last
  end

  it("honours --rate over N messages on one reused connection, with progress lines", function()
    local srv = servers.smtp_sink()
    socket.sleep(0.3)                        -- the harness's readiness probe is counted
    local before = counters(srv)
    local n, rate = 6, 5
    local rows = { "email,name" }
    for i = 1, n do rows[#rows + 1] = ("r%d@x.test,N%d"):format(i, i) end
    local csv = spit(tmp() .. "/rate.csv", table.concat(rows, "\n") .. "\n")
    local tpl = spit(tmp() .. "/t3.txt", TEMPLATE)
    local t0 = socket.gettime()
    local r = smtpkit({ "bulk", csv, "--template", tpl, "--server", "127.0.0.1:" .. srv.port,
      "--tls", "none", "--rate", tostring(rate), "--outbox", tmp() .. "/ob-rate" })
    local elapsed = socket.gettime() - t0
    assert.are.equal(0, r.code, r.out .. r.err)
    assert.is_true(elapsed >= (n - 1) / rate, ("%d messages at %d/s took %.3f s"):format(n, rate, elapsed))
    local prog = lines(r.err)
    assert.are.equal(n, #prog, r.err)
    for i, l in ipairs(prog) do
      assert.truthy(l:find(("^bulk: %d/%d r%d@x%%.test: delivered"):format(i, n, i)), l)
    end
    assert.truthy(r.out:find(n .. " messages: " .. n .. " delivered"), r.out)
    local after
    for _ = 1, 50 do
      after = counters(srv)
      if after.quit > before.quit then break end
      socket.sleep(0.05)
    end
    assert.are.equal(n, after.mesg - before.mesg)
    assert.are.equal(1, after.quit - before.quit, "one SMTP session for the whole batch")
    assert.are.equal(1, after.sess - before.sess, "one connection for the whole batch")
  end)
end)

describe("smtpkit bulk --rate 0 (send_many batches)", function()
  it("sends every row, a refused message among them, each once", function()
    local n = 230   -- more than one batch of 100
    local srv = servers.scripted { replies = { ["EOD 120"] = "554 5.6.0 message content rejected" } }
    local rows = { "email,name" }
    for i = 1, n do rows[#rows + 1] = ("r%d@x.test,N%d"):format(i, i) end
    local csv = spit(tmp() .. "/fast.csv", table.concat(rows, "\n") .. "\n")
    local tpl = spit(tmp() .. "/t4.txt", TEMPLATE)
    local r = smtpkit({ "bulk", csv, "--template", tpl, "--server", "127.0.0.1:" .. srv.port,
      "--tls", "none", "--rate", "0", "--json", "--outbox", tmp() .. "/ob-fast" })
    assert.are.equal(1, r.code, r.err)   -- one refused
    local docs = assert_json(r)
    assert.are.equal(n + 1, #docs)
    for i = 1, n do
      assert.are.equal(("r%d@x.test"):format(i), docs[i].address)
      if i == 120 then
        assert.are.equal(554, docs[i].code)
        assert.are_not.equal("delivered", docs[i].outcome)
      else
        assert.are.equal("delivered", docs[i].outcome, "row " .. i)
      end
    end
    assert.are.equal(n - 1, docs[n + 1].summary.delivered)
    assert.are.equal(1, docs[n + 1].summary.failed)
    local got = srv:wait_messages(n - 1)
    assert.are.equal(n - 1, #got)
    local seen = {}
    for _, m in ipairs(got) do
      local who = m.data:match("Hello (N%d+)%.")
      assert.is_nil(seen[who], who)
      seen[who] = true
    end
    assert.is_nil(seen.N120)
  end)
end)

describe("smtpkit --json", function()
  it("prints valid JSON from every subcommand, errors included", function()
    local dir = tmp() .. "/ob-json"
    local good = spit(tmp() .. "/good.json", '{"category": ["a"]}')
    local bad = spit(tmp() .. "/bad.json", '{"category": [1,')
    local cases = {
      { { "classify", "--json", "550 5.1.1 User unknown", "421 4.7.0 Try later" }, 0 },
      { { "classify", "--json" }, 0, "250 2.0.0 Ok\n452 4.5.3 Too many recipients\n" },
      { { "check-header", "--json", good }, 0 },
      { { "check-header", "--json", bad }, 1 },
      { { "send", "--json", "--from", "a@x.test", "--to", "b@x.test", "--text", "hi", "--outbox", dir }, 0 },
      { { "send", "--json", "--from", "a@x.test", "--to", "b@x.test", "--text", "hi",
        "--server", "127.0.0.1:" .. servers.free_port(), "--tls", "none", "--outbox", dir }, 4 },
      { { "send", "--json", "--from", "a@x.test", "--to", "b@x.test", "--attach", "/nonexistent/x" }, 3 },
      { { "outbox", "list", "--json", "--outbox", dir }, 0 },
      { { "outbox", "show", "nope", "--json", "--outbox", dir }, 3 },
      { { "outbox", "run", "--json", "--server", "127.0.0.1:" .. servers.free_port(), "--tls", "none",
        "--outbox", dir }, 0 },
      { { "demo", "--json", "--classify-only" }, 0 },
    }
    for _, c in ipairs(cases) do
      local r = smtpkit(c[1], { stdin = c[3] })
      assert.are.equal(c[2], r.code, table.concat(c[1], " ") .. "\n" .. r.out .. r.err)
      local docs = assert_json(r)
      if c[2] >= 2 then
        assert.is_table(docs[1].error, r.out)
        assert.are.equal(c[2], docs[1].error.exit)
      end
    end
  end)
end)

describe("smtpkit passwords", function()
  it("has no --password option: refused with one line, exit 2, value not echoed", function()
    local r = smtpkit({ "send", "--password", "s3cret-value", "--from", "a@x.test", "--to", "b@x.test" })
    assert_one_line(r, 2, "%-%-password")
    assert.is_nil((r.out .. r.err):find("s3cret%-value"))
    local h = smtpkit({ "send", "--help" })
    assert.is_nil(h.out:find("%-%-password"), "send --help offers --password")
  end)
end)

describe("smtpkit demo, twice in a row", function()
  it("exits 0 both times, in $TMPDIR, and leaves no process and no file behind", function()
    local base = servers.tmpdir() .. "/demo-tmp"
    assert(os.execute("mkdir -p " .. q(base)))
    for _ = 1, 2 do
      local r = smtpkit({ "demo", "--json" }, { env = { TMPDIR = base } })
      assert.are.equal(0, r.code, r.out .. r.err)
      local doc = assert(json.decode(r.out))
      assert.are.equal(base .. "/", doc.server.dir:sub(1, #base + 1))
      local _, alive = servers.sh("kill -0 " .. doc.server.pid .. " 2>/dev/null")
      assert.is_false(alive, "demo server process gone")
      assert.are.equal("", (servers.sh("ls -A " .. q(base))))
    end
  end)
end)

describe("smtpkit outbox exit codes", function()
  it("exits 7 when another runner holds the outbox (messages wait), 3 when it is no directory", function()
    local dir = servers.tmpdir() .. "/ob-locked"
    local ob = assert(require("smtpkit.outbox").open(dir))
    assert(ob:submit{ from = "a@x.test", to = "b@x.test", body = "Subject: s\r\n\r\nb\r\n" })
    local lock = assert(ob.store:lock())
    local r = smtpkit({ "outbox", "run", "--server", "127.0.0.1:" .. servers.free_port(), "--tls", "none",
      "--outbox", dir })
    lock:unlock()
    assert_one_line(r, 7, "locked")
    assert.are.equal("queued", ob:list()[1].state)
    local file = spit(tmp() .. "/not-a-dir", "x")
    assert_one_line(smtpkit({ "outbox", "list", "--outbox", file }), 3, "not%-a%-dir")
  end)
end)

describe("smtpkit --json with 8-bit server text", function()
  it("prints UTF-8 that a strict parser reads: invalid bytes become U+FFFD", function()
    local reply = "550 5.1.1 caf\233 \195\169 \237\160\128 \240\159\152\128 unknown \195"
    local r = smtpkit({ "classify", "--json", reply })
    assert.are.equal(0, r.code, r.err)
    local path = spit(tmp() .. "/latin1.json", r.out)
    local out, ok = servers.sh("/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1],\"rb\"));"
      .. " sys.stdout.buffer.write(d[0][\"text\"].encode())' " .. q(path))
    assert.is_true(ok, out)
    assert.are.equal("caf\239\191\189 \195\169 \239\191\189\239\191\189\239\191\189 \240\159\152\128"
      .. " unknown \239\191\189", out)
  end)
end)

describe("smtpkit outbox list with a damaged record file", function()
  it("lists the good records and warns about the damaged file on stderr", function()
    local dir = servers.tmpdir() .. "/ob-damaged"
    local ob = assert(require("smtpkit.outbox").open(dir))
    local id = assert(ob:submit{ from = "a@x.test", to = "b@x.test", body = "Subject: s\r\n\r\nb\r\n" })
    spit(dir .. "/msg/0000000001-000001-dead", "smtpkit-outbox 1\n{\"state\":\"queued\",\"due\":\"x\"}\n")
    local r = smtpkit({ "outbox", "list", "--outbox", dir })
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.out:find(id, 1, true), r.out)
    assert_one_line(r, 0, "0000000001%-000001%-dead is not a readable record")
    local j = smtpkit({ "outbox", "list", "--json", "--outbox", dir })
    local doc = assert(json.decode(j.out))
    assert.are.equal(1, #doc.messages)
    assert.are.equal(1, #doc.damaged)
    assert.are.equal("0000000001-000001-dead", doc.damaged[1].id)
  end)
end)
