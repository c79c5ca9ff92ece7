--- The `smtpkit` command: dispatches to one module per subcommand
-- (`smtpkit.cli.<name>`), each with its own `--help`.
--
-- Every subcommand module returns a table with `summary` (one line),
-- `parser(argparse)` (returns its configured argparse parser) and
-- `run(args)` (returns the exit code). Failures are raised with
-- `smtpkit.cli.common.fail` and become one line on stderr and an exit code.
-- @module smtpkit.cli
local common = require "smtpkit.cli.common"

local M = {}

local commands = {
  { name = "demo", module = "smtpkit.cli.demo" },
  { name = "send", module = "smtpkit.cli.send" },
  { name = "bulk", module = "smtpkit.cli.bulk" },
  { name = "classify", module = "smtpkit.cli.classify" },
  { name = "check-header", module = "smtpkit.cli.check_header" },
  { name = "outbox", module = "smtpkit.cli.outbox" },
}

local EXIT = common.EXIT

local function version()
  local ok, core = pcall(require, "smtpkit.core")
  return ok and type(core) == "table" and core.version or "unknown (smtpkit.core not built)"
end

local function load(name)
  for _, c in ipairs(commands) do
    if c.name == name then return require(c.module) end
  end
end

local function usage_text()
  local lines = {
    "Usage: smtpkit <command> [options]",
    "",
    "Send mail over SMTP and TLS, classify server replies, validate X-SMTPAPI headers.",
    "",
    "Commands:",
  }
  for _, c in ipairs(commands) do
    local ok, mod = pcall(require, c.module)
    local summary = ok and mod.summary or "(not available: " .. tostring(mod):match("^[^\n]*") .. ")"
    lines[#lines + 1] = ("   %-14s %s"):format(c.name, summary)
  end
  for _, l in ipairs({
    "",
    "Options:",
    "   -h, --help     Show this help and exit.",
    "   --version      Show the smtpkit version and exit.",
    "",
    "Run 'smtpkit <command> --help' for a command's options. Start with 'smtpkit demo'.",
    "",
    "Exit codes: 0 ok; 1 problems found or a recipient refused; 2 usage error;",
    "3 unreadable or malformed input; 4 network error; 5 TLS failure;",
    "6 authentication refused; 7 deferred (kept in the outbox); 69 a needed part",
    "is missing; 70 internal error.",
  }) do lines[#lines + 1] = l end
  return table.concat(lines, "\n")
end

local function report(prefix, f, json)
  io.stderr:write(prefix, ": ", (tostring(f.message):gsub("[\r\n]+", " ")), "\n")
  if json then
    common.print_json({ error = { kind = f.kind, message = f.message, exit = f.exit } })
  end
end

-- argparse's messages, one line each, with the hint to --help.
local function usage_error(prog, msg)
  msg = tostring(msg):gsub("[\r\n]+", "; ")
  io.stderr:write(prog, ": ", msg, " (see '", prog, " --help')\n")
  return EXIT.usage
end

--- Runs the command with the argument list `argv` (like the global `arg`).
-- @treturn int the exit code
function M.main(argv)
  local args = {}
  for i = 1, #argv do args[i] = argv[i] end
  local name = args[1]
  if name == nil then
    io.stderr:write(usage_text(), "\n")
    return EXIT.usage
  elseif name == "-h" or name == "--help" or name == "help" then
    if name == "help" and args[2] then
      args = { args[2], "--help" }
      name = args[1]
    else
      io.stdout:write(usage_text(), "\n")
      return EXIT.ok
    end
  elseif name == "--version" or name == "-V" then
    io.stdout:write("smtpkit ", version(), " (", rawget(_G, "jit") and jit.version or _VERSION, ")\n")
    return EXIT.ok
  end
  if name:sub(1, 1) == "-" then
    return usage_error("smtpkit", "unknown option '" .. name .. "' before the command")
  end
  local ok, cmd = pcall(load, name)
  if not ok then
    io.stderr:write("smtpkit ", name, ": cannot load the command: ",
      common.require_error(cmd), "\n")
    return EXIT.unavailable
  end
  if not cmd then
    return usage_error("smtpkit", "unknown command '" .. name .. "'")
  end
  local prog = "smtpkit " .. name
  local has_argparse, argparse = pcall(require, "argparse")
  if not has_argparse then
    io.stderr:write(prog, ": the argparse module is missing (Debian: lua-argparse; ",
      "LuaRocks: argparse)\n")
    return EXIT.unavailable
  end
  local parser = cmd.parser(argparse(prog, cmd.summary))
  parser:help_max_width(80)
  local rest = {}
  for i = 2, #args do rest[#rest + 1] = args[i] end
  local pok, parsed = parser:pparse(rest)
  if not pok then return usage_error(prog, parsed) end

  local rok, code = xpcall(function() return cmd.run(parsed) end, function(e)
    if common.is_failure(e) then return e end
    return { internal = true, message = tostring(e), trace = debug.traceback("", 2) }
  end)
  io.stdout:flush()
  if rok then return code or EXIT.ok end
  if common.is_failure(code) then
    report(prog, code, parsed.json)
    return code.exit
  end
  io.stderr:write(prog, ": internal error: ", code.message, "\n")
  if os.getenv("SMTPKIT_DEBUG") then io.stderr:write(code.trace, "\n") end
  return EXIT.internal
end

return M
