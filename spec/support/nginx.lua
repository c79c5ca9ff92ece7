--- Starts and stops a real nginx (Debian's nginx + libnginx-mod-http-lua +
-- lua-resty-core) for the specs, with a generated config in a fresh temp
-- prefix, listening on 127.0.0.1 only.
--
--   local nginx = require "support.nginx"
--   local srv = assert(nginx.start{
--     http = "lua_shared_dict d 1m;",            -- extra http{} directives
--     server = "location /t { content_by_lua_block { ngx.say('hi') } }",
--     trusted_certificate = certs .. "/ca.pem",  -- lua_ssl_trusted_certificate
--     files = { ["handlers/x.lua"] = "..." },     -- written under the prefix
--   })
--   local status, body, headers = srv:request("POST", "/t", "body", { ["X-A"] = "1" })
--   srv:stop()      -- SIGTERM to the one nginx process, waits, removes the prefix
--
-- nginx runs with `daemon off; master_process off;`: the PID it writes is the
-- only nginx process, and it is the one stop() signals. Lua code comes from
-- lua/ of this checkout and C modules from build/jit/ (the LuaJIT ABI nginx
-- runs; never the Lua 5.4 build): start() runs `make -s LUA=jit` first so the
-- LuaJIT build is there and current. `$prefix` in `http`/`server` text is
-- nginx's own prefix variable (with a trailing slash).
--
-- The machine notes' traps are handled here: `;;` kept in lua_package_path
-- (resty.core lives in LuaJIT's default path), ndk_http_module loaded before
-- ngx_http_lua_module, all five *_temp_path inside the prefix, `-e` sends the
-- start-up log into the prefix. start() proves nginx is up by an HTTP request
-- (not `nginx -t`, which passes a config that fails at start-up).
local socket = require "socket"
local http = require "socket.http"
local ltn12 = require "ltn12"

local M = {}

local MODULES = "/usr/lib/nginx/modules"
local NGINX = os.getenv("SMTPKIT_NGINX") or "/usr/sbin/nginx"

local function sh_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Runs a shell command; returns ok, output. (LuaJIT's popen:close() does not
-- report the exit status, so the command prints it last.)
-- Commands run without LD_PRELOAD: under `make san-specs` the interpreter
-- has the ASan runtime preloaded, which nginx, make and Python must not get.
local function run(cmd)
  local p = io.popen("unset LD_PRELOAD; (" .. cmd .. ") 2>&1; echo \"~rc=$?\"")
  local out = p:read("*a")
  p:close()
  local body, rc = out:match("^(.-)~rc=(%d+)%s*$")
  return tonumber(rc) == 0, body or out
end

local servers = require "support.servers"
local read_file, write_file = servers.read_file, servers.write_file

--- The checkout's root (the directory `make` runs in: busted runs from it).
function M.root()
  local p = io.popen("pwd")
  local d = p:read("*l")
  p:close()
  return d
end

--- A free TCP port on 127.0.0.1 (bound then released: a tiny race, fine here).
function M.free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

local built = false
--- Builds (or refreshes) build/jit/smtpkit/core.so; returns its path or nil, err.
function M.ensure_jit_build()
  local root = M.root()
  local so = root .. "/build/jit/smtpkit/core.so"
  if not built then
    local ok, out = run("cd " .. sh_quote(root) .. " && make -s LUA=jit all")
    if not ok then return nil, "make LUA=jit failed:\n" .. out end
    built = true
  end
  if not read_file(so) then return nil, "no " .. so end
  return so
end

local function pid_alive(pid)
  return (run("kill -0 " .. pid))
end

local Server = {}
Server.__index = Server

--- The URL of `path` on this server.
function Server:url(path)
  return ("http://127.0.0.1:%d%s"):format(self.port, path or "/")
end

--- One HTTP request (LuaSocket; blocking, with a timeout in seconds).
-- Returns status, body, headers; or nil, err.
function Server:request(method, path, body, headers, timeout)
  local chunks = {}
  local h = { ["content-length"] = body and tostring(#body) or nil }
  for k, v in pairs(headers or {}) do h[k:lower()] = v end
  http.TIMEOUT = timeout or 30
  local ok, status, rh = http.request{
    url = self:url(path), method = method or "GET", headers = h,
    source = body and ltn12.source.string(body) or nil,
    sink = ltn12.sink.table(chunks),
  }
  if not ok then return nil, status end
  return status, table.concat(chunks), rh
end

--- The error log so far (for messages in failed assertions).
function Server:error_log()
  return read_file(self.prefix .. "/logs/error.log") or ""
end

--- Lines of the error log at [error] level or worse (alert, crit, emerg).
function Server:errors()
  local out = {}
  for line in self:error_log():gmatch("[^\n]+") do
    if line:find("%[error%]") or line:find("%[alert%]") or line:find("%[crit%]")
      or line:find("%[emerg%]") then
      out[#out + 1] = line
    end
  end
  return out
end

--- Lines of the error log showing a raised Lua error (what smtpkit.resty
-- must never cause): runtime errors, aborted threads, tracebacks.
function Server:raised()
  local out = {}
  for line in self:error_log():gmatch("[^\n]+") do
    if line:find("runtime error", 1, true) or line:find("entry thread aborted", 1, true)
      or line:find("stack traceback", 1, true) then
      out[#out + 1] = line
    end
  end
  return out
end

--- Stops nginx (SIGTERM to its PID, then waits up to 10 s; SIGKILL after)
-- and removes the prefix unless `keep` is true. Safe to call twice.
function Server:stop(keep)
  if self.pid then
    run("kill -TERM " .. self.pid)
    for _ = 1, 200 do
      if not pid_alive(self.pid) then break end
      socket.sleep(0.05)
    end
    if pid_alive(self.pid) then run("kill -KILL " .. self.pid) end
    self.pid = nil
  end
  if not keep and self.prefix and not os.getenv("SMTPKIT_KEEP_NGINX") then
    run("rm -rf " .. sh_quote(self.prefix))
    self.prefix = nil
  end
end

-- A bounded HTTP load generator (Python's asyncio, stdlib only, Debian's
-- /usr/bin/python3): `requests` requests over `concurrency` connections at
-- once, each its own HTTP/1.0 connection, every request with a distinct
-- `?n=<i>` and the same body. Stops by itself after `timeout` seconds.
local LOADGEN = [==[
import asyncio, json, sys, time
cfg = json.load(open(sys.argv[1]))
body = cfg["body"].encode()
results = [None] * cfg["requests"]
async def one(i):
    sep = "&" if "?" in cfg["path"] else "?"
    try:
        r, w = await asyncio.open_connection("127.0.0.1", cfg["port"])
        head = "%s %s%sn=%d HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n" % (
            cfg["method"], cfg["path"], sep, i, len(body))
        for k, v in cfg.get("headers", {}).items():
            head += "%s: %s\r\n" % (k, v)
        w.write(head.encode() + b"\r\n" + body)
        await w.drain()
        data = await r.read()
        w.close()
        status = int(data.split(b" ", 2)[1])
        results[i] = [status, data.split(b"\r\n\r\n", 1)[1].decode("utf-8", "replace")]
    except Exception as e:
        results[i] = [0, "loadgen: %r" % (e,)]
async def main():
    sem = asyncio.Semaphore(cfg["concurrency"])
    async def guarded(i):
        async with sem:
            await one(i)
    t0 = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(guarded(i) for i in range(cfg["requests"]))),
                           cfg["timeout"])
    return time.monotonic() - t0
try:
    secs = asyncio.run(main())
except asyncio.TimeoutError:
    secs = cfg["timeout"]
def esc(t):
    return t.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
print("seconds\t%f" % secs)
for i, r in enumerate(results):
    if r is None:
        r = [0, "loadgen: not run (timeout)"]
    print("%d\t%d\t%s" % (i, r[0], esc(r[1])))
]==]

--- Runs the load generator against this server. opts: path, method
-- ("POST"), body (""), headers, requests (500), concurrency (50), timeout
-- (120 s). Returns { seconds =, results = { {status, body}, ... } } (index
-- i+1 for request n=i; status 0 when the request failed on the wire), or
-- nil, err.
function Server:load(opts)
  local function enc(v) -- tiny JSON encoder for the config (strings, numbers, tables)
    local t = type(v)
    if t == "number" then return tostring(v) end
    if t == "string" then
      return '"' .. v:gsub('[%c"\\]', function(c) return ("\\u%04x"):format(c:byte()) end) .. '"'
    end
    local parts = {}
    for k, x in pairs(v) do parts[#parts + 1] = enc(tostring(k)) .. ":" .. enc(x) end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  local cfg = {
    port = self.port, path = opts.path, method = opts.method or "POST", body = opts.body or "",
    headers = opts.headers or {}, requests = opts.requests or 500,
    concurrency = opts.concurrency or 50, timeout = opts.timeout or 120,
  }
  write_file(self.prefix .. "/loadgen.py", LOADGEN)
  write_file(self.prefix .. "/loadgen.json", enc(cfg))
  local ok, out = run(("timeout %d /usr/bin/python3 %s/loadgen.py %s/loadgen.json"):format(
    cfg.timeout + 30, sh_quote(self.prefix), sh_quote(self.prefix)))
  if not ok then return nil, "load generator failed: " .. out end
  local res = { seconds = tonumber(out:match("^seconds\t([%d%.]+)")), results = {} }
  if not res.seconds then return nil, "load generator said: " .. out end
  local unesc = { n = "\n", r = "\r", t = "\t", ["\\"] = "\\" }
  for i, status, body in out:gmatch("\n(%d+)\t(%d+)\t([^\n]*)") do
    res.results[tonumber(i) + 1] = { tonumber(status), (body:gsub("\\(.)", unesc)) }
  end
  return res
end

local CONF = [[
daemon off;
master_process off;
worker_processes 1;
error_log logs/error.log %s;
pid logs/nginx.pid;
load_module %s/ndk_http_module.so;
load_module %s/ngx_http_lua_module.so;
events { worker_connections %d; }
http {
  access_log off;
  client_body_temp_path temp/client_body;
  proxy_temp_path temp/proxy;
  fastcgi_temp_path temp/fastcgi;
  uwsgi_temp_path temp/uwsgi;
  scgi_temp_path temp/scgi;
  client_body_buffer_size 1m;
  client_max_body_size 10m;
  lua_package_path "%s;;";
  lua_package_cpath "%s;;";
%s
%s
  server {
    listen 127.0.0.1:%d;
%s
  }
}
]]

--- Starts nginx. opts:
--   http, server     config text for http{} and the one server{}
--   trusted_certificate  file for lua_ssl_trusted_certificate (the test CA)
--   files            { [relative path] = content } written under the prefix
--   log_level        error_log level (default "info")
--   worker_connections (default 1024)
--   lua_path, lua_cpath  extra entries put before the checkout's lua/, build/jit/
--   conf             a whole nginx.conf to use instead of the generated one
--                    (it must listen on opts.port, keep logs/ and temp paths
--                    inside the prefix, and run `daemon off; master_process off;`)
--   env              { NAME = value }: environment of the nginx process (for `env` directives)
--   prefix           an existing directory to use as the prefix (removed by stop())
-- Returns a server object (fields: port, prefix, pid) or nil, err with the
-- error log.
function M.start(opts)
  opts = opts or {}
  local _, berr = M.ensure_jit_build()
  if berr then return nil, berr end
  local root = M.root()
  local prefix = opts.prefix
  if not prefix then
    local p = io.popen("mktemp -d /tmp/smtpkit-nginx.XXXXXX")
    prefix = p:read("*l")
    p:close()
    if not prefix or prefix == "" then return nil, "mktemp failed" end
  end
  for _, d in ipairs{ "logs", "conf", "temp" } do
    assert(run("mkdir -p " .. sh_quote(prefix .. "/" .. d)))
  end
  for rel, content in pairs(opts.files or {}) do
    local path = prefix .. "/" .. rel
    assert(run("mkdir -p " .. sh_quote(path:match("^(.*)/[^/]*$"))))
    write_file(path, content)
  end
  local lpath = (opts.lua_path and opts.lua_path .. ";" or "")
    .. root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua"
  local cpath = (opts.lua_cpath and opts.lua_cpath .. ";" or "") .. root .. "/build/jit/?.so"
  local ssl = ""
  if opts.trusted_certificate then
    ssl = ("  lua_ssl_trusted_certificate %s;\n  lua_ssl_verify_depth 3;"):format(opts.trusted_certificate)
  end
  local port = opts.port or M.free_port()
  local conf = opts.conf or CONF:format(opts.log_level or "info", MODULES, MODULES,
    opts.worker_connections or 1024, lpath, cpath, ssl, opts.http or "", port, opts.server or "")
  write_file(prefix .. "/conf/nginx.conf", conf)

  local envs = {}
  for k, v in pairs(opts.env or {}) do envs[#envs + 1] = k .. "=" .. sh_quote(v) end
  local cmd = ("unset LD_PRELOAD; %s%s -p %s -c conf/nginx.conf -e logs/error.log >%s 2>&1 & echo $!"):format(
    #envs > 0 and ("env " .. table.concat(envs, " ") .. " ") or "",
    NGINX, sh_quote(prefix .. "/"), sh_quote(prefix .. "/logs/stdout.log"))
  local pp = io.popen(cmd)
  local pid = tonumber(pp:read("*l"))
  pp:close()
  local srv = setmetatable({ port = port, prefix = prefix, pid = pid, root = root }, Server)
  if not pid then
    srv:stop(true)
    return nil, "could not start nginx"
  end
  -- Up when it answers HTTP (any status); dead when the PID is gone.
  local deadline = socket.gettime() + 10
  while socket.gettime() < deadline do
    local c = socket.tcp()
    c:settimeout(0.5)
    local ok = c:connect("127.0.0.1", port)
    c:close()
    if ok then return srv end
    if not pid_alive(pid) then break end
    socket.sleep(0.05)
  end
  local log = srv:error_log() .. (read_file(prefix .. "/logs/stdout.log") or "")
  srv:stop(true)
  return nil, "nginx did not start (prefix " .. prefix .. "):\n" .. log
end

return M
