--- Classifications per second of typical one-line replies: through the Lua
-- binding users call (smtpkit.classify: on LuaJIT the FFI path,
-- lua/smtpkit/classify_ffi.lua; elsewhere the C API binding
-- smtpkit.core.classify) and with the pure-Lua reference
-- (bench/classify_ref.lua, same rules). Prints one line per side and the
-- ratio; on LuaJIT also the C API binding alone, for comparison.
-- Run by bench/run_classify.sh: <lua> bench/classify_bench.lua <label> [seconds]
package.path = "bench/?.lua;lua/?.lua;lua/?/init.lua;" .. package.path
local core = require "smtpkit.core"
local classify = require("smtpkit").classify
local ref = require("classify_ref").new(core.classify_rules())
local samples = require "classify_samples"

local label, seconds = arg[1] or _VERSION, tonumber(arg[2] or "1.5")

-- Both sides must agree on what they measure; the binding users call must
-- give exactly the C API binding's table.
local diff = 0
for _, s in ipairs(samples) do
  local a, b, c = classify(s), ref(s), core.classify(s)
  for _, k in ipairs{ "code", "enhanced", "text", "outcome", "reason", "action", "retry",
                      "explanation" } do
    if a[k] ~= c[k] then
      diff = diff + 1
      io.stderr:write(("differs: %q %s: smtpkit.classify=%s core.classify=%s\n"):format(s, k,
        tostring(a[k]), tostring(c[k])))
    end
  end
  if a.reason ~= b.reason or a.outcome ~= b.outcome or a.action ~= b.action then
    diff = diff + 1
    io.stderr:write(("differs: %q C=%s/%s Lua=%s/%s\n"):format(s, a.outcome, a.reason,
      b.outcome, b.reason))
  end
end

-- Classifications per second of f over one slice of `budget` seconds.
local function slice(f, budget)
  local n, clock = #samples, os.clock
  local count, t0 = 0, clock()
  repeat
    for _ = 1, 20 do
      for i = 1, n do f(samples[i]) end
    end
    count = count + 20 * n
  until clock() - t0 >= budget
  return count / (clock() - t0)
end

-- Each side runs in ROUNDS slices, interleaved (binding, pure-Lua, binding,
-- ...), after a warm-up (LuaJIT traces), and keeps its best slice: load from
-- other processes on a shared machine then slows both sides alike instead of
-- whichever happened to run during it.
local ROUNDS = 5
local function rates(fs)
  local best = {}
  for i, f in ipairs(fs) do
    slice(f, 0.05)
    best[i] = 0
  end
  for _ = 1, ROUNDS do
    for i, f in ipairs(fs) do best[i] = math.max(best[i], slice(f, seconds / ROUNDS)) end
  end
  return best
end

local sides = { classify, ref }
if classify ~= core.classify then sides[3] = core.classify end
local r = rates(sides)
local c, l = r[1], r[2]
local via = classify == core.classify and "C API" or "FFI"
print(("%-8s binding  %12.0f classifications/s (%s)"):format(label, c, via))
if r[3] then
  print(("%-8s C API    %12.0f classifications/s (smtpkit.core.classify: %.1f x)"):format(label,
    r[3], r[3] / l))
end
print(("%-8s pure-Lua %12.0f classifications/s"):format(label, l))
print(("%-8s ratio    %12.1f x   (%d samples, %d disagree)"):format(label, c / l, #samples, diff))
io.stdout:flush()
os.exit(diff == 0 and 0 or 3)
