--- The outbox's default store: a directory on disk, no server needed.
--
-- Layout of `dir`:
--
--     dir/msg/<id>         one file per message (below)
--     dir/suppressed/<a>   one file per suppressed address (JSON)
--     dir/state/<name>     small named JSON documents (the policy's domain table)
--     dir/tmp/             temporary files, renamed into place (those left
--                          by a writer that died are removed by `open` after
--                          an hour)
--     dir/.lock            flock(2) held by the one runner
--
-- A message file is `smtpkit-outbox 1\n`, one line of JSON (the record), a
-- newline, then the message bytes as submitted. Every write goes to a
-- temporary file in dir/tmp, is fsync'ed, renamed over its final name, and the
-- directory is fsync'ed: a reader sees the old file or the new one, never a
-- mix, and a write that returned survives a crash or a power cut.
--
-- This module implements the store interface documented in
-- docs/outbox-store.md; a Redis store implements the same methods.
-- @module smtpkit.outbox_dir
local core = require "smtpkit.core"
local json = require "smtpkit.json"
local fs = core.fs

local M = {}

local MAGIC = "smtpkit-outbox 1"
local RECORD = { bytes = true, strict = true }   -- json.encode's options for records
local CHUNK = 65536

-- -------------------------------------------------------------------------
-- JSON: records are ours, their strings byte strings (kept as they are), and
-- a value JSON cannot hold is a mistake to raise, not to store as null.

--- Encodes a plain Lua value as one line of JSON.
function M.encode(v)
  return json.encode(v, RECORD)
end

--- Decodes JSON text; returns the value, or nil and a message.
M.decode = json.decode

-- -------------------------------------------------------------------------
-- Errors

local err_mt = { __tostring = function(e) return e.message end }
local function err(kind, message, extra)
  local e = setmetatable({ kind = kind, message = message }, err_mt)
  for k, v in pairs(extra or {}) do e[k] = v end
  return e
end
M.err = err

-- -------------------------------------------------------------------------
-- Durable writes

-- Writes `parts` (strings, or functions returning the next chunk or nil)
-- to a temporary file, fsyncs it, renames it to `path`, fsyncs the directory.
local function write_atomic(self, dir, name, parts)
  self.seq = self.seq + 1
  local tmp = ("%s/tmp/%s.%d.%s.tmp"):format(self.dir, name, self.seq, self.token)
  local f, e = io.open(tmp, "wb")
  if not f then return nil, err("store", "outbox: cannot write: " .. tostring(e)) end
  local ok, werr = true, nil
  for _, p in ipairs(parts) do
    if type(p) == "string" then
      ok, werr = f:write(p)
    else
      while ok do
        local chunk, cerr = p()
        if chunk == nil then
          if cerr ~= nil then ok, werr = false, cerr end
          break
        end
        ok, werr = f:write(chunk)
      end
    end
    if not ok then break end
  end
  if ok then ok, werr = f:flush() end
  f:close()
  if ok then ok, werr = fs.fsync(tmp) end
  local final = dir .. "/" .. name
  if ok then ok, werr = os.rename(tmp, final) end
  if ok then ok, werr = fs.fsync(dir) end
  if not ok then
    os.remove(tmp)
    return nil, err("store", "outbox: cannot write " .. final .. ": " .. tostring(werr))
  end
  return true
end

local function read_head(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local magic = f:read("*l")
  local meta = f:read("*l")
  if magic ~= MAGIC or not meta then
    f:close()
    return nil, "not an outbox record"
  end
  local rec, derr = M.decode(meta)
  if type(rec) ~= "table" then
    f:close()
    return nil, derr or "bad record"
  end
  local bad = M.check_record(rec, path:match("([^/]*)$"))
  if bad then
    f:close()
    return nil, "damaged record: " .. bad
  end
  return rec, f
end

local STATES = { queued = true, sending = true, deferred = true, delivered = true, bounced = true,
  unknown = true }

--- Why a decoded record cannot be worked (nil when it can): the fields the
-- outbox relies on, with the types it relies on. A file damaged outside the
-- outbox (or written by another program) is skipped by `list` and counted by
-- `damaged`, never allowed to stop a run.
function M.check_record(rec, id)
  if type(rec.id) ~= "string" or (id and rec.id ~= id) then return "id does not match its file name" end
  if not STATES[rec.state] then return "unknown state " .. tostring(rec.state) end
  if rec.due ~= nil and type(rec.due) ~= "number" then return "due is not a number" end
  for _, k in ipairs({ "created", "updated", "attempts", "sending_since" }) do
    if rec[k] ~= nil and type(rec[k]) ~= "number" then return k .. " is not a number" end
  end
  if type(rec.msg) ~= "table" then return "no msg table" end
  if type(rec.rcpts) ~= "table" or #rec.rcpts == 0 then return "no recipients" end
  for _, rc in ipairs(rec.rcpts) do
    if type(rc) ~= "table" or type(rc.address) ~= "string" or type(rc.status) ~= "string" then
      return "bad recipient entry"
    end
  end
  if rec.history ~= nil and type(rec.history) ~= "table" then return "history is not a list" end
  if rec.retry ~= nil and type(rec.retry) ~= "table" then return "retry state is not a table" end
  if rec.retry and ((rec.retry.first ~= nil and type(rec.retry.first) ~= "number")
    or (rec.retry.attempts ~= nil and type(rec.retry.attempts) ~= "number")) then
    return "bad retry state"
  end
  return nil
end

local function hash32(s)
  local h = 5381
  for i = 1, #s do h = (h * 33 + s:byte(i)) % 4294967296 end
  return ("%08x"):format(h)
end

-- A file name for an address: lower case, unsafe bytes as %XX, long ones
-- cut and completed with a hash.
local function addr_name(address)
  local a = address:lower():gsub("^%s+", ""):gsub("%s+$", "")
  local n = a:gsub("[^%w%.%-_@+]", function(c) return ("%%%02X"):format(c:byte()) end)
  if #n > 200 then n = n:sub(1, 190) .. "~" .. hash32(a) end
  return n
end

local function valid_id(id)
  return type(id) == "string" and id:match("^[%w%-_%.]+$") ~= nil and #id <= 128 and id:sub(1, 1) ~= "."
end

-- -------------------------------------------------------------------------
-- The store

local Store = {}
Store.__index = Store

local function random_token()
  local f = io.open("/dev/urandom", "rb")
  local b = f and f:read(8)
  if f then f:close() end
  if not b or #b < 8 then
    b = tostring(os.time()) .. tostring(os.clock()) .. tostring({})
    return hash32(b) .. hash32(b:reverse())
  end
  return (b:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end
M.random_token = random_token

--- Opens (creating) a directory store.
-- @treturn table the store, or nil, err (kind `store`)
function M.open(dir)
  if type(dir) ~= "string" or dir == "" then error("outbox_dir.open: directory path expected", 2) end
  dir = dir:gsub("/+$", "")
  for _, sub in ipairs({ "", "/msg", "/suppressed", "/state", "/tmp" }) do
    local ok, e = fs.mkdir(dir .. sub)
    if not ok then return nil, err("store", "outbox: " .. e) end
  end
  local self = setmetatable({ dir = dir, seq = 0, token = random_token():sub(1, 8) }, Store)
  self:sweep_tmp()
  return self
end

--- Temporary files older than this (seconds) belong to a write that never
-- finished (its process died): `open` removes them. A live write takes far
-- less, so a concurrent submitter's file is never touched.
M.TMP_STALE = 3600

--- Removes stale temporary files (see TMP_STALE); returns how many.
function Store:sweep_tmp(now)
  if not fs.mtime then return 0 end
  now = now or os.time()
  local names = fs.listdir(self.dir .. "/tmp")
  local n = 0
  for _, name in ipairs(names or {}) do
    local path = self.dir .. "/tmp/" .. name
    local t = name:sub(-4) == ".tmp" and fs.mtime(path)
    if t and now - t > M.TMP_STALE and os.remove(path) then n = n + 1 end
  end
  return n
end

--- A new unique record id: time, then a counter of this store object, then
-- random bytes; so ids sort by submission order (within one process).
function Store:new_id(now)
  self.idseq = (self.idseq or 0) + 1
  return ("%010d-%06d-%s"):format(math.floor(now or os.time()), self.idseq % 1000000, random_token())
end

--- Stores a new record with its message bytes (`body`: a string or a
-- function returning chunks then nil). Durable when it returns true.
function Store:put(rec, body)
  if not valid_id(rec.id) then error("store:put: record id must be [A-Za-z0-9._-]+", 2) end
  if io.open(self.dir .. "/msg/" .. rec.id, "rb") then
    return nil, err("conflict", "outbox: record " .. rec.id .. " exists")
  end
  return write_atomic(self, self.dir .. "/msg", rec.id,
    { MAGIC, "\n", M.encode(rec), "\n", body or "" })
end

--- The record `id` (without its body), or nil, err (kind `not_found`).
function Store:get(id)
  if not valid_id(id) then return nil, err("not_found", "outbox: no message " .. tostring(id)) end
  local rec, f = read_head(self.dir .. "/msg/" .. id)
  if not rec then
    if f then return nil, err("store", "outbox: record " .. id .. ": " .. f) end
    return nil, err("not_found", "outbox: no message " .. id)
  end
  f:close()
  return rec
end

--- The message bytes of record `id`, or nil, err.
function Store:body(id)
  local rec, f = read_head(self.dir .. "/msg/" .. tostring(id))
  if not rec then return nil, err("not_found", "outbox: no message " .. tostring(id)) end
  local b = f:read("*a")
  f:close()
  return b
end

--- An open file positioned at the first byte of the message of record `id`
-- (the caller closes it); a later update does not change what it reads.
function Store:body_reader(id)
  if not valid_id(id) then return nil, err("not_found", "outbox: no message " .. tostring(id)) end
  local rec, f = read_head(self.dir .. "/msg/" .. id)
  if not rec then return nil, err("not_found", "outbox: no message " .. id) end
  return f
end

--- Replaces record `rec.id` durably, keeping its body. With `expect_state`,
-- fails with kind `conflict` unless the stored state is that one (a compare
-- and set: a shared store uses it so that two workers never both claim a
-- message).
function Store:update(rec, expect_state)
  local path = self.dir .. "/msg/" .. tostring(rec.id)
  local old, f = read_head(path)
  if not old then return nil, err("not_found", "outbox: no message " .. tostring(rec.id)) end
  if expect_state and old.state ~= expect_state then
    f:close()
    return nil, err("conflict", ("outbox: message %s is %s, not %s"):format(rec.id, old.state, expect_state))
  end
  local ok, e = write_atomic(self, self.dir .. "/msg", rec.id, { MAGIC, "\n", M.encode(rec), "\n",
    function() return f:read(CHUNK) end })
  f:close()
  return ok, e
end

--- Removes record `id`.
function Store:remove(id)
  if not valid_id(id) then return nil, err("not_found", "outbox: no message " .. tostring(id)) end
  local ok, e = os.remove(self.dir .. "/msg/" .. id)
  if not ok then return nil, err("not_found", "outbox: " .. tostring(e)) end
  fs.fsync(self.dir .. "/msg")
  return true
end

--- Records, without bodies, whose state is `state` (any state when nil),
-- sorted by id (submission order).
function Store:list(state)
  local names, e = fs.listdir(self.dir .. "/msg")
  if not names then return nil, err("store", "outbox: " .. e) end
  table.sort(names)
  local out, damaged = {}, {}
  for _, id in ipairs(names) do
    if valid_id(id) then
      local rec, f = read_head(self.dir .. "/msg/" .. id)
      if rec then
        f:close()
        if state == nil or rec.state == state then out[#out + 1] = rec end
      elseif f then
        damaged[#damaged + 1] = { id = id, why = f }
      end
    end
  end
  self.last_damaged = damaged
  return out
end

--- Message files that are not readable records (damaged outside the outbox,
-- or another program's files), as `{ id =, why = }`: `list` skips them.
function Store:damaged()
  local _, e = self:list()
  if e then return nil, e end
  return self.last_damaged
end

--- Records left in `sending` by a runner that died. The directory store is
-- worked by one runner at a time (the lock), so when the caller holds the
-- lock every `sending` record is stale. (A shared store returns those whose
-- `sending_since` is older than its lease instead.)
function Store:list_stale(now) -- luacheck: no unused args
  return self:list("sending")
end

--- Records in state `queued` or `deferred` whose `due` time is at most `now`,
-- earliest first, at most `limit` of them.
function Store:list_due(now, limit)
  local all, e = self:list()
  if not all then return nil, e end
  local out = {}
  for _, rec in ipairs(all) do
    if (rec.state == "queued" or rec.state == "deferred") and (rec.due or 0) <= now then
      out[#out + 1] = rec
    end
  end
  table.sort(out, function(a, b)
    if a.due ~= b.due then return (a.due or 0) < (b.due or 0) end
    return a.id < b.id
  end)
  if limit and #out > limit then
    for i = #out, limit + 1, -1 do out[i] = nil end
  end
  return out
end

--- Adds `address` to the suppression list with `info` (a plain table:
-- reason, code, text, at, id).
function Store:suppress(address, info)
  info = info or {}
  info.address = address
  return write_atomic(self, self.dir .. "/suppressed", addr_name(address), { M.encode(info) })
end

--- The suppression entry of `address` (case-insensitive), or nil.
function Store:suppressed(address)
  local f = io.open(self.dir .. "/suppressed/" .. addr_name(address), "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  local info = M.decode(s)
  if type(info) ~= "table" or type(info.address) ~= "string" or info.address:lower() ~= address:lower() then
    return nil
  end
  return info
end

--- Removes `address` from the suppression list.
function Store:unsuppress(address)
  local ok = os.remove(self.dir .. "/suppressed/" .. addr_name(address))
  if ok then fs.fsync(self.dir .. "/suppressed") end
  return ok and true or false
end

--- Every suppression entry.
function Store:list_suppressed()
  local names, e = fs.listdir(self.dir .. "/suppressed")
  if not names then return nil, err("store", "outbox: " .. e) end
  table.sort(names)
  local out = {}
  for _, n in ipairs(names) do
    local f = io.open(self.dir .. "/suppressed/" .. n, "rb")
    if f then
      local info = M.decode(f:read("*a"))
      f:close()
      if type(info) == "table" then out[#out + 1] = info end
    end
  end
  return out
end

--- Saves a small named document (e.g. the policy's domain table).
function Store:put_state(name, t)
  if not valid_id(name) then error("store:put_state: bad name", 2) end
  return write_atomic(self, self.dir .. "/state", name, { M.encode(t) })
end

--- Loads a named document saved with put_state, or nil.
function Store:get_state(name)
  if not valid_id(name) then error("store:get_state: bad name", 2) end
  local f = io.open(self.dir .. "/state/" .. name, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return (M.decode(s))
end

--- Takes the runner lock: one runner per directory at a time. Returns a
-- handle with `:unlock()`, or nil, err (kind `locked` when another process
-- holds it). The kernel releases it when the process dies.
function Store:lock(wait)
  local h, e, code = fs.lock(self.dir .. "/.lock", wait)
  if not h then
    return nil, err(code == 11 and "locked" or "store", "outbox: " .. tostring(e))
  end
  return h
end

return M
