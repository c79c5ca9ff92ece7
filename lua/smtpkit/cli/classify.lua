--- `smtpkit classify`: SMTP replies in, decisions out (outcome, reason,
-- action, retry, explanation), as a table or JSON.
-- @module smtpkit.cli.classify
local common = require "smtpkit.cli.common"

local M = {
  summary = "Classify SMTP replies: outcome, reason, action and why.",
}

function M.parser(p)
  p:description([[Classify SMTP replies: outcome, reason, action and why.

Replies come as arguments, or one per line on standard input when there is
none (blank lines are skipped). A reply may be bare ("550 5.1.1 No such
user"), a DSN Diagnostic-Code ("smtp; 550 ...") or an MTA's wording
("host mx[192.0.2.1] said: 550 ... (in reply to RCPT TO command)").]])
  p:argument("reply", "A reply to classify (\"\" is the empty reply)."):args("*")
  p:flag("--json", "Print a JSON array, one object per reply.")
  p:epilog([[Examples:
   smtpkit classify "550 5.1.1 <a@example.com>: Recipient address rejected"
   grep -h 'said:' /var/log/mail.log | smtpkit classify --json

Exit status: 0 when every reply was classified, 2 usage error, 3 unreadable input.]])
  return p
end

--- Classifies a list of reply strings; returns the verdict tables, each with
-- the input as `reply`.
function M.classify_all(replies)
  local smtpkit = common.smtpkit("classify")
  local out = {}
  for i, r in ipairs(replies) do
    local v = smtpkit.classify(r)
    local row = {}
    for k, val in pairs(v) do row[k] = val end
    row.reply = r
    out[i] = row
  end
  return out
end

--- Prints verdicts as a table: one row per reply, its explanation under it.
function M.print_verdicts(verdicts, fh)
  fh = fh or io.stdout
  local rows = {}
  for i, v in ipairs(verdicts) do
    local shown = v.reply:gsub("[\r\n]+", " ")
    if shown:match("^%s*$") then shown = "(empty)" end
    rows[i] = { common.truncate(shown, 44), v.outcome, v.reason, v.action, v.retry and "yes" or "no" }
  end
  local lines = common.table_lines({ "REPLY", "OUTCOME", "REASON", "ACTION", "RETRY" }, rows)
  fh:write(lines[1], "\n")
  for i, v in ipairs(verdicts) do
    fh:write(lines[i + 1], "\n")
    if v.explanation and v.explanation ~= "" then
      fh:write("    ", v.explanation, "\n")
    end
  end
end

function M.run(args)
  local replies = args.reply or {}
  if #replies == 0 then
    if common.isatty(0) then
      io.stderr:write("smtpkit classify: reading replies from standard input, one per line "
        .. "(Ctrl-D to end)\n")
    end
    for line in io.stdin:lines() do
      line = line:gsub("\r$", "")
      if not line:match("^%s*$") then replies[#replies + 1] = line end
    end
  end
  local verdicts = M.classify_all(replies)
  if args.json then
    local list = common.array({})
    for i, v in ipairs(verdicts) do
      list[i] = {
        reply = v.reply, code = v.code, enhanced = v.enhanced, text = v.text,
        outcome = v.outcome, reason = v.reason, action = v.action,
        retry = v.retry and true or false, explanation = v.explanation,
      }
    end
    common.print_json(list)
  else
    M.print_verdicts(verdicts)
  end
  return common.EXIT.ok
end

return M
