--- smtpkit: send mail over SMTP and TLS, classify what servers answer,
-- validate X-SMTPAPI headers.
--
-- This file wires the parts together; each part lives in its own module and
-- is loaded on first use (`smtpkit.smtpapi` is `require "smtpkit.smtpapi"`).
-- @module smtpkit
local core = require "smtpkit.core"

local M = {
  _VERSION = core.version,
  --- Parses exactly one complete SMTP reply (CRLF line ends).
  -- @function parse_reply
  -- @treturn table `{code=, enhanced=, lines={...}, text=}` or `nil, err`
  parse_reply = core.parse_reply,
  --- An incremental reply parser for bytes as they come off the wire:
  -- `p:feed(bytes)` returns the list of replies these bytes completed.
  -- @function reply_parser
  reply_parser = core.reply_parser,
  --- Classifies a reply (a string in any wrapping, or a parsed reply table).
  -- On LuaJIT the same function through the FFI (smtpkit.classify_ffi).
  -- @function classify
  -- @treturn table `{code=, enhanced=, text=, outcome=, reason=, action=, retry=, explanation=}`
  classify = require("smtpkit.classify_ffi") or core.classify,
}

--- Opens a connection (lua/smtpkit/client.lua): `smtpkit.connect(opts)` ->
-- client | nil, err; `client:send(msg)`, `client:close()`.
function M.connect(opts) return require("smtpkit.client").connect(opts) end
--- Connects, sends one message, closes: `smtpkit.send(opts, msg)`.
function M.send(opts, msg) return require("smtpkit.client").send(opts, msg) end

-- Submodules reachable as fields, loaded when first touched.
local submodules = {
  smtpapi = true, retry = true, outbox = true, message = true,
}

return setmetatable(M, {
  __index = function(t, k)
    if submodules[k] then
      local mod = require("smtpkit." .. k)
      rawset(t, k, mod)
      return mod
    end
  end,
})
