-- Composing messages (lua/smtpkit/message.lua). Every message a test renders
-- is parsed back by an independent parser, Python's email package
-- (spec/support/parse_email.py, BytesParser with policy.default), and what it
-- understood is compared with what went in.
local smtpkit = require "smtpkit"
local json = require "dkjson"
local core = require "smtpkit.core"

local check = require "support.email_check"
local write_file, parse, parse_raw, header_block, unb64, with =
  check.write_file, check.parse, check.parse_raw, check.header_block, check.unb64, check.with

local function tmpname()
  return os.tmpname()
end

local function lf(s) return (s:gsub("\r\n", "\n")) end

local all_bytes = {}
for i = 0, 255 do all_bytes[#all_bytes + 1] = string.char(i) end
all_bytes = table.concat(all_bytes)


describe("smtpkit.message", function()
  it("is callable as smtpkit.message{...} and as message.new{...}", function()
    assert.truthy(smtpkit.message(with { text = "hi" }))
    assert.truthy(require("smtpkit.message").new(with { text = "hi" }))
  end)

  describe("headers", function()
    it("writes Date (RFC 5322), Message-ID on the sender's domain, MIME-Version", function()
      local msg = assert(smtpkit.message(with { subject = "Hello", text = "hi\n" }))
      local doc, raw = parse(msg)
      local h = {}
      for _, pair in ipairs(doc.headers) do h[pair[1]] = pair[2] end
      assert.truthy(h.Date:find("^%a%a%a, %d%d %a%a%a %d%d%d%d %d%d:%d%d:%d%d %+0000$"), h.Date)
      assert.truthy(h["Message-ID"]:find("^<[%w%.]+@example%.com>$"), h["Message-ID"])
      assert.equal("1.0", h["MIME-Version"])
      assert.equal("Hello", doc.subject)
      assert.same({ { name = "Sender", addr = "sender@example.com" } }, doc.from)
      assert.same({ { name = "", addr = "rcpt@example.net" } }, doc.to)
      -- two messages never share a Message-ID
      local other = assert(smtpkit.message(with { text = "hi" }))
      assert.are_not.equal(raw:match("Message%-ID: (%S+)"),
        assert(other:render()):match("Message%-ID: (%S+)"))
    end)

    it("keeps a Date, Message-ID or custom header that is given", function()
      local msg = assert(smtpkit.message(with {
        text = "x", date = "Mon, 01 Jan 2024 00:00:00 +0900", message_id = "<abc.123@example.org>",
        headers = { ["X-Campaign"] = "spring sale", ["Content-Language"] = "ja",
          ["List-Unsubscribe"] = "<mailto:u@example.com>", ["X-Note"] = "注意: テスト",
          ["X-Long-Url"] = "<https://example.com/" .. string.rep("u", 120) .. ">" },
      }))
      local doc = parse(msg, 160)
      local h = {}
      for _, pair in ipairs(doc.headers) do h[pair[1]] = pair[2] end
      assert.equal("Mon, 01 Jan 2024 00:00:00 +0900", h.Date)
      assert.equal("<abc.123@example.org>", h["Message-ID"])
      assert.equal("spring sale", h["X-Campaign"])
      assert.equal("ja", h["Content-Language"])
      assert.equal("<mailto:u@example.com>", h["List-Unsubscribe"])
      assert.equal("注意: テスト", h["X-Note"])
      -- a long structured value is left as it is (not encoded): no place to fold
      assert.equal("<https://example.com/" .. string.rep("u", 120) .. ">", h["X-Long-Url"])
      assert.truthy(msg:render():find("\r\nX%-Long%-Url: <https://example.com/u+>\r\n"))
      -- the list form keeps order and repeats
      msg = assert(smtpkit.message(with { text = "x",
        headers = { { "X-B", "1" }, { "X-A", "2" }, { "X-B", "3" } } }))
      local raw = msg:render()
      assert.truthy(raw:find("X%-B: 1\r\nX%-A: 2\r\nX%-B: 3\r\n"))
    end)

    it("quotes display names with specials and encodes non-ASCII ones", function()
      local msg = assert(smtpkit.message {
        from = { name = "請求書 係", address = "billing@example.jp" },
        to = { '"Doe, John" <john@example.com>',
          { name = "O'Brien (Ops) \"Team\"", address = "ops@example.com" },
          "Plain Name <plain@example.com>", { name = "محمد العربي", address = "m@example.com" },
          { name = "שלום עולם", address = "h@example.com" } },
        cc = { { name = "🎉 Party 𝔘𝔫𝔦", address = "party@example.com" } },
        reply_to = "Support Team <support@example.jp>",
        text = "x",
      })
      local doc = parse(msg)
      assert.same({ { name = "請求書 係", addr = "billing@example.jp" } }, doc.from)
      assert.same({
        { name = "Doe, John", addr = "john@example.com" },
        { name = "O'Brien (Ops) \"Team\"", addr = "ops@example.com" },
        { name = "Plain Name", addr = "plain@example.com" },
        { name = "محمد العربي", addr = "m@example.com" },
        { name = "שלום עולם", addr = "h@example.com" },
      }, doc.to)
      assert.same({ { name = "🎉 Party 𝔘𝔫𝔦", addr = "party@example.com" } }, doc.cc)
      assert.same({ { name = "Support Team", addr = "support@example.jp" } }, doc.reply_to)
    end)

    it("cuts a display name too long for one encoded word between whole characters", function()
      local long_ja = string.rep("株式会社サンプル請求管理部門", 3)
      local long_ar = string.rep("مؤسسة العربي للتجارة ", 4)
      local msg = assert(smtpkit.message(with { to = { { name = long_ja, address = "ja@example.jp" },
        { name = long_ar, address = "ar@example.com" } }, text = "x" }))
      local doc, raw = parse(msg)
      for w in header_block(raw):gmatch("=%?[^?]+%?[BQ]%?[^?]*%?=") do
        assert.is_true(#w <= 75, w)
      end
      local to
      for _, pair in ipairs(doc.rfc2047) do
        if pair[1] == "To" then to = pair[2] end
      end
      assert.truthy(to:find(long_ja .. " <ja@example.jp>", 1, true), to)
      assert.truthy(to:find(long_ar .. " <ar@example.com>", 1, true), to)
      assert.equal("ja@example.jp", doc.to[1].addr)
    end)

    it("survives random mixes of scripts in subject, names and file names", function()
      local pool = { "a", "Z", "0", " ", ".", ",", "\"", "(", "=", "?", "_", "é", "ß", "請", "求", "書",
        "の", "ア", "한", "ع", "ر", "ب", "ש", "ל", "🎉", "🧑🏽‍💻", "𝔘", "\u{301}", "—", "\\" }
      local seed = 42
      local function rnd(n)
        seed = (seed * 1103515245 + 12345) % 2147483648
        return math.floor(seed / 65536) % n + 1
      end
      local function word(maxlen)
        local t = {}
        for i = 1, rnd(maxlen) do t[i] = pool[rnd(#pool)] end
        return (table.concat(t):gsub("^ +", ""):gsub(" +$", ""))
      end
      for _ = 1, 4 do
        local to, atts = {}, {}
        for i = 1, 12 do
          local n = word(8)
          to[i] = { name = n ~= "" and n or "x", address = ("r%d@example.com"):format(i) }
        end
        for i = 1, 4 do atts[i] = { filename = word(40) .. ".bin", data = word(10) } end
        local subject = word(120)
        local doc = parse(assert(smtpkit.message(with { to = to, subject = subject, text = subject,
          attachments = atts })))
        assert.equal(subject, doc.subject)
        for i = 1, 12 do assert.same({ name = to[i].name, addr = to[i].address }, doc.to[i]) end
        for i = 1, 4 do
          assert.equal(atts[i].filename, doc.leaves[i + 1].filename)
          assert.equal(atts[i].data, unb64(doc.leaves[i + 1].b64))
        end
        assert.equal(subject, lf(doc.leaves[1].text))
      end
    end)

    local subjects = {
      { "Japanese", "請求書のご案内" },
      { "emoji beyond the BMP", "🎉🚀 Launch day 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🧑🏽‍💻 done" },
      { "Arabic and Hebrew", "فاتورة رقم ١٢٣ — חשבונית מס׳ 456" },
      { "long Japanese", string.rep("請求書のご案内、", 30) },
      { "Latin with accents", "Votre facture n° 42 — Café Müller, Zürich" },
      { "a word longer than a line", "Ref " .. string.rep("X", 120) .. " end" },
      { "text that looks like an encoded word", "=?UTF-8?B?SGVsbG8=?= is not encoded" },
      { "ASCII that folds", string.rep("word ", 60) .. "end" },
      { "specials and spaces", "  two  spaces and a tab\there  " },
    }
    for _, case in ipairs(subjects) do
      it("encodes a Subject (" .. case[1] .. ") that comes back exactly, in words of at most 75", function()
        local msg = assert(smtpkit.message(with { subject = case[2], text = "x" }))
        local doc, raw = parse(msg)
        assert.equal(case[2], doc.subject)
        for w in header_block(raw):gmatch("=%?[^?]+%?[BQ]%?[^?]*%?=") do
          assert.is_true(#w <= 75, w)
        end
      end)
    end
  end)

  describe("structure", function()
    local png = "\137PNG\r\n\26\n" .. all_bytes

    it("text only is one text/plain part, 7bit when it can be", function()
      local text = "Hello,\n.a line that starts with a dot\n..two dots\nbye\n"
      local doc = parse(assert(smtpkit.message(with { text = text })))
      assert.same({ type = "text/plain" }, doc.structure)
      assert.equal("7bit", doc.leaves[1].cte)
      assert.equal("utf-8", doc.leaves[1].charset)
      assert.equal(text, lf(doc.leaves[1].text))
    end)

    it("text + html is multipart/alternative", function()
      local doc = parse(assert(smtpkit.message(with { text = "plain", html = "<p>html</p>" })))
      assert.same({ type = "multipart/alternative",
        parts = { { type = "text/plain" }, { type = "text/html" } } },
        doc.structure)
      assert.equal("plain", doc.leaves[1].text)
      assert.equal("<p>html</p>", doc.leaves[2].text)
    end)

    it("attachments make multipart/mixed, inline images multipart/related", function()
      local doc = parse(assert(smtpkit.message(with {
        text = "plain", html = '<img src="cid:logo@example.com">',
        inline = { { cid = "logo@example.com", filename = "logo.png", data = png } },
        attachments = { { filename = "a.bin", data = all_bytes }, { filename = "b.txt", data = "b\n" } },
      })))
      assert.same({ type = "multipart/mixed", parts = {
        { type = "multipart/related", parts = {
          { type = "multipart/alternative", parts = { { type = "text/plain" }, { type = "text/html" } } },
          { type = "image/png" } } },
        { type = "application/octet-stream" },
        { type = "text/plain" },
      } }, doc.structure)
      local img = doc.leaves[3]
      assert.equal("<logo@example.com>", img.cid)
      assert.equal("inline", img.disposition)
      assert.equal(png, unb64(img.b64))
      assert.equal("attachment", doc.leaves[4].disposition)
      assert.equal(all_bytes, unb64(doc.leaves[4].b64))
      assert.equal("b\n", unb64(doc.leaves[5].b64))
    end)

    it("html with inline images but no text is related(html, image)", function()
      local doc = parse(assert(smtpkit.message(with {
        html = '<img src="cid:x1">', inline = { { cid = "<x1>", content_type = "image/png", data = png } },
      })))
      assert.same({ type = "multipart/related", parts = { { type = "text/html" }, { type = "image/png" } } },
        doc.structure)
      assert.equal("<x1>", doc.leaves[2].cid)
    end)

    it("attachments only, without a body", function()
      local doc = parse(assert(smtpkit.message(with {
        attachments = { { filename = "x.pdf", data = "%PDF" } } })))
      assert.same({ type = "multipart/mixed", parts = { { type = "application/pdf" } } }, doc.structure)
    end)

    it("picks a boundary that no 7bit part contains", function()
      -- make the first random boundary one the text holds; the composer must draw again
      local real = core.random_bytes
      local fixed = string.rep("\171", 12)
      local calls = 0
      core.random_bytes = function(n)
        calls = calls + 1
        if n == 12 and calls <= 3 then return fixed end
        return real(n)
      end
      local text = "before\n--=_" .. string.rep("ab", 12) .. "\nafter\n"
      local ok, msg = pcall(smtpkit.message, with { text = text, html = "<p>x</p>" })
      core.random_bytes = real
      assert.is_true(ok, msg)
      local doc = parse(assert(msg))
      assert.equal(lf(text), lf(doc.leaves[1].text))
      assert.equal("<p>x</p>", doc.leaves[2].text)
    end)
  end)

  describe("bodies", function()
    local cases = {
      { "Japanese", "請求書のご案内\nお支払い期限: 12月31日\n", "base64" },
      { "emoji", "🎉🚀🧑🏽‍💻\n𝔘𝔫𝔦𝔠𝔬𝔡𝔢\n", "base64" },
      { "Arabic and Hebrew", "مرحبا بالعالم\nשלום עולם\n", "base64" },
      { "accented Latin", "Bonjour, voici votre facture.\nCafé Müller, Zürich.\nMerci.\n",
        "quoted-printable" },
      { "a long word", string.rep("x", 2000) .. "\nshort\n", "quoted-printable" },
      { "dots and trailing spaces", ".\n.leading dot\nend with spaces   \nCafé\n", "quoted-printable" },
      { "a bare CR", "a\rb\n", "quoted-printable" },
      { "lines of 998 octets", string.rep("y", 998) .. "\n" .. string.rep("z", 998), "7bit" },
    }
    for _, case in ipairs(cases) do
      it("text with " .. case[1] .. " goes as " .. case[3] .. " and comes back exactly", function()
        local doc = parse(assert(smtpkit.message(with { text = case[2], html = case[2] })))
        for i = 1, 2 do
          assert.equal(case[3], doc.leaves[i].cte)
          if case[1] == "a bare CR" then
            assert.equal(case[2]:gsub("\n", "\r\n"), doc.leaves[i].text)
          else
            assert.equal(case[2], lf(doc.leaves[i].text))
          end
        end
      end)
    end

    it("renders no 8-bit byte and CRLF only", function()
      local msg = assert(smtpkit.message(with { subject = "請求書", text = "請求書\n", html = "<b>é</b>" }))
      local raw = msg:render()
      assert.is_false(msg.eightbit)
      assert.is_false(msg.smtputf8)
      assert.is_nil(raw:find("[\128-\255]"))
      assert.is_nil(raw:find("[^\r]\n"))
    end)
  end)

  describe("attachment file names", function()
    local names = {
      "invoice.pdf",
      "請求書 2026年12月.pdf",
      string.rep("請求書のご案内", 12) .. ".pdf",
      "report \"final\" (v2); copy.pdf",
      "🎉 party.png",
      "ملف.txt",
      string.rep("a", 150) .. ".txt",
    }
    for _, n in ipairs(names) do
      it("comes back exactly: " .. n:sub(1, 40), function()
        local doc = parse(assert(smtpkit.message(with { text = "x",
          attachments = { { filename = n, data = all_bytes } } })))
        assert.equal(n, doc.leaves[2].filename)
        assert.equal(all_bytes, unb64(doc.leaves[2].b64))
      end)
    end

    it("takes the name and content type from path=", function()
      local path = tmpname() .. ".png"
      write_file(path, all_bytes)
      local doc = parse(assert(smtpkit.message(with { text = "x", attachments = { { path = path } } })))
      os.remove(path)
      assert.equal(path:match("[^/]+$"), doc.leaves[2].filename)
      assert.equal("image/png", doc.leaves[2].content_type)
      assert.equal(all_bytes, unb64(doc.leaves[2].b64))
    end)
  end)

  describe("Bcc and the envelope", function()
    it("never writes Bcc, and puts to, cc and bcc in the envelope once each", function()
      local msg = assert(smtpkit.message {
        from = "A <a@example.com>", to = { "b@example.com", "Dup <d@example.com>" },
        cc = "C <c@example.com>", bcc = { "hidden@example.com", "D@example.com" }, text = "x",
      })
      local raw = msg:render()
      -- no Bcc line (a bare find("bcc") would also hit the random hex of the
      -- Message-ID or a boundary, now and then)
      assert.is_nil(("\n" .. raw:lower()):find("\nbcc:", 1, true))
      assert.is_nil(raw:find("hidden@example.com", 1, true))
      assert.same({ from = "a@example.com", to = { "b@example.com", "d@example.com", "c@example.com",
        "hidden@example.com" } }, msg:envelope())
      local doc = parse(msg)
      for _, pair in ipairs(doc.headers) do assert.are_not.equal("bcc", pair[1]:lower()) end
    end)

    it("refuses a Bcc header given through headers=", function()
      local msg, err = smtpkit.message(with { text = "x", headers = { Bcc = "x@example.com" } })
      assert.is_nil(msg)
      assert.equal("validation", err.kind)
      assert.truthy(tostring(err):find("bcc="))
    end)

    it("flags smtputf8 and eightbit for a non-ASCII address", function()
      local msg = assert(smtpkit.message { from = "a@example.com", to = "用户@例子.广告", text = "x" })
      assert.is_true(msg.smtputf8)
      assert.is_true(msg.eightbit)
      assert.same({ "用户@例子.广告" }, msg:envelope().to)
    end)
  end)

  describe("refuses", function()
    local bad = {
      { "CR in the subject", { subject = "Hi\r\nBcc: evil@example.com" }, "CR or LF" },
      { "LF in the subject", { subject = "Hi\nX-Evil: 1" }, "CR or LF" },
      { "LF in a display name", { to = { { name = "x\nBcc: e@x", address = "a@example.com" } } },
        "CR or LF" },
      { "CR in an address", { to = "a@example.com\r\nRCPT TO:<e@x>" }, "CR or LF" },
      { "LF in an address table", { cc = { { address = "a@exa\nmple.com" } } }, "CR or LF" },
      { "CR in a header value", { headers = { ["X-A"] = "1\r\nBcc: e@x" } }, "CR or LF" },
      { "LF in a header name", { headers = { ["X-A\nBcc"] = "1" } }, "CR or LF" },
      { "a colon in a header name", { headers = { ["X-A: 1\tX"] = "1" } }, "header name" },
      { "LF in an attachment name", { attachments = { { filename = "a\n.pdf", data = "x" } } }, "CR or LF" },
      { "CR in a content type", { attachments = { { content_type = "text/plain\r\nX: y", data = "x" } } },
        "CR or LF" },
      { "NUL in the subject", { subject = "a\0b" }, "NUL" },
      { "a header line over 998 octets", { headers = { ["X-Big"] = string.rep("a", 1000) } }, "998" },
      { "an address without @", { to = "nobody" }, "not an address" },
      { "two addresses in one string", { to = "a@example.com, b@example.com" }, "bad" },
      { "a subject that is not UTF-8", { subject = "caf\233" }, "UTF%-8" },
      { "no recipient", { to = false }, "no recipient" },
      { "a header the composer owns", { headers = { Subject = "x" } }, "subject=" },
      { "a Content-Type header", { headers = { ["content-type"] = "text/html" } }, "composer" },
      { "inline parts without html", { inline = { { cid = "x", data = "y" } } }, "html=" },
      { "a missing attachment file", { attachments = { { path = "/nonexistent/file.pdf" } } },
        "cannot read" },
    }
    for _, case in ipairs(bad) do
      it(case[1] .. " with nil, err", function()
        local o = with(case[2])
        if o.to == false then o.to = nil end
        o.text = "x"
        local msg, err = smtpkit.message(o)
        assert.is_nil(msg)
        assert.is_table(err)
        assert.equal(case[1]:find("file") and require("smtpkit.message").IO_KIND or "validation", err.kind)
        assert.equal(err.message, tostring(err))
        assert.truthy(err.message:find(case[3]), err.message)
      end)
    end

    it("wrong types with error() (programming mistakes)", function()
      assert.has_error(function() smtpkit.message("x") end)
      assert.has_error(function() smtpkit.message(with { subject = 42 }) end)
      assert.has_error(function() smtpkit.message(with { to = 42 }) end)
      assert.has_error(function() smtpkit.message(with { attachments = { { filename = "x" } } }) end)
      assert.has_error(function() smtpkit.message(with { attachments = { { data = "x", path = "/y" } } }) end)
    end)
  end)

  describe("streaming", function()
    it("chunks() yields bounded chunks whose concatenation is render(), and size() is exact", function()
      local big = string.rep(all_bytes, 2000)   -- 512 KiB
      local msg = assert(smtpkit.message(with { text = "x",
        attachments = { { filename = "b.bin", data = big } } }))
      local parts, n = {}, 0
      for c in msg:chunks() do
        n = n + 1
        assert.is_true(#c <= 2 * 65536, "chunk of " .. #c)
        parts[n] = c
      end
      assert.is_true(n > 4)
      local raw = table.concat(parts)
      assert.equal(raw, msg:render())
      assert.equal(#raw, msg:size())
      local doc = parse(msg)
      assert.equal(#big, doc.leaves[2].size)
    end)

    it("takes an attachment from an iterator, once", function()
      local pieces = { "abc", "", "defg", all_bytes, "h" }
      local i = 0
      local msg = assert(smtpkit.message(with { text = "x", attachments = { {
        filename = "it.bin", iter = function() i = i + 1; return pieces[i] end } } }))
      assert.is_nil(msg:size())
      local doc = parse(msg)
      assert.equal(table.concat(pieces), unb64(doc.leaves[2].b64))
      local again, err = msg:render()
      assert.is_nil(again)
      assert.truthy(tostring(err):find("only once"))
    end)

    it("reports an iterator that fails with nil, err", function()
      local msg = assert(smtpkit.message(with { text = "x", attachments = { {
        filename = "it.bin", iter = function() error("disk on fire") end } } }))
      local raw, err = msg:render()
      assert.is_nil(raw)
      assert.equal(require("smtpkit.message").IO_KIND, err.kind)
      assert.truthy(tostring(err):find("disk on fire"))
    end)

    it("writes a multi-megabyte file attachment in bounded memory", function()
      local size = 12 * 1024 * 1024
      local path = tmpname()
      do
        local f = assert(io.open(path, "wb"))
        local block = string.rep(all_bytes, 256)   -- 64 KiB
        for _ = 1, size / #block do f:write(block) end
        f:close()
      end
      local out = tmpname()
      collectgarbage("collect")
      local before = collectgarbage("count")
      local peak = before
      local msg = assert(smtpkit.message(with { subject = "big", text = "see attached",
        attachments = { { path = path, filename = "big.bin" } } }))
      local fh = assert(io.open(out, "wb"))
      -- what the process holds while writing: live memory, measured after a
      -- full collection every few chunks (garbage waiting for the collector
      -- is not held; it depends on the collector's pace, not on the message)
      local writes = 0
      local sink = {
        write = function(_, c)
          writes = writes + 1
          if writes % 8 == 0 then
            collectgarbage("collect")
            local kb = collectgarbage("count") - #c / 1024
            if kb > peak then peak = kb end
          end
          return fh:write(c)
        end,
      }
      assert.is_true(msg:write(sink))
      fh:close()
      local grown_kb = peak - before
      assert.is_true(writes > 100)
      assert.is_true(grown_kb < 1024, ("memory grew by %.0f KiB for a %.0f KiB attachment")
        :format(grown_kb, size / 1024))
      local f = assert(io.open(out, "rb"))
      local raw = f:read("*a")
      f:close()
      assert.equal(#raw, msg:size())
      local doc = parse_raw(raw)
      raw = nil -- luacheck: ignore
      assert.same({}, doc.defects)
      assert.equal(size, doc.leaves[2].size)
      local p = assert(io.popen("sha256sum " .. path))
      local want = p:read("*a"):match("^(%x+)")
      p:close()
      assert.equal(want, doc.leaves[2].sha256)
      os.remove(path)
      os.remove(out)
    end)
  end)

  describe("sent for real", function()
    local servers = require "support.servers"
    teardown(function() servers.stop_all() end)

    it("smtpkit.send delivers it to aiosmtpd byte for byte, Bcc in the envelope only", function()
      local srv = servers.scripted {}
      local msg = assert(smtpkit.message {
        from = "請求 <billing@example.com>", to = "b@example.net", bcc = "hidden@example.org",
        subject = "請求書のご案内", text = ".a dot line\n..two\n.\nend\n", html = "<p>é</p>",
        attachments = { { filename = "請求書.pdf", data = all_bytes:rep(100) } },
      })
      local r, err = smtpkit.send({ host = srv.host, port = srv.port, tls = "none" }, msg)
      assert.truthy(r, tostring(err))
      srv:wait_messages(1)
      local got = srv:messages()[1]
      assert.equal("billing@example.com", got.from)
      assert.same({ "b@example.net", "hidden@example.org" }, got.to)
      assert.equal(msg:render(), got.data)
      assert.is_nil(got.data:find("hidden@example.org", 1, true))
      local doc = parse_raw(got.data)
      assert.same({}, doc.defects)
      assert.equal("請求書のご案内", doc.subject)
      assert.equal(".a dot line\n..two\n.\nend\n", lf(doc.leaves[1].text))
      assert.equal("請求書.pdf", doc.leaves[3].filename)
      assert.equal(all_bytes:rep(100), unb64(doc.leaves[3].b64))
    end)
  end)

  describe("X-SMTPAPI", function()
    local have = pcall(require, "smtpkit.smtpapi")

    local it_smtpapi = have and it or pending
    it_smtpapi("goes through smtpkit.smtpapi.encode into the X-SMTPAPI header", function()
      local value = { category = { "invoice" }, unique_args = { id = "42" } }
      local msg = assert(smtpkit.message(with { text = "x", smtpapi = value }))
      local doc = parse(msg)
      local h
      for _, pair in ipairs(doc.headers) do
        if pair[1]:lower() == "x-smtpapi" then h = pair[2] end
      end
      assert.truthy(h)
      local decoded = json.decode(h)
      assert.same(value.category, decoded.category)
    end)

    it_smtpapi("an invalid value fails with kind validation and the problems", function()
      local msg, err = smtpkit.message(with { text = "x", smtpapi = { category = 42, send_at = "soon" } })
      assert.is_nil(msg)
      assert.equal("validation", err.kind)
      assert.truthy(tostring(err):find("X%-SMTPAPI"))
      assert.truthy(#err.problems >= 1)
      assert.truthy(err.problems[1].path)
    end)
  end)
end)
