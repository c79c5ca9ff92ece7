"""message_bench.py MB ROUNDS: Python's email package composing the same
message as bench/message_bench.lua (text, html, one MB-megabyte binary
attachment) and rendering it to bytes (policy.SMTP: CRLF line ends); prints
the best rate in MB/s of attachment. Run by bench/run_message.sh."""
import sys
import time
from email import policy
from email.message import EmailMessage

mb = float(sys.argv[1]) if len(sys.argv) > 1 else 10
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
size = int(mb * 1024 * 1024)

x, block = 12345, bytearray()
for _ in range(65536):
    x = (x * 1103515245 + 12345) % 2147483648
    block.append((x // 65536) % 256)
blob = (bytes(block) * (size // len(block) + 1))[:size]
text = "Dear customer,\nplease find your invoice attached.\n" * 20
html = "<html><body><p>" + text.replace("\n", "<br>\n") + "</p></body></html>"

best, out = float("inf"), 0
for _ in range(rounds):
    t0 = time.process_time()
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = "Billing <billing@example.com>"
    msg["To"] = "customer@example.net"
    msg["Subject"] = "Your invoice"
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    msg.add_attachment(blob, maintype="application", subtype="octet-stream",
                       filename="invoice.bin")
    raw = msg.as_bytes()
    dt = time.process_time() - t0
    best = min(best, dt)
    out = len(raw)
print("%-8s %8.1f MB/s  (%.1f MB attachment -> %d bytes rendered, best of %d: %.3f s)"
      % ("python3", mb / best, mb, out, rounds, best))
