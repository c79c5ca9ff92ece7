-- message_bench.lua VM MB ROUNDS: composes a message (text, html and one
-- MB-megabyte binary attachment given as a string) and encodes it through
-- msg:chunks(), ROUNDS times; prints the best rate in MB/s of attachment.
-- Run by bench/run_message.sh (which sets package.cpath for the VM's build).
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
local message = require "smtpkit.message"

local vm, mb, rounds = arg[1] or "lua", tonumber(arg[2] or "10"), tonumber(arg[3] or "5")
local size = math.floor(mb * 1024 * 1024)

-- pseudo-random bytes (not all zeros: the encoder must do real work)
local block = {}
local x = 12345
for i = 1, 65536 do
  x = (x * 1103515245 + 12345) % 2147483648
  block[i] = string.char(math.floor(x / 65536) % 256)
end
block = table.concat(block)
local blob = block:rep(math.ceil(size / #block)):sub(1, size)

local text = ("Dear customer,\nplease find your invoice attached.\n"):rep(20)
local html = "<html><body><p>" .. text:gsub("\n", "<br>\n") .. "</p></body></html>"

local best, out_size = math.huge, 0
for _ = 1, rounds do
  local t0 = os.clock()
  local msg = assert(message {
    from = "Billing <billing@example.com>", to = "customer@example.net",
    subject = "Your invoice", text = text, html = html,
    attachments = { { filename = "invoice.bin", content_type = "application/octet-stream", data = blob } },
  })
  local n = 0
  for chunk in msg:chunks() do n = n + #chunk end
  local dt = os.clock() - t0
  if dt < best then best = dt end
  out_size = n
end
print(("%-8s %8.1f MB/s  (%.1f MB attachment -> %d bytes rendered, best of %d: %.3f s)")
  :format(vm, mb / best, mb, out_size, rounds, best))
