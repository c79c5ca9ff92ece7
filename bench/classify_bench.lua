--- Classifications per second of typical one-line replies: through the Lua
-- binding (smtpkit.core.classify) and with the pure-Lua reference
-- (bench/classify_ref.lua, same rules). Prints one line per side and the ratio.
-- Run by bench/run_classify.sh: <lua> bench/classify_bench.lua <label> [seconds]
package.path = "bench/?.lua;" .. package.path
local core = require "smtpkit.core"
local ref = require("classify_ref").new(core.classify_rules())
local samples = require "classify_samples"

local label, seconds = arg[1] or _VERSION, tonumber(arg[2] or "1.5")

-- Both sides must agree on what they measure.
local diff = 0
for _, s in ipairs(samples) do
  local a, b = core.classify(s), ref(s)
  if a.reason ~= b.reason or a.outcome ~= b.outcome or a.action ~= b.action then
    diff = diff + 1
    io.stderr:write(("differs: %q C=%s/%s Lua=%s/%s\n"):format(s, a.outcome, a.reason,
      b.outcome, b.reason))
  end
end

local function rate(f)
  local n, clock = #samples, os.clock
  for i = 1, n do f(samples[i]) end                -- warm-up (LuaJIT traces)
  local count, t0 = 0, clock()
  repeat
    for _ = 1, 20 do
      for i = 1, n do f(samples[i]) end
    end
    count = count + 20 * n
  until clock() - t0 >= seconds
  return count / (clock() - t0)
end

local c = rate(core.classify)
local l = rate(ref)
print(("%-8s binding  %12.0f classifications/s"):format(label, c))
print(("%-8s pure-Lua %12.0f classifications/s"):format(label, l))
print(("%-8s ratio    %12.1f x   (%d samples, %d disagree)"):format(label, c / l, #samples, diff))
io.stdout:flush()
os.exit(diff == 0 and 0 or 3)
