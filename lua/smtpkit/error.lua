--- smtpkit.error: the error object every smtpkit function returns as the
-- second value of `nil, err`.
--
-- An error is a table `{kind=, message=, reply=, classification=}` whose
-- `tostring` is its message. `kind` is one of the stable names in `kinds`;
-- `reply` (`{code=, enhanced=, text=, lines=}`) and `classification`
-- (`{outcome=, reason=, action=, retry=, explanation=}`) are present when a
-- server reply caused the error. The metatable is shared with the C core
-- (`core.error_mt`), so errors made in C and in Lua are the same kind of object.
-- @module smtpkit.error
local core = require "smtpkit.core"

local mt = core.error_mt

local M = {}

--- The kinds, each `true`: dns, connect, timeout, tls, tls_required,
-- protocol, auth, validation, server.
M.kinds = {
  dns = true, connect = true, timeout = true, tls = true, tls_required = true,
  protocol = true, auth = true, validation = true, server = true,
}

--- Makes an error.
-- @tparam string kind one of `kinds`
-- @tparam string message plain words
-- @tparam[opt] table fields more fields (reply, classification, ...)
-- @treturn table the error
function M.new(kind, message, fields)
  if not M.kinds[kind] then
    error("unknown error kind '" .. tostring(kind) .. "'", 2)
  end
  if type(message) ~= "string" then
    error("error message must be a string", 2)
  end
  local e = {}
  if fields then
    for k, v in pairs(fields) do e[k] = v end
  end
  e.kind = kind
  e.message = message
  return setmetatable(e, mt)
end

--- True when v is an smtpkit error.
function M.is(v)
  return type(v) == "table" and getmetatable(v) == mt
end

--- Returns `nil, err`: `return error.fail("validation", "no recipients")`.
function M.fail(kind, message, fields)
  return nil, M.new(kind, message, fields)
end

M.metatable = mt

--- How a transaction that failed (err) is returned by `send`, the same for
-- both transports: a result carrying err (`result.error`) when it still
-- says something definite - the end-of-data reply never came (unknown,
-- maybe delivered), or the server ended the transaction with a reply such
-- as 421 - else nil, err with `err.result` the partial result (if any).
-- With err nil: the result as it is.
function M.outcome(partial, err)
  if err == nil then return partial end
  if not M.is(err) then setmetatable(err, mt) end
  if partial and (partial.maybe_delivered or (err.kind == "server" and partial.complete)) then
    partial.error = err
    return partial
  end
  err.result = partial
  return nil, err
end

local shown = { ["\r"] = "\\r", ["\n"] = "\\n", ["\t"] = "\\t", ['"'] = '\\"', ["\\"] = "\\\\" }
--- s in double quotes for a message, every control byte written as an
-- escape (\r, \n, \t, \ddd), so the message stays on one line whatever s
-- holds (string.format's %q writes a line feed as a backslash and a real
-- line break).
function M.quote(s)
  return '"' .. tostring(s):gsub('[%c"\\]', function(c)
    return shown[c] or ("\\%03d"):format(c:byte())
  end) .. '"'
end

return M
