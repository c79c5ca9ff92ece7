--- Shared pieces of the `smtpkit` command: exit codes, failing with one
-- clear line, JSON output, tables, files, CSV, server options.
-- Internal to the command (`bin/smtpkit`); not a stable API.
-- @module smtpkit.cli.common
local json = require "smtpkit.json"

local M = {}

--- Exit codes of the `smtpkit` command.
-- @table EXIT
M.EXIT = {
  ok = 0,          -- success
  failure = 1,     -- problems found (check-header), a recipient refused (send, bulk)
  usage = 2,       -- unknown option, missing or invalid argument
  input = 3,       -- unreadable file, malformed CSV, JSON, template or header
  network = 4,     -- DNS failure, connection refused, timeout, lost connection
  tls = 5,         -- TLS failure: certificate, host name, handshake, STARTTLS missing
  auth = 6,        -- the server refused the login
  deferred = 7,    -- temporary failure: the message waits in the outbox for a retry
  unavailable = 69, -- a part smtpkit needs is missing (module not built, server package)
  internal = 70,   -- a bug in smtpkit: please report it
}

-- A failure the command reports as one line and an exit code. Raised with
-- error() and caught by smtpkit.cli.main.
local Failure = {}
Failure.__index = Failure
Failure.__tostring = function(f) return f.message end

--- Stops the command: `message` goes to stderr as one line, `exit` is the
-- exit code (a name of `EXIT` or a number), `kind` names it in --json output.
function M.fail(exit, message, kind)
  local code = type(exit) == "number" and exit or M.EXIT[exit] or M.EXIT.failure
  error(setmetatable({ exit = code, message = message, kind = kind or exit }, Failure), 0)
end

function M.is_failure(e)
  return getmetatable(e) == Failure
end

--- Maps an smtpkit error table (`kind`, `message`) to an exit code name.
function M.exit_for_error(err)
  local kind = type(err) == "table" and err.kind or nil
  if kind == "dns" or kind == "connect" or kind == "timeout" or kind == "closed"
     or kind == "network" then
    return "network"
  elseif kind == "tls" or kind == "tls_required" then
    return "tls"
  elseif kind == "auth" then
    return "auth"
  elseif kind == "validation" or kind == "store" then
    -- store: the outbox directory cannot be read or written
    return "input"
  elseif kind == "locked" then
    -- another `outbox run` holds the outbox: the messages still wait
    return "deferred"
  end
  return "failure"
end

-- The library's messages name its Lua options (`tls = "implicit"`,
-- `allow_plaintext_auth`, `cafile`); on the command line the user needs the
-- flags. Each pair: a plain substring of the library's hint, its CLI words.
local FLAG_HINTS = {
  { 'use tls = "implicit" for port 465, or "opportunistic" to allow plaintext',
    "use --tls implicit for port 465, or --tls none|opportunistic to allow plaintext" },
  { "set allow_plaintext_auth to allow it",
    "add --allow-plaintext-auth to allow it, testing only; or use --tls starttls|implicit" },
  { "set cafile to the relay's CA bundle", "pass the relay's CA bundle with --cafile FILE" },
  { "(verify = false)", "(--insecure)" },
}

--- Rewrites an smtpkit error message for the command line: hints that name
-- Lua options name the command's flags instead.
function M.cli_message(msg)
  msg = tostring(msg)
  for _, h in ipairs(FLAG_HINTS) do
    local i, j = msg:find(h[1], 1, true)
    if i then msg = msg:sub(1, i - 1) .. h[2] .. msg:sub(j + 1) end
  end
  return msg
end

--- Fails with an smtpkit error table (`nil, err` from the library).
function M.fail_error(err, context)
  local msg = M.cli_message(tostring(type(err) == "table" and (err.message or err) or err))
  if context and not msg:find(context, 1, true) then msg = context .. ": " .. msg end
  local kind = type(err) == "table" and err.kind or "error"
  M.fail(M.exit_for_error(err), msg, kind)
end

