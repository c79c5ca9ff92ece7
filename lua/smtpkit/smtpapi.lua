--- SendGrid X-SMTPAPI headers: validate, encode (fold), build, templates.
--
-- Validation and encoding run in C (csrc/smtpapi.c, cJSON); this module adds
-- the builder and the templates. Facts and sources:
-- ../shared/reference/smtpapi.md.
--
--     local smtpapi = require "smtpkit.smtpapi"
--     local ok, warnings = smtpapi.validate(text)          -- or nil, problems
--     local value = smtpapi.encode{ to = { "a@example.com" } }
--     local h = smtpapi.new():add_to("a@example.com")
--                 :apply("disable_click_tracking"):header()
--
-- A problem is `{path=, message=, severity="error"|"warning", line=,
-- column=, excerpt=}` (`tostring(p)` gives one line). Paths look like
-- `filters.clicktrack.settings.enable` or `sub["-name-"][2]`: keys that are
-- not identifiers go in brackets as JSON strings, array indexes are 0-based,
-- "" is the whole header. Lists of problems have `kind = "smtpapi"`, a
-- `message` that sums them up (`tostring(list)` gives it), `errors` and
-- `warnings` (totals) and `dropped` (problems past the first 100, counted
-- but not listed); errors come first in the list.
-- @module smtpkit.smtpapi
local core = require "smtpkit.core"

local M = {}
local unpack = table.unpack or unpack -- luacheck: ignore 143

--- The value that stands for JSON null in tables (`smtpapi.null`).
M.null = core.smtpapi_null

local ARRAY_MT = core.smtpapi_array_mt
local OBJECT_MT = { __jsontype = "object" }

--- Marks `t` (default: a new table) as a JSON array, so that it is written
-- as `[]` even when empty. Returns `t`.
function M.array(t) return setmetatable(t or {}, ARRAY_MT) end

--- Marks `t` (default: a new table) as a JSON object. Returns `t`.
function M.object(t) return setmetatable(t or {}, OBJECT_MT) end

local problem_mt = {
  __tostring = function(p)
    local s = (p.path ~= "" and (p.path .. ": ") or "") .. p.message
    if p.line then
      local at = ("line %d, column %d"):format(p.line, p.column)
      if not p.message:find(at, 1, true) then s = s .. " (" .. at .. ")" end
    end
    return s
  end,
}

local list_mt = { __tostring = function(l) return l.message end }

