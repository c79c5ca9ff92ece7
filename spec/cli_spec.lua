-- The smtpkit command, run as a user runs it: a spawned process per call
-- (bin/smtpkit with the interpreter of this run), its stdout, stderr and exit
-- code; real servers on 127.0.0.1 from spec/support/servers.lua.
local servers = require "support.servers"
local json = require "dkjson"

local cli = require "support.cli_run"
local LUA = os.getenv("SMTPKIT_LUA") or "lua5.4"
local q, slurp, spit = servers.q, servers.read_file, servers.write_file
local tmp, smtpkit, lines, assert_one_line = cli.tmp, cli.run, cli.lines, cli.assert_one_line

teardown(function() servers.stop_all() end)

describe("smtpkit command line", function()
  it("prints the commands with --help and exits 0", function()
    local r = smtpkit({ "--help" })
    assert.are.equal(0, r.code)
    for _, c in ipairs({ "demo", "send", "bulk", "classify", "check-header", "outbox" }) do
      assert.truthy(r.out:find("\n   " .. c:gsub("%-", "%%-") .. " "), c .. " listed")
    end
    assert.truthy(r.out:find("Exit codes"))
  end)

  it("has --help on every subcommand", function()
    for _, c in ipairs({ "demo", "send", "bulk", "classify", "check-header", "outbox" }) do
      local r = smtpkit({ c, "--help" })
      assert.are.equal(0, r.code, c .. ": " .. r.err)
      assert.truthy(r.out:find("^Usage: smtpkit " .. c:gsub("%-", "%%-")), c .. " usage")
      assert.truthy(r.out:find("Exit status"), c .. " documents its exit status")
    end
  end)

  it("prints its version", function()
    local r = smtpkit({ "--version" })
    assert.are.equal(0, r.code)
    assert.truthy(r.out:find("^smtpkit "))
  end)

  it("exits 2 with usage on stderr when no command is given", function()
    local r = smtpkit({})
    assert.are.equal(2, r.code)
    assert.are.equal("", r.out)
    assert.truthy(r.err:find("Usage: smtpkit"))
  end)

  it("rejects an unknown command with one line and exit 2", function()
    assert_one_line(smtpkit({ "frobnicate" }), 2, "unknown command 'frobnicate'")
  end)

  it("rejects an unknown flag on every subcommand with one line and exit 2", function()
    for _, c in ipairs({ "demo", "send", "bulk", "classify", "check-header", "outbox" }) do
      local r = smtpkit({ c, "--no-such-flag" })
      assert_one_line(r, 2, "%-%-no%-such%-flag")
      assert.truthy(r.err:find("^smtpkit " .. c:gsub("%-", "%%-") .. ": "), r.err)
    end
  end)

  it("rejects a missing option value and a bad choice with exit 2", function()
    assert_one_line(smtpkit({ "send", "--to" }), 2, "%-%-to")
    assert_one_line(smtpkit({ "outbox", "frob" }), 2, "frob")
    assert_one_line(smtpkit({ "send", "--from", "a@x.test", "--to", "b@x.test", "--server", "a:b:c" }),
      2, "%-%-server")
  end)
end)

