-- The incremental reply parser (csrc/reply.c) through smtpkit.core.
local smtpkit = require "smtpkit"

-- Feeds `s` to a fresh parser in pieces cut at the given offsets and returns
-- every reply it completed (or nil, err).
local function feed_split(s, cuts)
  local p = smtpkit.reply_parser()
  local out, last = {}, 0
  cuts[#cuts + 1] = #s
  for _, c in ipairs(cuts) do
    local got, err = p:feed(s:sub(last + 1, c))
    if not got then return nil, err end
    for _, r in ipairs(got) do out[#out + 1] = r end
    last = c
  end
  return out
end

local ehlo = "250-mx.example.com Hello\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
  .. "250-8BITMIME\r\n250 \r\n"
local gmail = "550-5.1.1 The email account that you tried to reach does not exist.\r\n"
  .. "550 5.1.1 https://support.google.com/mail/?p=NoSuchUser z1si gsmtp\r\n"

describe("parse_reply", function()
  it("parses a one-line reply with an enhanced code", function()
    local r = assert(smtpkit.parse_reply("550 5.1.1 <a@b.c>: Recipient address rejected\r\n"))
    assert.same({ code = 550, enhanced = "5.1.1",
      lines = { "5.1.1 <a@b.c>: Recipient address rejected" },
      text = "<a@b.c>: Recipient address rejected" }, r)
  end)

  it("parses a multi-line reply, joining its text without the repeated code", function()
    local r = assert(smtpkit.parse_reply(gmail))
    assert.equal(550, r.code)
    assert.equal("5.1.1", r.enhanced)
    assert.equal(2, #r.lines)
    assert.equal("The email account that you tried to reach does not exist. "
      .. "https://support.google.com/mail/?p=NoSuchUser z1si gsmtp", r.text)
  end)

  it("accepts empty text, with or without the space (smtp-sink ends EHLO with '250 ')", function()
    local r = assert(smtpkit.parse_reply(ehlo))
    assert.same({ "mx.example.com Hello", "PIPELINING", "SIZE 10240000", "8BITMIME", "" }, r.lines)
    assert.equal(250, assert(smtpkit.parse_reply("250\r\n")).code)
    assert.same({ "" }, assert(smtpkit.parse_reply("354\r\n")).lines)
  end)

  it("takes the enhanced code only when its class agrees with the reply code", function()
    assert.is_nil(assert(smtpkit.parse_reply("550 4.1.1 odd\r\n")).enhanced)
    assert.is_nil(assert(smtpkit.parse_reply("250 2.0.0.1 not a code\r\n")).enhanced)
    local r = assert(smtpkit.parse_reply("451 4.7.650 The mail server [x] has been\r\n"))
    assert.equal("4.7.650", r.enhanced)
    assert.equal("2.0.0", assert(smtpkit.parse_reply("250 2.0.0 Ok: queued as 4Bx\r\n")).enhanced)
    assert.is_nil(assert(smtpkit.parse_reply("250 Ok 2.0.0\r\n")).enhanced)
  end)

  local malformed = {
    { "inconsistent codes", "250-first\r\n251 second\r\n", "inconsistent reply codes" },
    { "bare LF", "250 OK\n", "bare LF" },
    { "bare CR", "250 O\rK\r\n", "bare CR" },
    { "missing CRLF at the end", "250 OK", "incomplete" },
    { "unfinished continuation", "250-OK\r\n", "incomplete" },
    { "non-digit code", "2x0 OK\r\n", "malformed reply code" },
    { "code out of range", "650 OK\r\n", "malformed reply code" },
    { "second digit out of range", "260 OK\r\n", "malformed reply code" },
    { "short line", "25\r\n", "too short" },
    { "bad separator", "250:OK\r\n", "not ' ' or '-'" },
    { "empty input", "", "empty" },
    { "trailing bytes", "250 OK\r\n250 again\r\n", "follow the end" },
    { "over-long line", "250 " .. ("x"):rep(3000) .. "\r\n", "longer than 2048" },
    { "endless continuation", ("250-x\r\n"):rep(100) .. "250 x\r\n", "more than 64 lines" },
    { "too much text", ("250-" .. ("y"):rep(1000) .. "\r\n"):rep(20) .. "250 z\r\n", "octets of text" },
  }
  for _, case in ipairs(malformed) do
    it("refuses " .. case[1] .. " with a clear message", function()
      local r, err = smtpkit.parse_reply(case[2])
      assert.is_nil(r)
      assert.is_string(err)
      assert.truthy(err:find(case[3], 1, true), err)
    end)
  end

  it("raises on a non-string argument (a programming mistake)", function()
    assert.has_error(function() smtpkit.parse_reply({}) end)
  end)
end)

describe("reply_parser", function()
  local stream = "220 mx ESMTP\r\n" .. ehlo .. gmail .. "354 go ahead\r\n"

  it("gives the same replies whatever the split point", function()
    local whole = assert(feed_split(stream, {}))
    assert.equal(4, #whole)
    assert.same({ 220, 250, 550, 354 }, { whole[1].code, whole[2].code, whole[3].code, whole[4].code })
    for cut = 1, #stream - 1 do
      assert.same(whole, assert(feed_split(stream, { cut })), "split at " .. cut)
    end
  end)

  it("gives the same replies when fed one byte at a time", function()
    local cuts = {}
    for i = 1, #stream - 1 do cuts[i] = i end
    assert.same(assert(feed_split(stream, {})), assert(feed_split(stream, cuts)))
  end)

  it("reports a reply in progress as pending", function()
    local p = smtpkit.reply_parser()
    assert.same({}, p:feed("250-PIPE"))
    assert.is_true(p:pending())
    assert.equal(1, #p:feed("LINING\r\n250 OK\r\n"))
    assert.is_false(p:pending())
  end)

  it("returns the replies completed before an error, and stays failed until reset", function()
    local p = smtpkit.reply_parser()
    local got, err, before = p:feed("250 OK\r\n25x\r\n")
    assert.is_nil(got)
    assert.truthy(err:find("malformed reply code", 1, true))
    assert.equal(1, #before)
    assert.is_nil((p:feed("250 OK\r\n")))
    p:reset()
    assert.equal(250, p:feed("250 OK\r\n")[1].code)
  end)

  it("cuts off an endless multi-line reply at the line cap, not at memory exhaustion", function()
    local p = smtpkit.reply_parser()
    local err
    for _ = 1, 1000 do
      local got, e = p:feed("250-flood flood flood\r\n")
      if not got then err = e break end
    end
    assert.truthy(err and err:find("more than 64 lines", 1, true))
  end)
end)
