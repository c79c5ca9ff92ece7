--- A straightforward pure-Lua reply classifier with the same rules as the C
-- one, for `bench/run_classify.sh` to measure against: it lowercases the
-- text, then tries every phrase in priority order with string.find(plain),
-- then the enhanced code table, the hints and the reply code table. The
-- rules come from smtpkit.core.classify_rules(), so both sides use exactly
-- the same data; what differs is the matcher and the language.
local M = {}

local function split(phrase)
  local frags = {}
  for f in (phrase .. "*"):gmatch("([^*]*)%*") do frags[#frags + 1] = f end
  return frags
end

--- Builds a classifier from the list core.classify_rules() returns.
function M.new(rules)
  local phrases, hints, enhanced, codes = {}, {}, {}, {}
  for _, r in ipairs(rules) do
    local verdict = {}
    for _, v in ipairs(r.verdicts) do verdict[v.class] = v end
    local rule = { reason = r.reason, verdict = verdict, generic = r.generic }
    if r.kind == "phrase" or r.kind == "hint" then
      rule.frags = split(r.match)
      local list = r.kind == "phrase" and phrases or hints
      list[#list + 1] = rule
    elseif r.kind == "enhanced" then
      local s, lo, hi = r.match:match("^X%.(%d+)%.(%d+)%-(%d+)$")
      rule.s, rule.lo, rule.hi = tonumber(s), tonumber(lo), tonumber(hi)
      enhanced[#enhanced + 1] = rule
    else
      local lo, hi = r.match:match("^(%d+)%-(%d+)$")
      rule.lo, rule.hi = tonumber(lo), tonumber(hi)
      codes[#codes + 1] = rule
    end
  end

  local function first_match(list, low)
    for i = 1, #list do
      local rule, pos = list[i], 1
      local frags = rule.frags
      for j = 1, #frags do
        local _, e = string.find(low, frags[j], pos, true)
        if not e then pos = nil break end
        pos = e + 1
      end
      if pos then return rule end
    end
  end

  return function(s)
    local low = string.lower(s)
    local code = s:match("^%s*([2-5][0-5]%d)[ %-]?")
    local rest = code and s:match("^%s*%d%d%d[ %-]?(.*)$") or s
    code = tonumber(code)
    local enh = rest:match("^%s*#?([245]%.%d%d?%d?%.%d%d?%d?)")
    if code and enh and enh:sub(1, 1) ~= tostring(math.floor(code / 100)) then enh = nil end
    local klass = code and math.floor(code / 100) or (enh and tonumber(enh:sub(1, 1))) or 0
    local text = enh and rest:match("^%s*#?[%d.]+%s*(.*)$") or rest
    local res = { code = code, enhanced = enh, text = text }
    if klass == 2 then
      res.outcome, res.reason, res.action, res.retry = "delivered", "accepted", "none", false
      return res
    end
    local rule = first_match(phrases, low)
    local e
    if not rule and enh then
      local subj, det = enh:match("^%d%.(%d+)%.(%d+)$")
      subj, det = tonumber(subj), tonumber(det)
      for i = 1, #enhanced do
        local x = enhanced[i]
        if x.s == subj and det >= x.lo and det <= x.hi then e = x break end
      end
      if e and not e.generic then rule = e end
    end
    rule = rule or first_match(hints, low)
    if not rule and e and e.reason ~= "unknown" then rule = e end
    if not rule and code then
      for i = 1, #codes do
        local c = codes[i]
        if code >= c.lo and code <= c.hi then rule = c break end
      end
    end
    local v = rule and (rule.verdict[klass] or rule.verdict[0])
    if v then
      res.outcome, res.reason, res.action, res.retry, res.explanation =
        v.outcome, v.reason, v.action, v.retry, v.explanation
    else
      res.outcome, res.reason, res.action, res.retry =
        klass == 0 and "unknown" or "bounced", "unknown", "review", false
    end
    return res
  end
end

return M
