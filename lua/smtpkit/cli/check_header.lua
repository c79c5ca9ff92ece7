--- `smtpkit check-header FILE|-`: validates an X-SMTPAPI header and prints
-- each problem on one line, like a compiler: `FILE:LINE:COL: severity: path: message`.
-- @module smtpkit.cli.check_header
local common = require "smtpkit.cli.common"

local M = {
  summary = "Validate an X-SMTPAPI header; problems as FILE:LINE:COL lines.",
}

function M.parser(p)
  p:description([[Validate an X-SMTPAPI header before a relay bounces the message.

FILE holds the header's JSON value, with or without the "X-SMTPAPI:" name,
folded over several lines or not; "-" reads standard input. Each problem is
printed on one line as FILE:LINE:COL: severity: path: message.]])
  p:argument("file", "The header to check, or - for standard input.")
  p:flag("--json", "Print {file, valid, problems=[...]} as JSON.")
  p:flag("--strict", "Treat warnings as errors (exit 1 on any).")
  p:flag("-q --quiet", "Print nothing when the header is valid.")
  p:epilog([[Exit status: 0 valid (warnings allowed), 1 errors found (or warnings with
--strict), 2 usage error, 3 unreadable file.]])
  return p
end

-- Locating a path in the JSON text -------------------------------------------
-- The validator gives line and column for malformed JSON only; for a problem
-- with a path (filters.clicktrack.settings.enable, sub["-name-"][2]) we find
-- where that value starts in the text, so every line points somewhere.

