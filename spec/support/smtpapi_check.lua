--- Assertions on smtpkit.smtpapi.validate for the X-SMTPAPI specs
-- (smtpapi_spec.lua, smtpapi_extra_spec.lua). Every check validates with
-- opts.now fixed at NOW, so time-dependent rules (send_at) are stable.
local assert = require "luassert"
local smtpapi = require "smtpkit.smtpapi"

local M = {}

M.NOW = 1776384000 -- 2026-04-17T00:00:00Z
M.opts = { now = M.NOW }

--- The first problem whose path is `path` (and severity, when given).
function M.find(problems, path, severity)
  for _, p in ipairs(problems) do
    if p.path == path and (severity == nil or p.severity == severity) then return p end
  end
end

--- Expects `text` to be valid with no warning at all.
function M.clean(text)
  local ok, w = smtpapi.validate(text, M.opts)
  assert(ok, tostring(w))
  assert.equal(0, #w, tostring(w))
end

--- Expects an error at `path` whose message contains `pattern` (plain).
function M.fails(text, path, pattern)
  local ok, problems = smtpapi.validate(text, M.opts)
  assert.is_nil(ok, "expected an error at " .. path .. " for " .. text:sub(1, 200))
  local p = M.find(problems, path, "error")
  assert(p, ("no error at %q; got: %s"):format(path, tostring(problems)))
  if pattern then
    assert(p.message:find(pattern, 1, true), ("%q not in %q"):format(pattern, p.message))
  end
  return p, problems
end

--- Expects validity with a warning at `path` containing `pattern`.
function M.warns(text, path, pattern)
  local ok, w = smtpapi.validate(text, M.opts)
  assert(ok, tostring(w))
  local p = M.find(w, path, "warning")
  assert(p, ("no warning at %q; got: %s"):format(path, tostring(w)))
  if pattern then
    assert(p.message:find(pattern, 1, true), ("%q not in %q"):format(pattern, p.message))
  end
  return p
end

return M