--- Loads an smtpkit module, or fails with exit `unavailable` saying what is missing.
function M.need(name, what)
  local ok, mod = pcall(require, name)
  if not ok then
    M.fail("unavailable", (what or name) .. " is not available in this build ("
      .. M.require_error(mod) .. ")", "unavailable")
  end
  return mod
end

--- One line from a failed `require`'s message: "module 'x' not found" (not
-- the list of every file tried), or the loader's own first line and reason.
function M.require_error(e)
  e = tostring(e)
  local missing = e:match("module '([^']+)' not found")
  if missing then return "module '" .. missing .. "' not found in package.path/cpath" end
  -- "error loading module 'x' from file '...':" and, on the next line, why
  return (e:gsub("\n%s*no file.*$", ""):gsub("\n%s*no field.*$", ""):gsub("%s*\n%s*", " "))
end

--- The smtpkit module, with a field check: fails if `field` is missing
-- (from smtpkit, or from smtpkit.core for the parts bound in C).
function M.smtpkit(field)
  local smtpkit = M.need("smtpkit", "the smtpkit library")
  if field and smtpkit[field] == nil then
    local core = require "smtpkit.core"
    if core[field] ~= nil then
      return setmetatable({ [field] = core[field] }, { __index = smtpkit })
    end
    M.fail("unavailable", "smtpkit." .. field .. " is not available in this build yet", "unavailable")
  end
  return smtpkit
end

-- JSON (smtpkit.json: UTF-8 for any parser, keys sorted) ----------------------

--- Marks a table as a JSON array (so that an empty one prints as []).
M.array = json.array

--- Encodes a Lua value as compact JSON (keys sorted, so output is stable).
function M.json(v)
  return json.encode(v)
end

--- Prints one JSON document on stdout.
function M.print_json(v)
  io.stdout:write(json.encode(v), "\n")
end

-- Text tables ----------------------------------------------------------------

local function width(s)
  -- display width: count UTF-8 characters, not bytes
  local _, n = s:gsub("[^\128-\191]", "")
  return n
end
M.width = width

