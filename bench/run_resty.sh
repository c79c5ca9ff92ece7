#!/usr/bin/env bash
# run_resty.sh - smtpkit.resty inside real nginx: requests/s and messages/s
# for N HTTP requests from C concurrent clients, each request sending one
# ~2 KB message over a pool of P cosocket connections to Postfix's smtp-sink
# on 127.0.0.1. Printed beside it, in the same run: the same nginx answering
# the same requests without sending (the HTTP + load generator ceiling).
#
#   bash bench/run_resty.sh            # N=2000 C=50 P=10
#   N=5000 C=100 P=20 bash bench/run_resty.sh
#
# Needs root (smtp-sink -u nobody), the Debian packages of tools/deps.sh, and
# the LuaJIT build (made here). Bounded: the load generator stops itself.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s LUA=jit all
N=${N:-2000} C=${C:-50} P=${P:-10} \
luajit - <<'LUA'
package.path = "spec/?.lua;lua/?.lua;lua/?/init.lua;" .. package.path
local nginx = require "support.nginx"
local servers = require "support.servers"
local N, C, P = tonumber(os.getenv("N")), tonumber(os.getenv("C")), tonumber(os.getenv("P"))

local ok, err = pcall(function()
  local sink = servers.smtp_sink{ args = {}, backlog = 512 }
  local srv = assert(nginx.start{
    log_level = "warn",
    http = "lua_socket_log_errors off;",
    lua_path = nginx.root() .. "/spec/?.lua",
    server = [[
    location = /send { content_by_lua_block { require("support.resty_handler").handle() } }
    location = /nosend { content_by_lua_block { ngx.req.read_body() ngx.print("ok=true\n") } }
    location = /batch {
      content_by_lua_block {
        ngx.req.read_body()
        local body, args = ngx.req.get_body_data(), ngx.req.get_uri_args()
        local c = assert(require("smtpkit.resty").connect{ host = "127.0.0.1",
          port = tonumber(args.port), tls = "none", pool = false })
        ngx.update_time()
        local t0, ok = ngx.now(), 0
        for _ = 1, tonumber(args.count) do
          local r = c:send{ from = "bench@smtpkit.test", to = "sink@example.org", body = body }
          if r and r.ok then ok = ok + 1 end
        end
        ngx.update_time()
        local secs = ngx.now() - t0
        c:close()
        ngx.print(ok, " ", secs)
      }
    }
]],
  })
  local body = "From: bench@smtpkit.test\r\nTo: sink@example.org\r\nSubject: bench\r\n\r\n"
    .. ("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456\r\n"):rep(27)
  local q = ("/send?port=%d&tls=none&pool_size=%d&backlog=%d&to=sink@example.org"):format(
    sink.port, P, N)
  -- warm-up (fills the pool), then the measured runs
  assert(srv:load{ path = q, body = body, requests = 200, concurrency = C, timeout = 60 })
  local base = assert(srv:load{ path = "/nosend", body = body, requests = N, concurrency = C,
    timeout = 60 })
  local res = assert(srv:load{ path = q, body = body, requests = N, concurrency = C, timeout = 60 })
  local bstatus, btext = srv:request("POST", ("/batch?port=%d&count=%d"):format(sink.port, N), body)
  assert(bstatus == 200, btext)
  local bok, bsecs = btext:match("^(%d+) ([%d.]+)")
  bok, bsecs = tonumber(bok), tonumber(bsecs)
  local okn, failed = 0, {}
  for i = 1, N do
    local r = res.results[i]
    if r and r[1] == 200 and r[2]:find("ok=true", 1, true) then
      okn = okn + 1
    elseif #failed < 3 then
      failed[#failed + 1] = r and r[2] or "no answer"
    end
  end
  print(("resty: %d requests, %d concurrent, pool %d, %d-byte messages, smtp-sink on loopback")
    :format(N, C, P, #body))
  print(("  nginx without sending : %8.0f requests/s"):format(N / base.seconds))
  print(("  smtpkit.resty send    : %8.0f requests/s  %8.0f messages/s  (%d/%d accepted)")
    :format(N / res.seconds, okn / res.seconds, okn, N))
  print(("  ratio send/no-send    : %8.2f"):format(base.seconds / res.seconds))
  print(("  one connection, %d messages from one handler: %8.0f messages/s (%d accepted)")
    :format(N, bok / math.max(bsecs, 0.001), bok))
  for _, f in ipairs(failed) do print("  failure: " .. f:gsub("\n", " ")) end
  local errs = srv:errors()
  srv:stop()
  sink:stop()
  if okn ~= N then error(("%d of %d requests did not send"):format(N - okn, N)) end
  if #errs > 0 then print("  nginx error log: " .. errs[1]) end
end)
servers.stop_all()
if not ok then
  io.stderr:write("run_resty.sh: ", tostring(err), "\n")
  os.exit(1)
end
LUA
