--- smtpkit.batch: what `send_many` does with a list of messages, the same on
-- both transports (smtpkit.client over smtpkit.net, smtpkit.resty over
-- cosockets); each transport gives only the I/O. Internal.
--
-- The policy: every message is prepared first (a wrong type raises before
-- anything is sent, naming the message); messages go in runs over one
-- connection; a connection that fails ends its run, and the messages never
-- begun go on the next one; the last message begun, when nothing of it was
-- answered (resendable) and the connection had carried another message or
-- had been idle, goes again on the next connection, a limited number of
-- times; each message ends as `send` would have returned it
-- (smtpkit.error.outcome). A fresh connection that takes nothing ends the
-- call: the rest get its error.
-- @module smtpkit.batch
local E = require "smtpkit.error"
local envelope = require "smtpkit.envelope"

local M = {}

--- Sends msgs; returns results, errs (as send_many documents them).
-- @tparam table msgs the caller's list of messages
-- @tparam table t the transport:
--   `prepare(msg)` -> a, b (what the transport sends: envelope and body) or
--   nil, err;
--   `ready()` -> idle, fresh, room (a connection for the next messages:
--   idle, it waited since its last use; fresh, it was opened now; room, how
--   many messages it may still take) or nil, err;
--   `send(items, pos, last)` -> got, done, err: sends items[pos..last] (each
--   `{a, b}`); got[k] = {res=, err=, resendable=} for each message handled,
--   done the last one handled, err the connection's failure when done < last;
--   `unsend()` (optional): a message handled is taken back to go again;
--   `resends`: how many times a message may go again (default 1).
function M.run(msgs, t)
  local prepared = envelope.prepare_each(msgs, t.prepare)
  local results, errs, items, index = {}, {}, {}, {}
  for i = 1, #prepared do
    local a, b = prepared[i][1], prepared[i][2]
    if a then
      items[#items + 1] = { a, b }
      index[#items] = i
    else
      results[i], errs[i] = false, b
    end
  end
  local pos, resent = 1, {}
  local function fail_rest(err)
    for k = pos, #items do results[index[k]], errs[index[k]] = false, err end
    pos = #items + 1
  end
  while pos <= #items do
    local idle, fresh, room = t.ready()
    if idle == nil then
      fail_rest(fresh)
      break
    end
    local last = math.min(#items, pos + math.max(room or #items, 1) - 1)
    local got, done, cerr = t.send(items, pos, last)
    -- the last message begun, never answered because the server went away
    -- after another message (or on an idle connection): once more (a
    -- refusal of the first message on a fresh connection stands)
    local g = got[done]
    if done >= pos and g and g.resendable and (done > pos or idle)
        and (resent[done] or 0) < (t.resends or 1) then
      resent[done] = (resent[done] or 0) + 1
      if t.unsend then t.unsend() end
      done = done - 1
    end
    for k = pos, done do
      local r, e = E.outcome(got[k].res, got[k].err)
      results[index[k]], errs[index[k]] = r or false, e
    end
    if cerr and done < pos and fresh then fail_rest(cerr) end
    pos = done + 1
  end
  return results, errs
end

return M