--- Truncates `s` to at most `n` characters (UTF-8 aware), with "..." when cut.
function M.truncate(s, n)
  if width(s) <= n then return s end
  local out, count = {}, 0
  for ch in s:gmatch("[%z\1-\127\194-\244][\128-\191]*") do
    if count >= n - 3 then break end
    out[#out + 1] = ch
    count = count + 1
  end
  return table.concat(out) .. "..."
end

--- Formats rows (lists of strings) under `headers` as aligned columns.
-- Returns the lines; the last column is not padded.
function M.table_lines(headers, rows)
  local widths = {}
  for i, h in ipairs(headers) do widths[i] = width(h) end
  for _, r in ipairs(rows) do
    for i = 1, #headers do
      local w = width(tostring(r[i] or ""))
      if w > widths[i] then widths[i] = w end
    end
  end
  local function line(r)
    local cells = {}
    for i = 1, #headers do
      local s = tostring(r[i] or "")
      if i < #headers then s = s .. string.rep(" ", widths[i] - width(s)) end
      cells[i] = s
    end
    return (table.concat(cells, "  "):gsub("%s+$", ""))
  end
  local lines = { line(headers) }
  for _, r in ipairs(rows) do lines[#lines + 1] = line(r) end
  return lines
end

function M.print_table(headers, rows, fh)
  fh = fh or io.stdout
  for _, l in ipairs(M.table_lines(headers, rows)) do fh:write(l, "\n") end
end

-- Files and processes ----------------------------------------------------------

--- Reads a whole file ("-" is standard input), or fails with exit `input`.
function M.read_file(path, what)
  if path == "-" then
    local data = io.stdin:read("*a")
    if not data then M.fail("input", "cannot read standard input", "io") end
    return data
  end
  local fh, err = io.open(path, "rb")
  if not fh then
    M.fail("input", "cannot read " .. (what and (what .. " ") or "") .. path .. ": "
      .. tostring(err):gsub("^" .. path:gsub("%p", "%%%0") .. ": ", ""), "io")
  end
  local data, rerr = fh:read("*a")
  fh:close()
  if not data then
    M.fail("input", "cannot read " .. path .. ": " .. tostring(rerr), "io")
  end
  return data
end

--- Runs a shell command; true when it exited with status 0 (any Lua version).
function M.sh_ok(cmd)
  local a, _, c = os.execute(cmd)
  if type(a) == "number" then return a == 0 end
  return a == true and (c == nil or c == 0)
end

--- Quotes a string for /bin/sh.
function M.shquote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local tty_cache = {}
--- True when file descriptor `fd` (0, 1 or 2) is a terminal.
function M.isatty(fd)
  if tty_cache[fd] == nil then
    tty_cache[fd] = M.sh_ok("test -t " .. fd)
  end
  return tty_cache[fd]
end

--- Sleeps `s` seconds (fractions allowed).
function M.sleep(s)
  if s <= 0 then return end
  local ok, socket = pcall(require, "socket")
  if ok and type(socket) == "table" and socket.sleep then
    socket.sleep(s)
  else
    os.execute(string.format("sleep %.3f", s))
  end
end

--- The current time in seconds, with fractions when LuaSocket is there.
function M.now()
  local ok, socket = pcall(require, "socket")
  if ok and type(socket) == "table" and socket.gettime then return socket.gettime() end
  return os.time()
end

--- Makes a directory and its parents (like mkdir -p), or fails with exit `input`.
function M.mkdir_p(dir)
  if not M.sh_ok("mkdir -p " .. M.shquote(dir) .. " 2>/dev/null") then
    M.fail("input", "cannot create directory " .. dir, "io")
  end
end

-- CSV (RFC 4180) ----------------------------------------------------------------

--- Parses CSV text: returns the header list and a list of records (tables
-- keyed by header). Quoted fields may hold commas, quotes ("") and line
-- breaks. Fails with exit `input` and the line number on malformed input.
function M.parse_csv(text, name)
  name = name or "CSV"
  if text:sub(1, 3) == "\239\187\191" then text = text:sub(4) end -- UTF-8 BOM
  local rows, row, field = {}, {}, {}
  local i, n, line = 1, #text, 1
  local row_line = 1
  local function bad(msg)
    M.fail("input", ("malformed CSV: %s:%d: %s"):format(name, line, msg), "csv")
  end
  local function end_field()
    row[#row + 1] = table.concat(field)
    field = {}
  end
  local function end_row()
    end_field()
    if not (#row == 1 and row[1] == "") then
      rows[#rows + 1] = { fields = row, line = row_line }
    end
    row = {}
  end
  local at_field_start = true
  while i <= n do
    local c = text:sub(i, i)
    if at_field_start and c == '"' then
      local j = i + 1
      while true do
        local q = text:find('"', j, true)
        if not q then bad("unterminated quoted field") end
        local chunk = text:sub(j, q - 1)
        local _, nl = chunk:gsub("\n", "")
        line = line + nl
        field[#field + 1] = chunk
        if text:sub(q + 1, q + 1) == '"' then
          field[#field + 1] = '"'
          j = q + 2
        else
          i = q + 1
          break
        end
      end
      local nx = text:sub(i, i)
      if nx ~= "," and nx ~= "\n" and nx ~= "\r" and nx ~= "" then
        bad("unexpected character after a closing quote")
      end
      at_field_start = false
    elseif c == "," then
      end_field()
      at_field_start = true
      i = i + 1
    elseif c == "\r" or c == "\n" then
      end_row()
      if c == "\r" and text:sub(i + 1, i + 1) == "\n" then i = i + 1 end
      i = i + 1
      line = line + 1
      row_line = line
      at_field_start = true
    else
      local j = text:find('[,\r\n"]', i)
      local stop = j and j - 1 or n
      field[#field + 1] = text:sub(i, stop)
      i = stop + 1
      if text:sub(i, i) == '"' then bad("a quote inside an unquoted field") end
      at_field_start = false
    end
  end
  if #field > 0 or #row > 0 then end_row() end
  if #rows == 0 then
    line = 1
    bad("no header row")
  end
  local header = rows[1].fields
  local seen = {}
  for k, h in ipairs(header) do
    h = h:match("^%s*(.-)%s*$")
    header[k] = h
    if h == "" then line = 1 bad("empty column name in the header row") end
    if seen[h] then line = 1 bad("column '" .. h .. "' appears twice") end
    seen[h] = true
  end
  local records = {}
  for r = 2, #rows do
    local f = rows[r].fields
    if #f ~= #header then
      line = rows[r].line
      bad(("%d field%s, the header row has %d"):format(#f, #f == 1 and "" or "s", #header))
    end
    local rec = {}
    for k, h in ipairs(header) do rec[h] = f[k] end
    records[#records + 1] = { fields = rec, line = rows[r].line }
  end
  return header, records
end

-- Server options (send, bulk, outbox run) -------------------------------------

--- Adds the options that say how to reach an SMTP server to an argparse parser.
-- `server_help` replaces the --server help (outbox run requires it).
function M.add_server_options(p, server_help)
  p:option("--server", server_help or ("SMTP server as host:port (port 587 if omitted). "
    .. "Without it, messages are written to the outbox directory as .eml files."))
    :argname("<host:port>")
  p:option("--tls", "TLS mode: starttls, implicit, none or opportunistic "
    .. "(default: implicit on port 465, starttls otherwise).")
    :argname("<mode>")
    :choices({ "starttls", "implicit", "none", "opportunistic" })
  p:option("--user", "Login name for SMTP AUTH. The password comes from the "
    .. "SMTPKIT_PASSWORD environment variable, or a prompt on a terminal; never from the command line.")
    :argname("<name>")
  p:option("--cafile", "Trust the CA certificates in this PEM file (e.g. a relay's CA bundle) "
    .. "in addition to the system store.")
    :argname("<file>")
  p:flag("--insecure", "Do not verify the server's certificate (testing only).")
  p:flag("--allow-plaintext-auth", "Allow AUTH over an unencrypted connection (testing only).")
  p:option("--timeout", "Seconds to wait for each step (connect, each reply).")
    :argname("<seconds>")
    :convert(tonumber)
  p:option("--helo", "Name to give in EHLO/HELO.")
    :argname("<name>")
  p:option("--outbox", "Outbox directory (default: $SMTPKIT_OUTBOX, else "
    .. "$XDG_DATA_HOME/smtpkit/outbox or ~/.local/share/smtpkit/outbox).")
    :argname("<dir>")
end

--- The outbox directory from --outbox, $SMTPKIT_OUTBOX or the XDG default.
function M.outbox_dir(args)
  if args and args.outbox then return args.outbox end
  local env = os.getenv("SMTPKIT_OUTBOX")
  if env and env ~= "" then return env end
  local xdg = os.getenv("XDG_DATA_HOME")
  if xdg and xdg ~= "" then return xdg .. "/smtpkit/outbox" end
  local home = os.getenv("HOME")
  if home and home ~= "" then return home .. "/.local/share/smtpkit/outbox" end
  return "smtpkit-outbox"
end

--- Reads a password without echo when standard input is a terminal.
local function prompt_password(user)
  if not M.isatty(0) then return nil end
  io.stderr:write("Password for ", user, ": ")
  io.stderr:flush()
  M.sh_ok("stty -echo 2>/dev/null")
  local pw = io.stdin:read("*l")
  M.sh_ok("stty echo 2>/dev/null")
  io.stderr:write("\n")
  return pw
end

--- Builds smtpkit.connect options from parsed arguments, or nil when no
-- server was given. Fails with exit `usage` on a malformed --server.
function M.server_opts(args)
  if not args.server then return nil end
  local host, port = args.server:match("^%[([^%]]+)%]:(%d+)$")
  if not host then host, port = args.server:match("^([^:]+):(%d+)$") end
  if not host then
    if args.server:match("^[%w%.%-]+$") or args.server:match("^%[[^%]]+%]$") then
      host, port = args.server:gsub("^%[(.*)%]$", "%1"), "587"
    else
      M.fail("usage", "--server must be host or host:port, not '" .. args.server .. "'", "usage")
    end
  end
  port = tonumber(port)
  if not port or port < 1 or port > 65535 then
    M.fail("usage", "--server: port must be 1-65535, in '" .. args.server .. "'", "usage")
  end
  local opts = {
    host = host, port = port, tls = args.tls, helo = args.helo,
    cafile = args.cafile,
  }
  if args.insecure then opts.verify = false end
  if args.allow_plaintext_auth then opts.allow_plaintext_auth = true end
  if args.timeout then
    opts.timeouts = { connect = args.timeout, greeting = args.timeout,
      command = args.timeout, data = args.timeout }
  end
  if args.cafile then M.read_file(args.cafile, "CA file") end
  if args.user then
    opts.username = args.user
    local pw = os.getenv("SMTPKIT_PASSWORD")
    if not pw or pw == "" then pw = prompt_password(args.user) end
    if not pw then
      M.fail("usage", "--user " .. args.user .. " needs a password: set SMTPKIT_PASSWORD "
        .. "(passwords are never taken from the command line)", "usage")
    end
    opts.password = pw
  end
  return opts
end

--- The server options of this command line as words for a later command
-- (`smtpkit outbox run ...`): --server, --tls, --user, --cafile, --insecure,
-- --allow-plaintext-auth, --timeout, --helo, --outbox. Never a password (it
-- is never on the command line). Returns one shell-quoted string.
function M.server_args_string(args)
  local words = {}
  local function add(flag, v)
    words[#words + 1] = flag
    if v ~= nil then
      v = tostring(v)
      words[#words + 1] = v:match("^[%w@%%+=:,./_-]+$") and v or M.shquote(v)
    end
  end
  if args.server then add("--server", args.server) end
  if args.tls then add("--tls", args.tls) end
  if args.user then add("--user", args.user) end
  if args.cafile then add("--cafile", args.cafile) end
  if args.insecure then add("--insecure") end
  if args.allow_plaintext_auth then add("--allow-plaintext-auth") end
  if args.timeout then add("--timeout", args.timeout) end
  if args.helo then add("--helo", args.helo) end
  if args.outbox then add("--outbox", args.outbox) end
  return table.concat(words, " ")
end

--- Hands a message a direct send deferred to the outbox, with that first
-- attempt recorded through the retry policy (so the backoff and the
-- domains' slow-down apply to the next `outbox run`). `attempt` is what the
-- send returned (the result table, or the error table). Returns the id and
-- the policy's decision (nil when recording failed, with the error third).
function M.queue_deferred(box, msg, attempt)
  local id, err = box:submit(msg)
  if not id then M.fail_error(err, "outbox") end
  local retry = M.need("smtpkit.retry", "retry policies (smtpkit.retry)")
  local d, rerr = box:record(id, attempt, { policy = retry.policy() })
  return id, d, rerr
end

--- A one-line human summary of a classification or result table.
--- A reply as one line: "550 5.1.1 text". The enhanced code is added when
-- the text does not already start with it (results keep it apart, as
-- parse_reply does; older outbox records may have it in the text).
function M.reply_line(r)
  if type(r) ~= "table" then return "" end
  if not r.code then return tostring(r.text or "") end
  local t = tostring(r.text or "")
  if r.enhanced and r.enhanced ~= "" and t:sub(1, #r.enhanced) ~= r.enhanced then
    t = r.enhanced .. " " .. t
  end
  return (tostring(r.code) .. " " .. t):gsub("[\r\n]+", " ")
end

function M.verdict_line(v)
  local parts = { v.outcome or "?" }
  if v.reason then parts[#parts + 1] = v.reason end
  if v.action and v.action ~= "none" then parts[#parts + 1] = "-> " .. v.action end
  return table.concat(parts, " ")
end

return M