local function split_path(path)
  local parts = {}
  local i = 1
  while i <= #path do
    local c = path:sub(i, i)
    if c == "." then
      i = i + 1
    elseif c == "[" then
      local q = path:match('^%["(.-)"%]', i)
      if q then
        parts[#parts + 1] = { key = q:gsub('\\(.)', "%1") }
        i = i + #q + 4
      else
        local n = path:match("^%[(%d+)%]", i)
        if not n then return parts end
        parts[#parts + 1] = { index = tonumber(n) }
        i = i + #n + 2
      end
    else
      local name = path:match("^[^%.%[]+", i)
      parts[#parts + 1] = { key = name }
      i = i + #name
    end
  end
  return parts
end

-- A tiny scanner over (valid) JSON: returns the byte offset where the value
-- at `parts` starts, or the deepest enclosing value found.
local function locate(text, start, parts, index_base)
  local pos = start
  local function ws()
    pos = text:find("[^ \t\r\n]", pos) or #text + 1
  end
  local skip_value
  local function read_string()
    -- pos at the opening quote; returns the raw contents
    local j = pos + 1
    while true do
      local c = text:find('["\\]', j)
      if not c then pos = #text + 1 return nil end
      if text:sub(c, c) == "\\" then j = c + 2 else
        local s = text:sub(pos + 1, c - 1)
        pos = c + 1
        return s
      end
    end
  end
  local function skip_container(open, close)
    pos = pos + 1
    ws()
    if text:sub(pos, pos) == close then pos = pos + 1 return end
    while pos <= #text do
      ws()
      if open == "{" then read_string() ws() pos = pos + 1 ws() end
      skip_value()
      ws()
      local c = text:sub(pos, pos)
      pos = pos + 1
      if c ~= "," then return end
    end
  end
  skip_value = function()
    ws()
    local c = text:sub(pos, pos)
    if c == '"' then read_string()
    elseif c == "{" then skip_container("{", "}")
    elseif c == "[" then skip_container("[", "]")
    else pos = text:find("[,%]} \t\r\n]", pos) or #text + 1 end
  end

  ws()
  local found = pos
  for _, part in ipairs(parts) do
    local c = text:sub(pos, pos)
    local hit = false
    if part.key and c == "{" then
      pos = pos + 1
      ws()
      while text:sub(pos, pos) == '"' do
        local k = read_string()
        ws()
        pos = pos + 1 -- ':'
        ws()
        if k == part.key then hit = true break end
        skip_value()
        ws()
        if text:sub(pos, pos) ~= "," then break end
        pos = pos + 1
        ws()
      end
    elseif part.index and c == "[" then
      pos = pos + 1
      ws()
      local want = part.index - index_base
      local i = 0
      while want >= 0 and text:sub(pos, pos) ~= "]" and pos <= #text do
        if i == want then hit = true break end
        skip_value()
        ws()
        if text:sub(pos, pos) ~= "," then break end
        pos = pos + 1
        ws()
        i = i + 1
      end
    end
    if not hit then return found end
    found = pos
  end
  return found
end

local function line_col(text, offset)
  local line, last_nl = 1, 0
  for nl in text:sub(1, offset - 1):gmatch("()\n") do
    line = line + 1
    last_nl = nl
  end
  return line, offset - last_nl
end

--- Returns line and column (1-based) of the value at `path` in `text`.
function M.position(text, path)
  local start = 1
  local _, name_end = text:find("^%s*[Xx]%-[Ss][Mm][Tt][Pp][Aa][Pp][Ii]%s*:")
  if name_end then start = name_end + 1 end
  local off = locate(text, start, split_path(path or ""), M.index_base or 0)
  return line_col(text, off)
end

-- Which base the validator's array indexes use ([0] is the first element in
-- JSON Pointer style paths; set once from the validator's own output).
M.index_base = 0

--- Validates `text`; returns the problem list (each with line and column
-- filled in) and the number of errors and of warnings.
function M.check(text, strict)
  local smtpapi = common.need("smtpkit.smtpapi", "X-SMTPAPI validation (smtpkit.smtpapi)")
  local ok, list = smtpapi.validate(text)
  list = list or {}
  local problems, errors, warnings = {}, 0, 0
  for _, pr in ipairs(list) do
    local p = {}
    for k, v in pairs(pr) do p[k] = v end
    p.severity = p.severity or (ok and "warning" or "error")
    if strict then p.severity = "error" end  -- --strict: every warning is an error
    if not p.line then
      p.line, p.column = M.position(text, p.path)
    end
    if p.severity == "error" or strict then errors = errors + 1 else warnings = warnings + 1 end
    problems[#problems + 1] = p
  end
  if not ok and errors == 0 then errors = 1 end
  table.sort(problems, function(a, b)
    if a.line ~= b.line then return a.line < b.line end
    return (a.column or 0) < (b.column or 0)
  end)
  return problems, errors, warnings
end

function M.run(args)
  local name = args.file == "-" and "<stdin>" or args.file
  local text = common.read_file(args.file, "header file")
  local problems, errors, warnings = M.check(text, args.strict)
  if args.json then
    local list = common.array({})
    for i, p in ipairs(problems) do
      list[i] = { path = p.path, message = p.message, severity = p.severity,
        line = p.line, column = p.column, excerpt = p.excerpt }
    end
    common.print_json({ file = name, valid = errors == 0, errors = errors,
      warnings = warnings, problems = list })
  else
    for _, p in ipairs(problems) do
      local path = (p.path and p.path ~= "") and (p.path .. ": ") or ""
      io.stdout:write(("%s:%d:%d: %s: %s%s\n"):format(name, p.line or 1, p.column or 1,
        p.severity, path, (tostring(p.message):gsub("[\r\n]+", " "))))
      if p.excerpt and p.excerpt ~= "" then
        io.stdout:write("    ", (p.excerpt:gsub("[\r\n]", " ")), "\n")
      end
    end
    if errors > 0 then
      io.stdout:write(("%s: %d error%s, %d warning%s\n"):format(name, errors,
        errors == 1 and "" or "s", warnings, warnings == 1 and "" or "s"))
    elseif not args.quiet then
      io.stdout:write(("%s: valid X-SMTPAPI header%s\n"):format(name,
        warnings > 0 and (" (" .. warnings .. " warning" .. (warnings == 1 and "" or "s") .. ")") or ""))
    end
  end
  return errors > 0 and common.EXIT.failure or common.EXIT.ok
end

return M
