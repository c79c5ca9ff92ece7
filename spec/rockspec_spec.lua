-- The rockspec builds and installs with Debian's luarocks, without network,
-- and `require "smtpkit"` then works from that tree alone.
local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"exit=$?\"")
  local out = p:read("a") or p:read("*a")
  p:close()
  return out, tonumber(out:match("exit=(%d+)%s*$"))
end

describe("luarocks make", function()
  it("installs a tree from which require 'smtpkit' works", function()
    local lua = os.getenv("SMTPKIT_LUA") or "lua5.4"
    local ver = lua:match("^lua(5%.%d)$") or "5.1"
    local tree = os.tmpname()
    os.remove(tree)
    local out, code = sh(("luarocks --lua-version=%s --tree=%s make %s")
      :format(ver, tree, "rockspec/smtpkit-scm-1.rockspec"))
    assert.equal(0, code, out)
    local probe = [[
package.path = ARGV_TREE .. "/share/lua/VER/?.lua;" .. ARGV_TREE .. "/share/lua/VER/?/init.lua"
package.cpath = ARGV_TREE .. "/lib/lua/VER/?.so"
local s = require "smtpkit"
local r = assert(s.parse_reply("250 2.0.0 ok\r\n"))
print("ok", r.code, package.searchpath and package.searchpath("smtpkit.core", package.cpath) or "")]]
    probe = probe:gsub("ARGV_TREE", ("%q"):format(tree)):gsub("VER", ver)
    local f = assert(io.open(tree .. "/probe.lua", "w"))
    f:write(probe)
    f:close()
    out, code = sh(("cd / && %s %s/probe.lua"):format(lua, tree))
    sh("rm -rf " .. tree)
    assert.equal(0, code, out)
    assert.truthy(out:find("ok\t250", 1, true), out)
  end)
end)

describe("make install", function()
  it("installs where the chosen Lua looks, so require works with its default paths", function()
    local lua = os.getenv("SMTPKIT_LUA") or "lua5.4"
    local abi = lua == "luajit" and "jit" or lua:match("^lua(5%.%d)$")
    local dir = lua == "luajit" and "5.1" or abi
    local prefix = os.tmpname()
    os.remove(prefix)
    local out, code = sh(("make -s LUA=%s install PREFIX=%s"):format(abi, prefix))
    assert.equal(0, code, out)
    -- Only the standard layout under the prefix: LUA_PATH/LUA_CPATH as a
    -- user would set them for /usr/local, with the prefix swapped in.
    out, code = sh(("cd / && LUA_PATH='%s/share/lua/%s/?.lua;%s/share/lua/%s/?/init.lua' "
      .. "LUA_CPATH='%s/lib/lua/%s/?.so' %s -e "
      .. "'print(require(\"smtpkit\").classify(\"550 5.1.1 x\").reason)'")
      :format(prefix, dir, prefix, dir, prefix, dir, lua))
    sh("rm -rf " .. prefix)
    assert.equal(0, code, out)
    assert.truthy(out:find("user_unknown", 1, true), out)
  end)
end)