describe("smtpkit classify", function()
  local seed = {
    { "250 Queued mail for delivery", "delivered" },
    { "421 Message from (192.0.2.1) temporarily deferred", "deferred" },
    { "450 too frequent connects from 198.37.147.135, please try again later.", "deferred" },
    { "451 Temporary local problem - please try later", "deferred" },
    { "452 Too many recipients received this hour (throttled)", "deferred" },
    { "550 Requested action not taken: mailbox unavailable", "bounced", "remove_address" },
    { "550 You are temporarily blocked from sending emails due to repeated bad requests.", "blocked" },
    { "551 User does not exist.", "bounced", "remove_address" },
    { "553 Invalid/inactive user.", "bounced", "remove_address" },
    { "554 ERROR: Mail refused", "bounced", "remove_address" },
    { "", "unknown" },
  }

  it("classifies replies given as arguments, as JSON", function()
    local args = { "classify", "--json" }
    for _, s in ipairs(seed) do args[#args + 1] = s[1] end
    local r = smtpkit(args)
    assert.are.equal(0, r.code, r.err)
    local list = assert(json.decode(r.out))
    assert.are.equal(#seed, #list)
    for i, s in ipairs(seed) do
      assert.are.equal(s[1], list[i].reply)
      assert.are.equal(s[2], list[i].outcome, s[1])
      if s[3] then assert.are.equal(s[3], list[i].action, s[1]) end
      assert.is_string(list[i].reason)
      assert.is_string(list[i].explanation)
      assert.is_boolean(list[i].retry)
    end
    assert.is_false(list[6].retry)
  end)

  it("reads one reply per line from stdin and prints a table", function()
    local r = smtpkit({ "classify" }, { stdin = "550 5.1.1 <x@y.test>: User unknown\r\n\n"
      .. "451 4.7.1 Greylisting in action, please come back later\n" })
    assert.are.equal(0, r.code, r.err)
    local l = lines(r.out)
    assert.truthy(l[1]:find("^REPLY%s+OUTCOME%s+REASON%s+ACTION%s+RETRY$"), l[1])
    assert.truthy(l[2]:find("^550 5%.1%.1 .-%s+bounced%s+user_unknown%s+remove_address%s+no$"), l[2])
    -- the explanation under each row, indented
    assert.truthy(l[3]:find("^    %S"), l[3])
    assert.truthy(l[4]:find("^451 4%.7%.1 .-%s+deferred%s+greylisted%s+retry%s+yes$"), l[4])
  end)

  it("shows an empty reply as (empty), outcome unknown", function()
    local r = smtpkit({ "classify", "" })
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.out:find("\n%(empty%)%s+unknown"), r.out)
  end)
end)

describe("smtpkit check-header", function()
  it("accepts a valid header, folded, with its name, from a file and from stdin", function()
    local f = spit(tmp() .. "/ok.txt", 'X-SMTPAPI: {"category": ["welcome"],\r\n'
      .. ' "filters": {"clicktrack": {"settings": {"enable": 0}}}}\r\n')
    local r = smtpkit({ "check-header", f })
    assert.are.equal(0, r.code, r.out .. r.err)
    assert.truthy(r.out:find("valid X%-SMTPAPI header"), r.out)
    r = smtpkit({ "check-header", "-q", "-" }, { stdin = '{"category":"a"}' })
    assert.are.equal(0, r.code, r.out .. r.err)
    assert.are.equal("", r.out)
  end)

  it("prints malformed JSON as FILE:LINE:COL: error and exits 1", function()
    -- the seed's own example of a broken header: "sub" inside the "to" array
    local f = spit(tmp() .. "/broken.json",
      '{"to":["ben@example.com","joe@example.com",\n "sub":{"%name%":["Ben","Joe"]}}\n')
    local r = smtpkit({ "check-header", f })
    assert.are.equal(1, r.code, r.out .. r.err)
    local first = lines(r.out)[1]
    local line, col = first:match("^" .. f:gsub("%p", "%%%0") .. ":(%d+):(%d+): error: ")
    assert.truthy(line, first)
    assert.are.equal("2", line)
    assert.are.equal(7, tonumber(col), first) -- the ':' after "sub"
  end)

  it("puts problems with a path at the value's line and column", function()
    local f = spit(tmp() .. "/typo.json", '{\n  "category": "a",\n  "filters": {"clicktrack": '
      .. '{"settings": {"enable": 7}}}\n }\n')
    local r = smtpkit({ "check-header", f })
    assert.are.equal(1, r.code, r.out .. r.err)
    local l = lines(r.out)[1]
    local ln, col, path = l:match(":(%d+):(%d+): error: ([^:]+): ")
    assert.are.equal("filters.clicktrack.settings.enable", path, l)
    assert.are.equal("3", ln)
    -- the column of the value 7
    assert.are.equal(('  "filters": {"clicktrack": {"settings": {"enable": '):len() + 1, tonumber(col))
  end)

  it("prints JSON with --json", function()
    local r = smtpkit({ "check-header", "--json", "-" }, { stdin = '{"send_at": "soon"}' })
    assert.are.equal(1, r.code)
    local doc = assert(json.decode(r.out))
    assert.is_false(doc.valid)
    assert.are.equal("send_at", doc.problems[1].path)
    assert.are.equal(1, doc.problems[1].line)
  end)

  it("exits 3 with one line for an unreadable file", function()
    assert_one_line(smtpkit({ "check-header", tmp() .. "/missing.json" }), 3, "cannot read")
  end)
end)

describe("smtpkit send without a server", function()
  it("writes the message as an .eml file into the outbox directory", function()
    local dir = tmp() .. "/outbox-eml"
    local r = smtpkit({ "send", "--from", "Me <me@example.com>", "--to", "you@example.com",
      "--subject", "請求書のご案内", "--text", "Hello", "--category", "welcome",
      "--no-click-tracking" }, { env = { SMTPKIT_OUTBOX = dir } })
    assert.are.equal(0, r.code, r.err)
    local path = r.out:match("wrote (%S+%.eml)")
    assert.truthy(path, r.out)
    assert.are.equal(dir, path:match("^(.*)/[^/]+$"))
    local eml = assert(slurp(path))
    assert.are.equal("\r\n", eml:sub(-2), "the .eml ends with a line break")
    assert.truthy(eml:find("\r\nSubject: =%?[Uu][Tt][Ff]%-8%?"), "encoded subject")
    assert.truthy(eml:find("\r\nX%-SMTPAPI: "), "X-SMTPAPI header")
    assert.truthy(eml:find('"clicktrack"'), eml)
    local l = smtpkit({ "outbox", "list", "--outbox", dir })
    assert.are.equal(0, l.code, l.err)
    assert.truthy(l.out:find(path:gsub("%p", "%%%0"), 1), l.out)
  end)

  it("refuses bad input with one line and a non-zero exit", function()
    local base = { "send", "--from", "me@example.com", "--to", "you@example.com", "--outbox", tmp() }
    local function with(...)
      local a = {}
      for _, v in ipairs(base) do a[#a + 1] = v end
      for _, v in ipairs({ ... }) do a[#a + 1] = v end
      return a
    end
    assert_one_line(smtpkit({ "send", "--to", "a@x.test" }), 2, "%-%-from")
    assert_one_line(smtpkit({ "send", "--from", "a@x.test" }), 2, "recipient")
    assert_one_line(smtpkit(with("--attach", tmp() .. "/nope.pdf")), 3, "nope%.pdf")
    assert_one_line(smtpkit(with("--text", "@" .. tmp() .. "/nope.txt")), 3, "nope%.txt")
    assert_one_line(smtpkit(with("--smtpapi", tmp() .. "/nope.json")), 3, "nope%.json")
    local bad = spit(tmp() .. "/bad-smtpapi.json", '{"category": ["a",}')
    assert_one_line(smtpkit(with("--smtpapi", bad)), 3, "invalid X%-SMTPAPI header: .*bad%-smtpapi%.json:1:")
    assert_one_line(smtpkit(with("--header", "no colon here")), 2, "%-%-header")
    assert_one_line(smtpkit({ "send", "--from", "me@example.com", "--to", "bad address\r\nRCPT TO:<x@y>",
      "--outbox", tmp() }), 3)
    -- a password is never taken from argv: --user without SMTPKIT_PASSWORD and no terminal
    assert_one_line(smtpkit(with("--server", "127.0.0.1:1", "--user", "bob")), 2, "SMTPKIT_PASSWORD")
  end)
end)

describe("smtpkit send to real servers", function()
  local function send_args(server, extra)
    local a = { "send", "--server", server, "--from", "me@smtpkit.test", "--to", "rcpt@example.net",
      "--subject", "hello", "--text", "Hello over the wire.\n.dot line\n", "--timeout", "10" }
    for _, v in ipairs(extra or {}) do a[#a + 1] = v end
    return a
  end

  it("sends over STARTTLS with AUTH to Postfix and prints the result per recipient", function()
    local pf = servers.postfix()
    local r = smtpkit(send_args("127.0.0.1:" .. pf.port, { "--user", pf.user, "--cafile", pf.ca,
      "--json", "--category", "cli-spec" }), { env = { SMTPKIT_PASSWORD = pf.password } })
    assert.are.equal(0, r.code, r.out .. r.err)
    local doc = assert(json.decode(r.out))
    assert.is_true(doc.ok)
    assert.are.equal("rcpt@example.net", doc.recipients[1].address)
    assert.are.equal("delivered", doc.recipients[1].outcome)
    local got = pf:wait_messages(1)
    assert.are.same({ "rcpt@example.net" }, got[1].to)
    assert.truthy(got[1].data:find("\nX%-SMTPAPI: "), got[1].data)
    assert.truthy(servers.body_of(got[1].data):find("^Hello over the wire%.\n%.dot line\n"))
  end)

  it("exits 6 when the server refuses the login", function()
    local pf = servers.postfix()
    local r = smtpkit(send_args("127.0.0.1:" .. pf.port, { "--user", pf.user, "--cafile", pf.ca }),
      { env = { SMTPKIT_PASSWORD = "wrong-password" } })
    assert_one_line(r, 6)
  end)

  it("exits 4 with one line when the server is unreachable", function()
    local port = servers.free_port()
    assert_one_line(smtpkit(send_args("127.0.0.1:" .. port)), 4, "127%.0%.0%.1:" .. port)
  end)

  it("exits 5 with one line naming --cafile's fix on a certificate failure", function()
    local c = servers.certs()
    local srv = servers.scripted{ tls = "starttls", cert = c.selfsigned_cert, key = c.selfsigned_key }
    local r = smtpkit(send_args("127.0.0.1:" .. srv.port))
    assert_one_line(r, 5, "cafile")
    assert.are.equal(0, #srv:messages())
    -- the same server with its certificate trusted: delivered
    r = smtpkit(send_args("127.0.0.1:" .. srv.port, { "--cafile", c.selfsigned_cert }))
    assert.are.equal(0, r.code, r.out .. r.err)
    assert.are.equal(1, #srv:wait_messages(1))
  end)

  it("exits 7 and queues the message in the outbox when the server defers the session", function()
    local srv = servers.scripted{ tls = "starttls",
      replies = { greeting = "421 4.7.0 mx.example.com Service not available, try again later" } }
    local dir = tmp() .. "/deferred-outbox"
    local r = smtpkit(send_args("127.0.0.1:" .. srv.port, { "--cafile", servers.certs().ca,
      "--outbox", dir }))
    assert_one_line(r, 7, "queued in .*deferred%-outbox")
    local l = smtpkit({ "outbox", "list", "--json", "--outbox", dir })
    local doc = assert(json.decode(l.out))
    assert.are.equal(1, #doc.messages)
    assert.are.equal("deferred", doc.messages[1].state)
    -- run against a server that refuses the recipient (now: before its next
    -- try is due): bounced, exit 1
    local srv2 = servers.scripted{ tls = "starttls",
      replies = { ["RCPT rcpt@example.net"] = "550 5.1.1 <rcpt@example.net>: no such user" } }
    local run = smtpkit({ "outbox", "run", "--now", "--server", "127.0.0.1:" .. srv2.port, "--cafile",
      servers.certs().ca, "--outbox", dir })
    assert.are.equal(1, run.code, run.out .. run.err)
    assert.truthy(run.out:find("\nbounced%s+1"), run.out)
    local show = smtpkit({ "outbox", "show", doc.messages[1].id, "--outbox", dir })
    assert.are.equal(0, show.code, show.err)
    assert.truthy(show.out:find("state:%s+bounced"), show.out)
    assert.truthy(show.out:find("550 5%.1%.1"), show.out)
  end)

  it("exits 1 on a refused recipient and prints its classification", function()
    local srv = servers.scripted{ tls = "starttls",
      replies = { ["RCPT rcpt@example.net"] = "550 5.1.1 <rcpt@example.net>: Recipient address rejected" } }
    local r = smtpkit(send_args("127.0.0.1:" .. srv.port, { "--cafile", servers.certs().ca }))
    assert.are.equal(1, r.code, r.out .. r.err)
    assert.truthy(r.out:find("rcpt@example%.net%s+550 5%.1%.1 .-%s+bounced%s+user_unknown%s+remove_address"),
      r.out)
  end)
end)

describe("smtpkit bulk", function()
  local tpl
  before_each(function()
    tpl = spit(tmp() .. "/welcome.txt", "Subject: Welcome, {{name}}\nFrom: Team <team@smtpkit.test>\n\n"
      .. "Hello {{name}}, your plan is {{plan}}.\n")
  end)

  it("refuses malformed CSV with the line number, and unknown template fields", function()
    local csv = spit(tmp() .. "/bad.csv", 'email,name,plan\na@x.test,"Ann,pro\n')
    assert_one_line(smtpkit({ "bulk", csv, "--template", tpl }), 3, "malformed CSV: .*bad%.csv:2:")
    csv = spit(tmp() .. "/short.csv", "email,name,plan\na@x.test,Ann,pro\nb@x.test,Bob\n")
    assert_one_line(smtpkit({ "bulk", csv, "--template", tpl }), 3, "short%.csv:3: 2 fields")
    csv = spit(tmp() .. "/noplan.csv", "email,name\na@x.test,Ann\n")
    assert_one_line(smtpkit({ "bulk", csv, "--template", tpl }), 3, "{{plan}}")
    csv = spit(tmp() .. "/noaddr.csv", "mail,name,plan\na@x.test,Ann,pro\n")
    assert_one_line(smtpkit({ "bulk", csv, "--template", tpl }), 3, "no column 'email'")
    assert_one_line(smtpkit({ "bulk", tmp() .. "/none.csv", "--template", tpl }), 3, "cannot read")
    assert_one_line(smtpkit({ "bulk", csv }), 2, "%-%-template")
  end)

  it("writes one .eml per row without a server, with a progress bar when asked", function()
    local csv = spit(tmp() .. "/two.csv", "email,name,plan\nann@x.test,Ann,pro\nbob@x.test,Bob,free\n")
    local dir = tmp() .. "/bulk-eml"
    local r = smtpkit({ "bulk", csv, "--template", tpl, "--outbox", dir, "--progress" })
    assert.are.equal(0, r.code, r.out .. r.err)
    assert.truthy(r.err:find("^\r%[###############%.+%] 1/2  written 1"), r.err)
    assert.truthy(r.err:find("\r%[#+%] 2/2  written 2  deferred 0  failed 0"), r.err)
    assert.truthy(r.out:find("2 messages: 2 written to "), r.out)
    local l = smtpkit({ "outbox", "list", "--json", "--outbox", dir })
    local doc = assert(json.decode(l.out))
    assert.are.equal(2, #doc.eml)
    local eml = assert(slurp(doc.eml[1] == nil and "" or doc.eml[1]))
    assert.truthy(eml:find("Subject: Welcome, [AB]"), eml)
  end)

  it("sends one message per row over one connection; deferred go to the outbox", function()
    local csv = spit(tmp() .. "/people.csv", 'email,name,plan\nann@x.test,"Ann, A.",pro\n'
      .. "bob@x.test,Bob,free\ncat@x.test,Cat,team\n")
    local srv = servers.scripted{ tls = "starttls",
      replies = { ["RCPT bob@x.test"] = "450 4.2.1 too frequent connects, please try again later" } }
    local dir = tmp() .. "/bulk-outbox"
    local r = smtpkit({ "bulk", csv, "--template", tpl, "--server", "127.0.0.1:" .. srv.port,
      "--cafile", servers.certs().ca, "--rate", "0", "--outbox", dir })
    assert.are.equal(7, r.code, r.out .. r.err)
    -- not a terminal: plain progress lines on stderr
    local prog = lines(r.err)
    assert.are.equal(3, #prog, r.err)
    assert.truthy(prog[1]:find("^bulk: 1/3 ann@x%.test: delivered"), prog[1])
    assert.truthy(prog[2]:find("^bulk: 2/3 bob@x%.test: deferred"), prog[2])
    -- the summary table
    assert.truthy(r.out:find("OUTCOME%s+REASON%s+MESSAGES"), r.out)
    assert.truthy(r.out:find("\ndelivered%s+accepted%s+2\n"), r.out)
    assert.truthy(r.out:find("\ndeferred%s+%S+%s+1\n"), r.out)
    -- the retry hint repeats the server options
    assert.truthy(r.out:find("smtpkit outbox run %-%-server 127%.0%.0%.1:" .. srv.port .. " %-%-cafile %S+ "
      .. "%-%-outbox " .. dir:gsub("%p", "%%%0") .. "\n"), r.out)
    local got = srv:wait_messages(2)
    assert.truthy(got[1].data:find("Subject: Welcome, \"?Ann, A%.\"?"), got[1].data)
    assert.truthy(got[1].data:find("your plan is pro%."))
    -- the deferred one waits in the outbox
    local l = smtpkit({ "outbox", "list", "--json", "--outbox", dir })
    assert.are.equal(0, l.code, l.err)
    local doc = assert(json.decode(l.out))
    assert.are.equal(1, #doc.messages)
    assert.truthy(doc.messages[1].to:find("bob@x.test", 1, true))
    local s = smtpkit({ "outbox", "show", doc.messages[1].id, "--outbox", dir })
    assert.are.equal(0, s.code, s.err)
    assert.truthy(s.out:find("bob@x%.test"))
    assert_one_line(smtpkit({ "outbox", "show", "no-such-id", "--outbox", dir }), 3, "no%-such%-id")
    -- outbox run delivers it to a server that takes it: not before its
    -- next try (the 450 is recorded as its first attempt), at once with --now
    local srv2 = servers.scripted{ tls = "starttls" }
    local run = smtpkit({ "outbox", "run", "--server", "127.0.0.1:" .. srv2.port, "--cafile",
      servers.certs().ca, "--outbox", dir })
    assert.are.equal(7, run.code, run.out .. run.err)
    assert.truthy(run.out:find("this run: 0 attempted"), run.out)
    run = smtpkit({ "outbox", "run", "--now", "--server", "127.0.0.1:" .. srv2.port, "--cafile",
      servers.certs().ca, "--outbox", dir })
    assert.are.equal(0, run.code, run.out .. run.err)
    assert.truthy(run.out:find("\ndelivered%s+1"), run.out)
    local got2 = srv2:wait_messages(1)
    assert.are.same({ "bob@x.test" }, got2[1].to)
    assert.truthy(got2[1].data:find("your plan is free%."))
    assert_one_line(smtpkit({ "outbox", "run", "--outbox", dir }), 2, "%-%-server")
  end)
end)

describe("smtpkit demo", function()
  it("runs the whole tour on loopback and stops what it started", function()
    local r = smtpkit({ "demo" })
    assert.are.equal(0, r.code, r.out .. r.err)
    for _, heading in ipairs({ "== 1%. Classifying", "== 2%. Starting an SMTP server",
      "== 3%. Sending a real message over STARTTLS %+ AUTH", "== 4%. Scripted replies",
      "== 5%. The deferred messages go to the outbox", "== Summary" }) do
      assert.truthy(r.out:find(heading), heading)
    end
    -- the seed's rows are in the classification table
    assert.truthy(r.out:find("\n551 User does not exist%.%s+bounced"), r.out)
    assert.truthy(r.out:find("TLS yes, AUTH as demo, X%-SMTPAPI header present"), r.out)
    for _, code in ipairs({ "421", "450", "550", "552" }) do
      assert.truthy(r.out:find("@demo%.test%s+" .. code .. " "), code .. " scripted")
    end
    assert.truthy(r.out:find("retried through the outbox: delivered"), r.out)
    -- the attempt counts are explained: the direct send counts, the script
    -- answers throttled@ 421 twice and busy@ 450 once
    assert.truthy(r.out:find("throttled@demo%.test%s+421%s+deferred%s+retried through the outbox: "
      .. "delivered on attempt 3 %(replies 421, 421, 250%)"), r.out)
    assert.truthy(r.out:find("busy@demo%.test%s+450%s+deferred%s+retried through the outbox: "
      .. "delivered on attempt 2 %(replies 450, 250%)"), r.out)
    assert.truthy(r.out:find("421 twice"), r.out)
  end)

  it("reports as JSON, and leaves no server and no files behind", function()
    local r = smtpkit({ "demo", "--json" })
    assert.are.equal(0, r.code, r.out .. r.err)
    local doc = assert(json.decode(r.out))
    assert.are.same({ "classify", "server", "send", "scripted", "outbox" }, doc.steps)
    assert.is_true(doc.sent.tls)
    assert.are.equal("demo", doc.sent.auth)
    assert.are.equal(2, doc.outbox.delivered)
    assert.are.equal(3, doc.outbox.messages[1].attempts)
    assert.are.equal(2, doc.outbox.messages[2].attempts)
    local outcomes = {}
    for _, s in ipairs(doc.scripted) do outcomes[s.code] = s.outcome end
    assert.are.same({ [421] = "deferred", [450] = "deferred", [550] = "bounced", [552] = "bounced" },
      outcomes)
    assert.is_nil(io.open(doc.server.dir .. "/cert.pem"), "temporary directory removed")
    local _, alive = servers.sh("kill -0 " .. doc.server.pid .. " 2>/dev/null")
    assert.is_false(alive, "demo server process gone")
  end)

  it("says which Debian package is missing when it cannot start its server (exit 69)", function()
    local r = smtpkit({ "demo" }, { env = { SMTPKIT_PYTHON = "/nonexistent/python3" } })
    assert.are.equal(69, r.code, r.err)
    assert.truthy(r.out:find("== 1%. Classifying"), "the classification still runs")
    local l = lines(r.err)
    assert.are.equal(1, #l, r.err)
    assert.truthy(l[1]:find("python3%-aiosmtpd"), l[1])
  end)

  it("prints only the classification tables with --classify-only", function()
    local r = smtpkit({ "demo", "--classify-only" })
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.out:find("== 1%. Classifying"))
    assert.is_nil(r.out:find("== 2%."))
  end)
end)

describe("smtpkit outbox: states, refusals, retries (issue 9 review)", function()
  local function send_args(server, to, extra)
    local a = { "send", "--server", server, "--from", "me@smtpkit.test", "--subject", "hello",
      "--text", "Hello.", "--timeout", "10" }
    for _, t in ipairs(to) do a[#a + 1] = "--to"; a[#a + 1] = t end
    for _, v in ipairs(extra or {}) do a[#a + 1] = v end
    return a
  end
  local function words(s)
    local t = {}
    for w in s:gmatch("%S+") do t[#t + 1] = w end
    return t
  end

  it("list --state rejects an unknown state with exit 2 and the valid states", function()
    local dir = tmp() .. "/state-outbox"
    servers.sh("mkdir -p " .. q(dir))
    local r = smtpkit({ "outbox", "list", "--state", "bogus", "--outbox", dir })
    assert_one_line(r, 2, "unknown state 'bogus'")
    for _, st in ipairs({ "queued", "deferred", "delivered", "bounced", "unknown", "maybe_delivered" }) do
      assert.truthy(r.err:find(st, 1, true), st .. " listed: " .. r.err)
    end
    local h = smtpkit({ "outbox", "--help" })
    local state_help = h.out:match("\n%s+%-%-state <state>(.-)\n%s*%-%-")
    assert.truthy(state_help and state_help:find("unknown"), h.out)
    -- --server's help is right for run (required), not send's .eml words
    local server_help = h.out:match("\n%s+%-%-server <host:port>(.-)\n%s*%-%-")
    assert.truthy(server_help and server_help:find("required"), h.out)
    assert.is_nil(server_help:find(".eml", 1, true), server_help)
    assert.truthy(h.out:find("%-%-now"), h.out)
    assert.truthy(h.out:find("never sends them"), h.out)
  end)

  it("records a deferred send's first attempt, backs off, and run --now forces the retry", function()
    local srv = servers.scripted{ auth = { bob = "s3cret-pw" },
      replies = { ["RCPT later@example.net"] = "450 4.2.1 too frequent connects, please try again later" } }
    local dir = tmp() .. "/backoff-outbox"
    local r = smtpkit(send_args("127.0.0.1:" .. srv.port, { "ok@example.net", "later@example.net" },
      { "--tls", "none", "--user", "bob", "--allow-plaintext-auth", "--outbox", dir }),
      { env = { SMTPKIT_PASSWORD = "s3cret-pw" } })
    assert.are.equal(7, r.code, r.out .. r.err)
    assert.are.equal(1, #srv:wait_messages(1), "delivered to ok@")
    -- the hint repeats the options that reach this server, never the password
    local hint = r.out:match("retry with: (smtpkit outbox run [^\n(]-)%s*%(")
    assert.truthy(hint, r.out)
    assert.are.equal("smtpkit outbox run --server 127.0.0.1:" .. srv.port .. " --tls none --user bob "
      .. "--allow-plaintext-auth --timeout 10 --outbox " .. dir, hint)
    assert.is_nil(r.out:find("s3cret", 1, true))
    -- the attempt is recorded: deferred, 1 attempt, next try after the backoff
    local l = smtpkit({ "outbox", "list", "--json", "--outbox", dir })
    local doc = assert(json.decode(l.out))
    assert.are.equal(1, #doc.messages)
    local m = doc.messages[1]
    assert.are.equal("deferred", m.state)
    assert.are.equal(1, m.attempts)
    assert.truthy(m.due > os.time() + 60, "backed off: due " .. m.due .. " now " .. os.time())
    -- only the deferred recipient waits; the reply and its advice are kept
    local show = smtpkit({ "outbox", "show", m.id, "--outbox", dir })
    assert.are.equal(0, show.code, show.err)
    assert.truthy(show.out:find("ok@example%.net%s+delivered"), show.out)
    assert.truthy(show.out:find("later@example%.net%s+pending%s+450"), show.out)
    assert.truthy(show.out:find("reduce_rate"), show.out)
    -- dates, not epoch seconds
    assert.truthy(show.out:find("\ncreated:%s+%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%dZ\n"), show.out)
    assert.truthy(show.out:find("\ndue:%s+%d%d%d%d%-%d%d%-%d%d "), show.out)
    assert.is_nil(show.out:find("\ncreated:%s+%d+%.?%d*\n"), show.out)
    -- --state with nothing in it says so
    local ld = smtpkit({ "outbox", "list", "--state", "delivered", "--outbox", dir })
    assert.are.equal(0, ld.code, ld.err)
    assert.truthy(ld.out:find("no messages in state delivered"), ld.out)
    assert.is_nil(ld.out:find("empty"), ld.out)
    -- the hint as printed: not due yet, nothing attempted
    local a = words(hint)
    table.remove(a, 1)
    local run = smtpkit(a, { env = { SMTPKIT_PASSWORD = "s3cret-pw" } })
    assert.are.equal(7, run.code, run.out .. run.err)
    assert.truthy(run.out:find("this run: 0 attempted"), run.out)
    -- --now: retried at once (deferred again by this server: a second attempt)
    a[#a + 1] = "--now"
    run = smtpkit(a, { env = { SMTPKIT_PASSWORD = "s3cret-pw" } })
    assert.are.equal(7, run.code, run.out .. run.err)
    assert.truthy(run.out:find("this run: 1 attempted"), run.out)
    doc = assert(json.decode(smtpkit({ "outbox", "list", "--json", "--outbox", dir }).out))
    assert.are.equal(2, doc.messages[1].attempts)
  end)

  it("outbox run exits 1 and counts a refused recipient of a partly delivered message", function()
    local srv = servers.scripted{ tls = "starttls",
      replies = { greeting = "421 4.7.0 mx.example.com Service not available, try again later" } }
    local dir = tmp() .. "/partly-outbox"
    local to = { "a@example.net", "gone@example.net", "c@example.net" }
    local r = smtpkit(send_args("127.0.0.1:" .. srv.port, to, { "--cafile", servers.certs().ca,
      "--outbox", dir }))
    assert_one_line(r, 7, "queued in .*partly%-outbox .*next try .*retry with: smtpkit outbox run "
      .. "%-%-server 127%.0%.0%.1:%d+ %-%-cafile %S+ %-%-timeout 10 %-%-outbox %S+partly%-outbox; "
      .. "add %-%-now")
    -- still 421 to the session: the message waits (exit 7, not 1)
    assert_one_line(smtpkit({ "outbox", "run", "--now", "--server", "127.0.0.1:" .. srv.port,
      "--cafile", servers.certs().ca, "--outbox", dir }), 7, "421 .*wait in the outbox")
    spit(dir .. "/20260101T000000Z-00001-1.eml", "Subject: x\r\n\r\nx\r\n")
    local srv2 = servers.scripted{ tls = "starttls",
      replies = { ["RCPT gone@example.net"] = "550 5.1.1 <gone@example.net>: no such user" } }
    local run = smtpkit({ "outbox", "run", "--now", "--server", "127.0.0.1:" .. srv2.port, "--cafile",
      servers.certs().ca, "--outbox", dir })
    assert.are.equal(1, run.code, run.out .. run.err)
    assert.truthy(run.out:find("\ndelivered%s+1\n"), run.out)
    assert.truthy(run.out:find("1 recipient refused"), run.out)
    assert.truthy(run.out:find("refused: gone@example%.net %(%S+%): 550"), run.out)
    assert.truthy(run.out:find("1 .eml file in .* not sent"), run.out)
    assert.are.same({ "a@example.net", "c@example.net" }, srv2:wait_messages(1)[1].to)
    local j = smtpkit({ "outbox", "run", "--json", "--server", "127.0.0.1:" .. srv2.port, "--cafile",
      servers.certs().ca, "--outbox", dir })
    assert.are.equal(0, j.code, j.out .. j.err)
  end)

  it("outbox show of an unknown id says it once", function()
    local dir = tmp() .. "/show-outbox"
    servers.sh("mkdir -p " .. q(dir))
    local r = smtpkit({ "outbox", "show", "nosuchid", "--outbox", dir })
    assert_one_line(r, 3, "no message nosuchid in the outbox")
    local _, n = r.err:gsub("nosuchid", "")
    assert.are.equal(1, n, r.err)
  end)
end)

describe("smtpkit errors name the command's flags", function()
  local function send_args(server, extra)
    local a = { "send", "--server", server, "--from", "me@smtpkit.test", "--to", "rcpt@example.net",
      "--subject", "hello", "--text", "Hello.", "--timeout", "10", "--outbox", tmp() }
    for _, v in ipairs(extra or {}) do a[#a + 1] = v end
    return a
  end

  it("a plaintext server: --tls none|opportunistic, and --allow-plaintext-auth for a login", function()
    local srv = servers.scripted{ auth = { bob = "pw" } }
    local r = smtpkit(send_args("127.0.0.1:" .. srv.port))
    assert_one_line(r, 5, "%-%-tls none|opportunistic")
    assert.is_nil(r.err:find('tls = "', 1, true), r.err)
    r = smtpkit(send_args("127.0.0.1:" .. srv.port, { "--tls", "none", "--user", "bob" }),
      { env = { SMTPKIT_PASSWORD = "pw" } })
    assert_one_line(r, 5, "%-%-allow%-plaintext%-auth")
    assert.is_nil(r.err:find("allow_plaintext_auth", 1, true), r.err)
    r = smtpkit(send_args("127.0.0.1:" .. srv.port, { "--tls", "none", "--user", "bob",
      "--allow-plaintext-auth" }), { env = { SMTPKIT_PASSWORD = "pw" } })
    assert.are.equal(0, r.code, r.out .. r.err)
    local doc = slurp("docs/cli.md")
    for _, flag in ipairs({ "--insecure", "--allow-plaintext-auth", "--helo", "--now" }) do
      assert.truthy(doc:find(flag, 1, true), flag .. " documented in docs/cli.md")
    end
  end)
end)

describe("smtpkit check-header --strict", function()
  it("labels warnings as errors, as its summary counts them", function()
    local header = '{"category": "a", "unknownkey": 1}'
    local r = smtpkit({ "check-header", "-" }, { stdin = header })
    assert.are.equal(0, r.code, r.out)
    assert.truthy(r.out:find(":1:%d+: warning: unknownkey: "), r.out)
    r = smtpkit({ "check-header", "--strict", "-" }, { stdin = header })
    assert.are.equal(1, r.code, r.out)
    assert.truthy(r.out:find(":1:%d+: error: unknownkey: "), r.out)
    assert.is_nil(r.out:find("warning:", 1, true), r.out)
  end)
end)

describe("smtpkit installed without its modules", function()
  it("exits 69 with one line naming the missing Lua module, no traceback", function()
    local dir = tmp() .. "/bin-only"
    servers.sh("mkdir -p " .. q(dir) .. " && cp bin/smtpkit " .. q(dir .. "/smtpkit"))
    local p = assert(io.popen("env LUA_PATH='/nonexistent/?.lua' LUA_PATH_5_4='/nonexistent/?.lua' "
      .. LUA .. " " .. q(dir .. "/smtpkit") .. " classify 250 2>&1 >/dev/null; echo \"rc=$?\""))
    local out = p:read("*a")
    p:close()
    assert.truthy(out:find("rc=69"), out)
    local l = lines(out)
    assert.are.equal(2, #l, out)
    assert.truthy(l[1]:find("^smtpkit: .*'smtpkit%.cli' not found"), l[1])
    assert.is_nil(out:find("traceback", 1, true))
  end)

  it("exits 69 with one line naming the C module that is not built", function()
    local none = "/nonexistent/?.so"
    local env = { SMTPKIT_BUILD = "/nonexistent", LUA_CPATH = none, LUA_CPATH_5_4 = none,
      LUA_CPATH_5_3 = none }
    for _, args in ipairs({ { "classify", "250 ok" }, { "check-header", "-" } }) do
      local r = smtpkit(args, { env = env, stdin = "{}" })
      assert_one_line(r, 69, "'smtpkit%.core' not found")
    end
  end)
end)

describe("LDoc comment separators", function()
  it("are '-- ----' lines, which LDoc does not try to parse as definitions", function()
    for _, f in ipairs({ "lua/smtpkit/message.lua", "lua/smtpkit/outbox.lua",
      "lua/smtpkit/outbox_dir.lua" }) do
      local text = assert(slurp(f))
      assert.is_nil(text:find("\n%-%-%-%-%-%-%-%-%-%-%-+\n"), f .. " has a '-----------' line")
    end
  end)
end)
