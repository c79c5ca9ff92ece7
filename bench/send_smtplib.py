#!/usr/bin/python3
"""send_smtplib.py PORT N [TLS=none] [CAFILE] - Python's smtplib on ONE
connection: N copies of the same ~2 KB message as bench/send_client.lua;
prints "msgs wall_s cpu_s"."""
import smtplib
import ssl
import sys
import time

port, n = int(sys.argv[1]), int(sys.argv[2])
tls = sys.argv[3] if len(sys.argv) > 3 else "none"
rows = [("%02d " % i) + ("abcdefghijklmnopqrstuvwxyz0123456789-_" * 2) for i in range(1, 27)]
body = ("From: bench@example.com\r\nTo: sink@example.com\r\nSubject: bench\r\n\r\n"
        + "\r\n".join(rows) + "\r\n").encode()
t0, c0 = time.time(), time.process_time()
s = smtplib.SMTP("127.0.0.1", port, local_hostname="localhost")
if tls == "starttls":
    s.starttls(context=ssl.create_default_context(cafile=sys.argv[4]))
for _ in range(n):
    s.sendmail("bench@example.com", ["sink@example.com"], body)
s.quit()
print("%d %.3f %.3f" % (n, time.time() - t0, time.process_time() - c0))
