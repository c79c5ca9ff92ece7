-- send_memory.lua PORT CONNS MB [TLS] [CAFILE]
-- Memory of smtpkit's C transport: opens CONNS connections to 127.0.0.1:PORT
-- and prints the resident memory they add, per connection; then streams a
-- MB-megabyte body from a file over one of them and prints how much the peak
-- (VmHWM) grew: it must not grow with the message size.
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
local smtpkit = require "smtpkit"
local port, conns, mb = tonumber(arg[1]), tonumber(arg[2]), tonumber(arg[3])
local tls, cafile = arg[4] or "none", arg[5]

local function status(key)
  for line in io.lines("/proc/self/status") do
    local v = line:match("^" .. key .. ":%s*(%d+)")
    if v then return tonumber(v) end
  end
end

local opts = { host = "127.0.0.1", port = port, tls = tls, cafile = cafile }
-- warm up: load the modules, OpenSSL, one connection
local first = assert(smtpkit.connect(opts))
collectgarbage("collect")
local before = status("VmRSS")
local cs = {}
for i = 1, conns do cs[i] = assert(smtpkit.connect(opts)) end
collectgarbage("collect")
local after = status("VmRSS")
print(string.format("rss_per_connection_kb %.1f", (after - before) / conns))
for i = 1, conns do cs[i]:close() end

-- stream a big body from a file: the peak must not grow by the body's size
local path = os.tmpname()
local f = assert(io.open(path, "wb"))
f:write("Subject: big\r\n\r\n")
local line = ("0123456789"):rep(7) .. "\r\n"
local block = line:rep(math.floor(65536 / #line))
for _ = 1, math.floor(mb * 1048576 / #block) do f:write(block) end
f:close()
collectgarbage("collect")
local hwm0 = status("VmHWM")
f = assert(io.open(path, "rb"))
local r = assert(first:send { from = "bench@example.com", to = "sink@example.com", body = f })
f:close()
os.remove(path)
assert(r.ok, "big message refused")
local hwm1 = status("VmHWM")
print(string.format("peak_growth_kb_for_%dMB_body %d", mb, hwm1 - hwm0))
first:close()
