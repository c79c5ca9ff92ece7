-- send_client.lua KIND PORT N [PIPELINING=1] [TLS=none] [CAFILE]
-- One bench client: sends N copies of the same ~2 KB message over ONE
-- connection to 127.0.0.1:PORT and prints "msgs wall_s cpu_s" (CPU of this
-- process: os.clock). KIND: smtpkit (this library: client:send, one message
-- a call), smtpkit-batch (client:send_many, 1000 messages a call: each next
-- MAIL in the same write as the previous end of data) or luasocket
-- (LuaSocket's socket.smtp on one reused connection, TCP_NODELAY set - the
-- stock one manages ~22 msg/s, see shared/reference/machine-notes.md).
-- Run from the repository root with package.cpath pointing at build/<LUA>.
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
local socket = require "socket"
local kind, port, n = arg[1], tonumber(arg[2]), tonumber(arg[3])
local pipelining = (arg[4] or "1") == "1"
local tls = arg[5] or "none"
local cafile = arg[6]

local rows = {}
for i = 1, 26 do rows[i] = ("%02d "):format(i) .. ("abcdefghijklmnopqrstuvwxyz0123456789-_"):rep(2) end
local BODY = "From: bench@example.com\r\nTo: sink@example.com\r\nSubject: bench\r\n\r\n"
  .. table.concat(rows, "\r\n") .. "\r\n"   -- about 2 KB

local t0, c0 = socket.gettime(), os.clock()
if kind == "smtpkit" or kind == "smtpkit-batch" then
  local smtpkit = require "smtpkit"
  local c = assert(smtpkit.connect { host = "127.0.0.1", port = port, tls = tls, cafile = cafile,
    pipelining = pipelining })
  local msg = { from = "bench@example.com", to = "sink@example.com", body = BODY }
  local function check(r, err)
    if not r or not r.ok then error("send failed: " .. tostring(err or (r.reply and r.reply.text))) end
  end
  if kind == "smtpkit" then
    for _ = 1, n do check(c:send(msg)) end
  else
    local batch = {}
    for i = 1, math.min(n, 1000) do batch[i] = msg end
    local left = n
    while left > 0 do
      if left < #batch then for i = left + 1, #batch do batch[i] = nil end end
      local results, errs = c:send_many(batch)
      for i = 1, #batch do check(results[i], errs[i]) end
      left = left - #batch
    end
  end
  c:close()
elseif kind == "luasocket" then
  local smtp = require "socket.smtp"
  local ltn12 = require "ltn12"
  local function create()
    local s = socket.tcp4()
    s:setoption("tcp-nodelay", true)
    return s
  end
  local s = assert(smtp.open("127.0.0.1", port, create))
  s:greet("localhost")
  -- socket.smtp always adds CRLF "." CRLF: give it the body without its final CRLF
  local body = BODY:sub(1, -3)
  for _ = 1, n do
    s:send { from = "<bench@example.com>", rcpt = "<sink@example.com>", source = ltn12.source.string(body) }
  end
  s:quit()
  s:close()
else
  error("KIND must be smtpkit, smtpkit-batch or luasocket")
end
print(string.format("%d %.3f %.3f", n, socket.gettime() - t0, os.clock() - c0))
