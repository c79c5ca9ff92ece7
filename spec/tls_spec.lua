-- TLS in the C transport (csrc/tls.c) against real TLS servers (aiosmtpd with
-- certificates this run makes: spec/support/make_certs.sh): verification on
-- by default, the messages that say which check failed and how to fix it,
-- cafile added to the system store, verify = false traced as insecure,
-- implicit TLS, session resumption.
local smtpkit = require "smtpkit"
local servers = require "support.servers"

local MSG = { from = "a@example.com", to = "b@example.com", body = "Subject: t\r\n\r\nx\r\n" }

describe("TLS", function()
  local certs
  local srv = {}
  setup(function()
    certs = servers.certs()
    srv.good = servers.scripted { tls = "starttls" }
    srv.selfsigned = servers.scripted { tls = "starttls", cert = certs.selfsigned_cert,
      key = certs.selfsigned_key }
    srv.wronghost = servers.scripted { tls = "starttls", cert = certs.wronghost_cert,
      key = certs.wronghost_key }
    srv.expired = servers.scripted { tls = "starttls", cert = certs.expired_cert, key = certs.expired_key }
    srv.implicit = servers.scripted { tls = "implicit" }
  end)
  teardown(function() servers.stop_all() end)

  local function o(s, extra)
    local t = { host = "127.0.0.1", port = s.port, timeouts = { connect = 5, command = 5 } }
    for k, v in pairs(extra or {}) do t[k] = v end
    return t
  end

  it("a self-signed server without cafile fails, and the message names cafile", function()
    local r, err = smtpkit.send(o(srv.selfsigned), MSG)
    assert.is_nil(r)
    assert.equal("tls", err.kind)
    assert.matches("certificate verify failed", err.message, 1, true)
    assert.matches("self%-signed", err.message)
    assert.matches("trust: system store", err.message, 1, true)
    assert.matches("set cafile", err.message, 1, true)
    assert.matches("127.0.0.1:" .. srv.selfsigned.port, err.message, 1, true)
    assert.equal(0, #srv.selfsigned:messages())
  end)

  it("the same server with cafile set to its certificate succeeds", function()
    local r = assert(smtpkit.send(o(srv.selfsigned, { cafile = certs.selfsigned_cert }), MSG))
    assert.is_true(r.ok)
    assert.is_true(srv.selfsigned:wait_messages(1)[1].tls)
  end)

  it("a CA-signed server: unknown CA without cafile, verified with cafile (added to the system store)",
  function()
    local r, err = smtpkit.send(o(srv.good), MSG)
    assert.is_nil(r)
    assert.equal("tls", err.kind)
    assert.matches("unable to get local issuer certificate", err.message, 1, true)
    assert.matches("set cafile to the relay's CA bundle", err.message, 1, true)
    local c = assert(smtpkit.connect(o(srv.good, { cafile = certs.ca })))
    assert.is_true(c:info().tls)
    assert.is_true(assert(c:send(MSG)).ok)
    c:close()
  end)

  it("a wrong CA file shows the trust in use (system store + cafile)", function()
    local r, err = smtpkit.send(o(srv.selfsigned, { cafile = certs.ca }), MSG)
    assert.is_nil(r)
    assert.matches("trust: system store + cafile " .. certs.ca, err.message, 1, true)
  end)

  it("system_trust = false trusts only cafile", function()
    local r = assert(smtpkit.send(o(srv.good, { cafile = certs.ca, system_trust = false }), MSG))
    assert.is_true(r.ok)
  end)

  it("checks the host name: by name (localhost) and by address", function()
    -- good cert, by name: localhost may resolve to ::1 first (nothing listens
    -- there), then 127.0.0.1: each address is tried in turn
    local r = assert(smtpkit.send(o(srv.good, { host = "localhost", cafile = certs.ca }), MSG))
    assert.is_true(r.ok)
    -- the wrong-host certificate, by address and by name
    local r2, err = smtpkit.send(o(srv.wronghost, { cafile = certs.ca }), MSG)
    assert.is_nil(r2)
    assert.equal("tls", err.kind)
    assert.matches("host name mismatch", err.message, 1, true)
    assert.matches("wrong.example.com", err.message, 1, true)
    local r3, err3 = smtpkit.send(o(srv.wronghost, { host = "localhost", cafile = certs.ca }), MSG)
    assert.is_nil(r3)
    assert.matches("not valid for localhost", err3.message, 1, true)
  end)

  it("over IPv6 (::1), the certificate checked against the IPv6 address", function()
    local v6 = servers.scripted { tls = "starttls", host = "::1" }
    local c = assert(smtpkit.connect(o(v6, { host = "::1", cafile = certs.ca })))
    assert.equal("[::1]:" .. v6.port, c:info().peer)
    assert.is_true(assert(c:send(MSG)).ok)
    c:close()
    v6:stop()
  end)

  it("an expired certificate says so", function()
    local r, err = smtpkit.send(o(srv.expired, { cafile = certs.ca }), MSG)
    assert.is_nil(r)
    assert.equal("tls", err.kind)
    assert.matches("expired", err.message, 1, true)
  end)

  it("verify = false connects anyway and the trace says it is insecure", function()
    local lines = {}
    local r = assert(smtpkit.send(o(srv.expired, { verify = false,
      trace = function(l) lines[#lines + 1] = l end }), MSG))
    assert.is_true(r.ok)
    assert.matches("INSECURE", table.concat(lines, "\n"), 1, true)
  end)

  it("implicit TLS (the default for port 465 style servers)", function()
    local c = assert(smtpkit.connect(o(srv.implicit, { tls = "implicit", cafile = certs.ca })))
    local info = c:info()
    assert.is_true(info.tls)
    assert.matches("^TLSv1%.[23]$", info.tls_version)
    assert.is_true(assert(c:send(MSG)).ok)
    c:close()
  end)

  it("resumes the TLS session when the client reconnects", function()
    local c = assert(smtpkit.connect(o(srv.good, { cafile = certs.ca, max_messages = 1 })))
    assert.is_true(assert(c:send(MSG)).ok)
    assert.is_true(assert(c:send(MSG)).ok)   -- max_messages = 1: a new connection
    assert.equal(2, c.connections)
    assert.is_true(c:info().tls_resumed)
    c:close()
  end)

  it("presents a client certificate when the server requires one", function()
    local need = servers.scripted { tls = "starttls", client_ca = certs.ca }
    local r, err = smtpkit.send(o(need, { cafile = certs.ca }), MSG)
    assert.is_nil(r)
    assert.equal("tls", err.kind)
    assert.equal(0, #need:messages())
    r = assert(smtpkit.send(o(need, { cafile = certs.ca, client_cert = certs.client_cert,
      client_key = certs.client_key }), MSG))
    assert.is_true(r.ok)
    assert.equal("client", need:wait_messages(1)[1].client_cert)
    need:stop()
  end)

  it("a cafile that cannot be read fails at connect, naming the option", function()
    local c, err = smtpkit.connect(o(srv.good, { cafile = "/nonexistent/ca.pem" }))
    assert.is_nil(c)
    assert.equal("tls", err.kind)
    assert.matches("cafile", err.message, 1, true)
  end)

  it("a plain-text server spoken to with implicit TLS fails cleanly", function()
    local plain = servers.scripted {}
    local c, err = smtpkit.connect(o(plain, { tls = "implicit", cafile = certs.ca }))
    assert.is_nil(c)
    assert.is_truthy(err.kind == "tls" or err.kind == "timeout", err.kind)
    plain:stop()
  end)
end)
