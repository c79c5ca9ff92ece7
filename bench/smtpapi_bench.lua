-- smtpapi_bench.lua - the Lua-level cost of smtpkit.smtpapi on the 10 KB
-- realistic header: validate(text), encode(text) and encode(table) (the
-- table -> JSON step included). Informational: the limits are checked by
-- smtpapi_bench.c. Usage: lua smtpapi_bench.lua FILE
local smtpapi = require "smtpkit.smtpapi"

local f = assert(io.open(arg[1], "rb"))
local text = f:read("*a")
f:close()
local now = 1776384000
local opts = { now = now }
local value = assert(smtpapi.decode(text, opts))

local function best(fn)
  local n = 1
  while true do
    local t0 = os.clock()
    for _ = 1, n do fn() end
    if os.clock() - t0 > 0.02 then break end
    n = n * 2
  end
  local b = math.huge
  for _ = 1, 5 do
    local t0 = os.clock()
    for _ = 1, n do fn() end
    local t = (os.clock() - t0) / n
    if t < b then b = t end
  end
  return b
end

local tv = best(function() assert(smtpapi.validate(text, opts)) end)
local te = best(function() assert(smtpapi.encode(text, opts)) end)
local tt = best(function() assert(smtpapi.encode(value, opts)) end)
local ver = jit and jit.version or _VERSION
print(("  %-12s validate %7.1f us   encode(text) %7.1f us (%4.0f MB/s)   encode(table) %7.1f us")
  :format(ver, tv * 1e6, te * 1e6, #text / te / 1e6, tt * 1e6))
