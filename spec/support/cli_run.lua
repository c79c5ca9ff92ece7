--- Running the smtpkit command as a user does, for the command's specs
-- (cli_spec.lua, cli_extra_spec.lua): a spawned process per call (bin/smtpkit
-- under the interpreter of this run, SMTPKIT_LUA), its stdout, stderr and
-- exit code.
local assert = require "luassert"
local servers = require "support.servers"

local M = {}

local LUA = os.getenv("SMTPKIT_LUA") or "lua5.4"
local q, slurp, spit = servers.q, servers.read_file, servers.write_file

local scratch
--- A scratch directory for this spec run (removed by servers.stop_all()).
function M.tmp()
  scratch = scratch or servers.tmpdir()
  return scratch
end

local counter = 0
--- Runs bin/smtpkit with `args`; o.stdin (text), o.env ({NAME=value}).
-- SMTPKIT_PASSWORD and SMTPKIT_OUTBOX are unset unless o.env sets them.
-- @treturn table { code=, out=, err= }
function M.run(args, o)
  o = o or {}
  counter = counter + 1
  local base = M.tmp() .. "/run" .. counter
  local stdin = spit(base .. ".in", o.stdin or "")
  local parts = { "env -u SMTPKIT_PASSWORD -u SMTPKIT_OUTBOX" }
  for k, v in pairs(o.env or {}) do parts[#parts + 1] = k .. "=" .. q(v) end
  parts[#parts + 1] = LUA .. " bin/smtpkit"
  for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
  local cmd = table.concat(parts, " ") .. " <" .. q(stdin) .. " >" .. q(base .. ".out")
    .. " 2>" .. q(base .. ".err") .. "; echo $?"
  local p = assert(io.popen(cmd))
  local code = tonumber(p:read("*a"):match("(%d+)%s*$"))
  p:close()
  return { code = code, out = slurp(base .. ".out") or "", err = slurp(base .. ".err") or "" }
end

--- The non-empty lines of s.
function M.lines(s)
  local t = {}
  for l in s:gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

--- One clear line on stderr (matching pattern, when given) and the expected
-- exit code; and nothing on stdout unless o.stdout is true (--json prints
-- its document there too).
function M.assert_one_line(r, code, pattern, o)
  assert.are.equal(code, r.code, "exit code; stderr: " .. r.err)
  if not (o and o.stdout) then assert.are.equal("", r.out) end
  local l = M.lines(r.err)
  assert.are.equal(1, #l, "stderr should be one line: " .. r.err)
  if pattern then assert.truthy(l[1]:find(pattern), l[1] .. " should match " .. pattern) end
end

return M
