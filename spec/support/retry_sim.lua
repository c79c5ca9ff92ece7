--- A retry policy under a clock the test moves and a random source that
-- returns what it is told (retry_spec.lua, retry_extra_spec.lua):
--     local policy, clock = require("support.retry_sim")(opts)
--     clock.t = clock.t + 3600; clock.r = 0.9
local retry = require "smtpkit.retry"

return function(opts)
  local clock = { t = 0, r = 0.5 }
  opts = opts or {}
  opts.now = function() return clock.t end
  opts.random = function() return clock.r end
  return retry.policy(opts), clock
end
