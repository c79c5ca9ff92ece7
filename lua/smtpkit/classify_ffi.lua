--- smtpkit.classify on LuaJIT: the same function as the C binding
-- (smtpkit.core.classify, csrc/lua_classify.c), called through the FFI.
--
-- Why it exists: on LuaJIT a classic C function costs more to call and to
-- build its result table through the C API than the classification itself;
-- through the FFI the call stays in the compiled trace, and the table is
-- built here from strings made once (the vocabulary names, the static
-- explanations, the enhanced codes seen) so that a call creates only its
-- `text`. The C code is the very copy the binding runs: core.classify_ffi is
-- the address of csrc/lua_classify.c's ffi_entry. Same answers, same table:
-- spec/classify_spec.lua compares both on every reply it has. Anything but a
-- one-line reply string (parsed reply tables, replies whose text spans lines
-- and so is joined, wrong types) goes to core.classify unchanged.
--
-- Returns false where it cannot apply (PUC Lua: no ffi; a core without the
-- entry or built with another struct layout); init.lua then uses core.classify.
-- @module smtpkit.classify_ffi
local has_ffi, ffi = pcall(require, "ffi")
if not has_ffi then return false end
local core = require "smtpkit.core"
local entry_ud = core.classify_ffi
if type(entry_ud) ~= "userdata" then return false end

-- csrc/classify.h smtpkit_keyed_verdict (enums are int-sized with the
-- compilers the Makefile supports); anonymous, so reloading is harmless.
local verdict_t = ffi.typeof [[
struct {
  struct {
    int code;
    char enhanced[12];
    const char *text;
    size_t text_len;
    int outcome, reason, action, retry;
    const char *explanation;
  } v;
  size_t text_off;
  unsigned enhanced_key;
  int text_lines;
}]]
local entry = ffi.cast(ffi.typeof([[
const struct {
  size_t verdict_size;
  void (*classify)(const char *s, size_t len, $ *out);
} *]], verdict_t), entry_ud)
if tonumber(entry.verdict_size) ~= ffi.sizeof(verdict_t) then return false end

local c_classify, core_classify = entry.classify, core.classify
local out = verdict_t()            -- one, reused (see busy below)
local tonumber, type, sub, ffi_string, ffi_cast = tonumber, type, string.sub, ffi.string, ffi.cast
local uintptr_t = ffi.typeof("uintptr_t")

-- Names indexed by the C enum values (0-based), as the C binding names them.
local vocabulary = core.classify_vocabulary()
local function by_value(names)
  local t = {}
  for i, n in ipairs(names) do t[i - 1] = n end
  return t
end
local outcomes, reasons = by_value(vocabulary.outcomes), by_value(vocabulary.reasons)
local actions = by_value(vocabulary.actions)

-- Explanations are static C strings: keyed by address, a fixed small set.
-- Enhanced codes come from outside bytes: keyed by enhanced_key, at most
-- ENHANCED_CACHE of them are kept (bounded memory); past that, made per call.
local ENHANCED_CACHE = 1024
local explanations, enhanced_names, n_enhanced = {}, {}, 0

local function explanation_of(p)
  if p == nil then return nil end
  local key = tonumber(ffi_cast(uintptr_t, p))
  local e = explanations[key]
  if not e then
    e = ffi_string(p)
    explanations[key] = e
  end
  return e
end

local function enhanced_of(key)
  if key == 0 then return nil end
  local e = enhanced_names[key]
  if not e then
    e = ffi_string(out.v.enhanced)
    if n_enhanced < ENHANCED_CACHE then
      n_enhanced = n_enhanced + 1
      enhanced_names[key] = e
    end
  end
  return e
end

-- `out` is shared by every call: `busy` sends a call made while another one
-- reads it (from a __gc finalizer run by an allocation in between) to the C
-- API binding instead. (Only a memory error could leave it set: every later
-- call would then take that slower path, with the same answers.)
local busy = false

return function(reply)
  if busy or type(reply) ~= "string" then return core_classify(reply) end
  busy = true
  c_classify(reply, #reply, out)
  if out.text_lines ~= 0 then
    busy = false
    return core_classify(reply)
  end
  local v = out.v
  local code, off = v.code, tonumber(out.text_off)
  local t = {
    code = code ~= 0 and code or nil,
    enhanced = enhanced_of(out.enhanced_key),
    text = sub(reply, off + 1, off + tonumber(v.text_len)),
    outcome = outcomes[v.outcome],
    reason = reasons[v.reason],
    action = actions[v.action],
    retry = v.retry ~= 0,
    explanation = explanation_of(v.explanation),
  }
  busy = false
  return t
end