local function finish(list)
  -- errors first, each group in the order found (a stable sort by hand)
  local errs, warns = {}, {}
  for _, p in ipairs(list) do
    local into = p.severity == "error" and errs or warns
    into[#into + 1] = p
  end
  for i, p in ipairs(errs) do list[i] = p end
  for i, p in ipairs(warns) do list[#errs + i] = p end
  local errors, warnings = 0, 0
  for _, p in ipairs(list) do
    setmetatable(p, problem_mt)
    if p.severity == "error" then errors = errors + 1 else warnings = warnings + 1 end
  end
  list.kind = "smtpapi"
  local first
  for _, p in ipairs(list) do
    if p.severity == "error" then first = p break end
  end
  first = first or list[1]
  if first then
    local more = #list - 1 + (list.dropped or 0)
    list.message = (errors > 0 and "invalid X-SMTPAPI header: " or "X-SMTPAPI header warning: ")
      .. tostring(first) .. (more > 0 and (" (and %d more)"):format(more) or "")
  else
    list.message = "no problems"
  end
  -- totals over all problems, the dropped ones too (set by the C side)
  list.errors, list.warnings = list.errors or errors, list.warnings or warnings
  return setmetatable(list, list_mt)
end

local Builder = {}
Builder.__index = Builder

local function now_of(opts)
  if opts ~= nil and type(opts) ~= "table" then
    error("smtpapi: options must be a table", 3)
  end
  return opts and opts.now or os.time()
end

--- Compact JSON text for a table (keys sorted) or a builder.
-- @return text, or `nil, problems` (a value JSON cannot hold)
function M.to_json(value)
  if getmetatable(value) == Builder then value = value._h end
  local s, problems = core.smtpapi_to_json(value)
  if not s then return nil, finish(problems) end
  return s
end

local function text_of(value, fname)
  if getmetatable(value) == Builder then value = value._h end
  local t = type(value)
  if t == "string" then return value end
  if t == "table" then
    local s, problems = core.smtpapi_to_json(value)
    if not s then return nil, finish(problems) end
    return s
  end
  error(("smtpapi.%s: JSON text, a table or a builder expected, got %s"):format(fname, t), 3)
end

--- Validates a header value (folded or not, with or without the
-- `X-SMTPAPI:` name), a table or a builder.
-- @param value the text
-- @tparam[opt] table opts `now` (UNIX time the send_at horizon counts from;
-- default `os.time()`)
-- @return `true, warnings` or `nil, problems` (errors and warnings)
function M.validate(value, opts)
  local now = now_of(opts)
  local text, problems = text_of(value, "validate")
  if not text then return nil, problems end
  local ok, list = core.smtpapi_validate(text, now)
  return ok, finish(list)
end

--- Validates and decodes a header value into Lua tables (JSON null is
-- `smtpapi.null`; empty arrays carry the `smtpapi.array` mark).
-- @return `value, warnings` or `nil, problems`
function M.decode(text, opts)
  if type(text) ~= "string" then
    error("smtpapi.decode: string expected, got " .. type(text), 2)
  end
  local v, list = core.smtpapi_decode(text, now_of(opts))
  return v, finish(list)
end

--- Encodes a header value: validated, compact, ASCII only, folded with
-- CRLF + space between JSON tokens (lines <= 78 where tokens allow, never
-- more than 998; the first line counts `opts.name_len`, default 11 for
-- "X-SMTPAPI: ").
-- @param value JSON text (UTF-8 allowed), a table or a builder
-- @tparam[opt] table opts `now`, `name_len`
-- @return `header_value, warnings` or `nil, problems`
function M.encode(value, opts)
  local now = now_of(opts)
  if getmetatable(value) == Builder then value = value._h end
  local t = type(value)
  if t ~= "string" and t ~= "table" then
    error("smtpapi.encode: JSON text, a table or a builder expected, got " .. t, 2)
  end
  local name_len = opts and opts.name_len
  if name_len ~= nil and (type(name_len) ~= "number" or name_len < 0 or name_len > 998
      or name_len % 1 ~= 0) then
    error("smtpapi.encode: opts.name_len must be an integer from 0 to 998", 2)
  end
  local h, list = core.smtpapi_encode(value, now, name_len)
  return h, finish(list)
end

-- ---- merging ----------------------------------------------------------

local function is_list(t)
  local mt = getmetatable(t)
  if mt and mt.__jsontype then return mt.__jsontype == "array" end
  local n = #t
  if n == 0 then return false end
  for k in pairs(t) do
    if type(k) ~= "number" or k < 1 or k > n or k % 1 ~= 0 then return false end
  end
  return true
end

local function is_empty(t) return next(t) == nil end

local function copy(v)
  if type(v) ~= "table" then return v end
  local c = {}
  for k, x in pairs(v) do c[k] = copy(x) end
  local mt = getmetatable(v)
  if mt == ARRAY_MT or mt == OBJECT_MT then setmetatable(c, mt) end
  return c
end

-- SendGrid documents strings only for substitution values and unique
-- arguments: numbers (integers without ".0", also under LuaJIT) and
-- booleans given to the builder are written as strings.
local function as_string(v)
  if type(v) == "number" then
    if v % 1 == 0 and v > -2 ^ 53 and v < 2 ^ 53 then return ("%d"):format(v) end
    return ("%.17g"):format(v)
  end
  if type(v) == "boolean" then return tostring(v) end
  return v
end

local function append(a, b)
  local r = M.array()
  for _, x in ipairs(a) do r[#r + 1] = copy(x) end
  for _, x in ipairs(b) do r[#r + 1] = copy(x) end
  return r
end

local function merge2(a, b)
  if b == nil then return copy(a) end
  if a == nil then return copy(b) end
  local ta, tb = type(a) == "table", type(b) == "table"
  if ta and tb then
    local la, lb = is_list(a) or is_empty(a), is_list(b) or is_empty(b)
    if is_empty(a) then return copy(b) end
    if is_empty(b) then return copy(a) end
    if la and lb then return append(a, b) end
    if not la and not lb then
      local r = copy(a)
      for k, v in pairs(b) do r[k] = merge2(a[k], v) end
      return r
    end
    return copy(b)
  end
  -- a list and a scalar (a category string, say): the scalar joins the list
  if ta and is_list(a) and not tb then return append(a, { b }) end
  if tb and is_list(b) and not ta then return append({ a }, b) end
  return copy(b)
end

--- Merges partial headers left to right: objects merge key by key, lists
-- append, a scalar and a list make a list, otherwise later values win.
-- The arguments are not modified.
-- @return a new table
function M.merge(...)
  local r = {}
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if getmetatable(v) == Builder then v = v._h end
    if v ~= nil then
      if type(v) ~= "table" then error("smtpapi.merge: tables expected", 2) end
      r = merge2(r, v)
    end
  end
  return r
end

-- ---- templates --------------------------------------------------------

local registry = {}

--- The registered templates: name -> function(...) returning a partial
-- header table. Read it; add with `register_template`.
M.templates = setmetatable({}, {
  __index = registry,
  __newindex = function() error("smtpapi.templates: use smtpapi.register_template", 2) end,
  __pairs = function() return next, registry, nil end,
})

--- Registers a template: `fn(...)` returns a partial header table.
-- A name can be registered once (errors otherwise).
function M.register_template(name, fn)
  if type(name) ~= "string" or name == "" then
    error("smtpapi.register_template: a name (string) expected", 2)
  end
  if type(fn) ~= "function" then
    error("smtpapi.register_template: a function expected", 2)
  end
  if registry[name] then
    error(("smtpapi.register_template: %q is already registered"):format(name), 2)
  end
  registry[name] = fn
end

--- The partial header table of one template.
function M.template(name, ...)
  local fn = registry[name]
  if not fn then error(("smtpapi: unknown template %q"):format(tostring(name)), 2) end
  local t = fn(...)
  if type(t) ~= "table" then
    error(("smtpapi: template %q returned %s, not a table"):format(name, type(t)), 2)
  end
  return t
end

local function filter(name, settings)
  return { filters = { [name] = { settings = settings } } }
end

local function check_type(fname, i, v, want)
  if type(v) ~= want then
    error(("smtpapi.%s: argument %d must be a %s, got %s"):format(fname, i, want, type(v)), 4)
  end
end

M.register_template("disable_click_tracking", function()
  return filter("clicktrack", { enable = 0 })
end)
M.register_template("disable_open_tracking", function()
  return filter("opentrack", { enable = 0 })
end)
M.register_template("bypass_list_management", function()
  return filter("bypass_list_management", { enable = 1 })
end)
M.register_template("footer", function(o)
  check_type("footer", 1, o, "table")
  if o.text == nil and o.html == nil then
    error("smtpapi.footer: give text= and/or html=", 3)
  end
  return filter("footer", { enable = 1, ["text/plain"] = o.text, ["text/html"] = o.html })
end)
M.register_template("google_analytics", function(o)
  check_type("google_analytics", 1, o, "table")
  local s = { enable = 1 }
  for _, k in ipairs { "source", "medium", "term", "content", "campaign" } do
    local v = o[k] or o["utm_" .. k]
    if v ~= nil then s["utm_" .. k] = v end
  end
  return filter("ganalytics", s)
end)
M.register_template("unsubscribe_group", function(id, display)
  check_type("unsubscribe_group", 1, id, "number")
  local t = { asm_group_id = id }
  if display ~= nil then
    check_type("unsubscribe_group", 2, display, "table")
    t.asm_groups_to_display = M.array(copy(display))
  end
  return t
end)
M.register_template("schedule", function(at)
  if type(at) == "number" then return { send_at = at } end
  check_type("schedule", 1, at, "table")
  return { send_each_at = M.array(copy(at)) }
end)
M.register_template("categories", function(list)
  if type(list) == "string" then list = { list } end
  check_type("categories", 1, list, "table")
  return { category = M.array(copy(list)) }
end)
M.register_template("mail_merge", function(records, fields)
  check_type("mail_merge", 1, records, "table")
  fields = fields or {}
  check_type("mail_merge", 2, fields, "table")
  -- fields: { tag = "record field" } or a list of record fields (tag "-field-")
  local map, tags = {}, {}
  for k, v in pairs(fields) do
    if type(k) == "number" then map["-" .. v .. "-"] = v else map[k] = v end
  end
  for tag in pairs(map) do tags[#tags + 1] = tag end
  table.sort(tags)
  local to, sub = M.array(), {}
  for _, tag in ipairs(tags) do sub[tag] = M.array() end
  for i, r in ipairs(records) do
    if type(r) ~= "table" then error(("smtpapi.mail_merge: record %d is not a table"):format(i), 3) end
    local addr = r.email or r.to or r.address
    if type(addr) ~= "string" then
      error(("smtpapi.mail_merge: record %d has no email (string)"):format(i), 3)
    end
    to[#to + 1] = addr
    for _, tag in ipairs(tags) do
      local v = r[map[tag]]
      if v == nil then v = "" end
      v = as_string(v)
      if type(v) ~= "string" then
        error(("smtpapi.mail_merge: record %d field %q is a %s"):format(i, map[tag], type(v)), 3)
      end
      sub[tag][#sub[tag] + 1] = v
    end
  end
  local t = { to = to }
  if #tags > 0 then t.sub = sub end
  return t
end)

local function resolve(entry, fname)
  if type(entry) == "string" then return M.template(entry) end
  if getmetatable(entry) == Builder then return entry._h end
  if type(entry) == "table" and type(entry[1]) == "string" and registry[entry[1]] then
    return M.template(entry[1], unpack(entry, 2))
  end
  if type(entry) == "table" then return entry end
  error(("smtpapi.%s: a template name, {name, args...}, a table or a builder expected"):format(fname), 3)
end

--- Composes templates and partial headers, in order, then validates.
-- Each entry: a template name, `{name, arg1, ...}`, a partial header
-- table or a builder.
-- @tparam table entries
-- @tparam[opt] table opts `now`
-- @return `header_table, warnings` or `nil, problems`
function M.compose(entries, opts)
  if type(entries) ~= "table" then error("smtpapi.compose: a list expected", 2) end
  local r = {}
  for _, e in ipairs(entries) do r = merge2(r, resolve(e, "compose")) end
  local ok, problems = M.validate(r, opts)
  if not ok then return nil, problems end
  return r, problems
end

-- ---- builder ----------------------------------------------------------

local function arg(fname, i, v, want, opt)
  if v == nil and opt then return end
  local t = type(v)
  for w in want:gmatch("[^|]+") do if t == w then return end end
  error(("smtpapi builder %s: argument %d must be %s, got %s"):format(fname, i, want, t), 3)
end

--- A new builder (chainable methods, the official helper libraries'
-- vocabulary in snake_case). `init`: a partial header table to start from
-- (copied).
function M.new(init)
  arg("new", 1, init, "table", true)
  return setmetatable({ _h = init and copy(init) or {} }, Builder)
end

--- True when `v` is a builder.
function M.is_builder(v) return getmetatable(v) == Builder end

--- The builder returned by `smtpapi.new()`: every method but `json`,
-- `header`, `validate` and `table` returns the builder, so calls chain.
-- Arguments of the wrong type raise an error.
-- @type Builder

local function list_of(v)
  if type(v) == "table" then return copy(v) end
  return { v }
end

local function push(h, key, v)
  local l = h[key]
  if type(l) ~= "table" then
    l = M.array(l ~= nil and { l } or nil)
    h[key] = l
  end
  l[#l + 1] = v
end

local function format_address(addr, name)
  if name == nil then return addr end
  if name:match("^[%w !#$%%&'*+/=?^_`{|}~.-]*$") then
    return name .. " <" .. addr .. ">"
  end
  return '"' .. name:gsub('[\\"]', "\\%0") .. '" <' .. addr .. ">"
end

--- Adds one address (with an optional display name) or a list of them.
function Builder:add_to(addr, name)
  arg("add_to", 1, addr, "string|table")
  arg("add_to", 2, name, "string", true)
  if type(addr) == "table" then
    for _, a in ipairs(addr) do push(self._h, "to", a) end
  else
    push(self._h, "to", format_address(addr, name))
  end
  return self
end

--- Replaces the recipients.
function Builder:set_tos(list)
  arg("set_tos", 1, list, "string|table")
  self._h.to = M.array(list_of(list))
  return self
end

--- Appends one value (or a list) to a substitution tag.
-- (numbers are written as strings: SendGrid takes strings only)
function Builder:add_substitution(tag, value)
  arg("add_substitution", 1, tag, "string")
  arg("add_substitution", 2, value, "string|number|table")
  self._h.sub = self._h.sub or {}
  for _, v in ipairs(list_of(value)) do push(self._h.sub, tag, as_string(v)) end
  return self
end

--- Replaces all substitutions: `{ tag = { value, ... } }` (each list is
-- written as a JSON array, even when empty).
function Builder:set_substitutions(t)
  arg("set_substitutions", 1, t, "table")
  local sub = copy(t)
  for k, v in pairs(sub) do
    if type(v) == "table" and getmetatable(v) == nil then sub[k] = M.array(v) end
  end
  self._h.sub = sub
  return self
end

--- Sets a section (deprecated by SendGrid: validation warns).
function Builder:add_section(tag, text)
  arg("add_section", 1, tag, "string")
  arg("add_section", 2, text, "string")
  self._h.section = self._h.section or {}
  self._h.section[tag] = text
  return self
end

function Builder:set_sections(t)
  arg("set_sections", 1, t, "table")
  self._h.section = copy(t)
  return self
end

--- Adds a category or a list of categories.
function Builder:add_category(c)
  arg("add_category", 1, c, "string|table")
  for _, v in ipairs(list_of(c)) do push(self._h, "category", v) end
  return self
end

function Builder:set_categories(c)
  arg("set_categories", 1, c, "string|table")
  self._h.category = M.array(list_of(c))
  return self
end

function Builder:add_unique_arg(k, v)
  arg("add_unique_arg", 1, k, "string")
  arg("add_unique_arg", 2, v, "string|number|boolean")
  self._h.unique_args = self._h.unique_args or {}
  self._h.unique_args[k] = as_string(v) -- SendGrid takes strings only
  return self
end

function Builder:set_unique_args(t)
  arg("set_unique_args", 1, t, "table")
  self._h.unique_args = copy(t)
  return self
end

--- Sets one filter setting: `add_filter("clicktrack", "enable", 0)`.
function Builder:add_filter(name, setting, value)
  arg("add_filter", 1, name, "string")
  arg("add_filter", 2, setting, "string")
  arg("add_filter", 3, value, "string|number|boolean")
  local f = self._h.filters or {}
  self._h.filters = f
  f[name] = f[name] or {}
  f[name].settings = f[name].settings or {}
  f[name].settings[setting] = value
  return self
end

function Builder:set_filters(t)
  arg("set_filters", 1, t, "table")
  self._h.filters = copy(t)
  return self
end

--- Schedules the message (clears send_each_at: both together are invalid).
function Builder:set_send_at(ts)
  arg("set_send_at", 1, ts, "number")
  self._h.send_at = ts
  self._h.send_each_at = nil
  return self
end

--- One time per `to` address (clears send_at).
function Builder:set_send_each_at(list)
  arg("set_send_each_at", 1, list, "table")
  self._h.send_each_at = M.array(copy(list))
  self._h.send_at = nil
  return self
end

function Builder:add_send_each_at(ts)
  arg("add_send_each_at", 1, ts, "number")
  push(self._h, "send_each_at", ts)
  self._h.send_at = nil
  return self
end

function Builder:set_batch_id(id)
  arg("set_batch_id", 1, id, "string")
  self._h.batch_id = id
  return self
end

function Builder:set_asm_group_id(id)
  arg("set_asm_group_id", 1, id, "number")
  self._h.asm_group_id = id
  return self
end

function Builder:set_asm_groups_to_display(list)
  arg("set_asm_groups_to_display", 1, list, "table")
  self._h.asm_groups_to_display = M.array(copy(list))
  return self
end

function Builder:add_asm_group_to_display(id)
  arg("add_asm_group_to_display", 1, id, "number")
  push(self._h, "asm_groups_to_display", id)
  return self
end

function Builder:set_ip_pool(name)
  arg("set_ip_pool", 1, name, "string")
  self._h.ip_pool = name
  return self
end

--- Merges a template (by name, with its arguments), a partial header table
-- or another builder into this one (lists append, later scalars win).
function Builder:apply(what, ...)
  local part
  if type(what) == "string" then
    part = M.template(what, ...)
  else
    part = resolve(what, "apply")
  end
  self._h = merge2(self._h, part)
  return self
end

--- A copy of the header as a Lua table.
function Builder:table() return copy(self._h) end

--- Compact JSON, keys sorted (stable). @return text or `nil, problems`
function Builder:json() return M.to_json(self._h) end

--- @return `true, warnings` or `nil, problems`
function Builder:validate(opts) return M.validate(self._h, opts) end

--- The validated, encoded header value. @return value, warnings or `nil, problems`
function Builder:header(opts) return M.encode(self._h, opts) end

Builder.__tostring = function(b) return b:json() or "<invalid X-SMTPAPI builder>" end

return M
