#!/usr/bin/python3
"""The independent parser for spec/message_spec.lua: reads a rendered message
(a file, argv[1]) with Python's email package, BytesParser(policy=default),
and prints what it understood as JSON:

  defects         every defect the parser registered, on any part
  headers         [[name, decoded value], ...] in order
  rfc2047         [[name, value], ...]: the raw values unfolded and decoded
                  by email.header (the legacy decoder, which follows RFC 2047
                  section 6.2 on white space between encoded words; the
                  policy.default address parser keeps that space)
  from/to/cc/reply_to  [{"name": display name, "addr": addr-spec}, ...]
  subject         decoded Subject (or null)
  structure       nested {"type": ..., "parts": [...]} of the MIME tree
  leaves          one entry per non-multipart part, in order: content_type,
                  cte, charset, disposition, filename, cid, size, sha256,
                  b64 (the decoded bytes, base64; only up to 1 MiB) and text
                  (get_content() for text/* parts)
  lines           max_line (octets, CRLF excluded), max_header_line,
                  bare_lf, bare_cr (line ends that are not CRLF), eightbit
"""
import base64
import email.header
import email.policy
import hashlib
import json
import sys
from email.parser import BytesParser


def addresses(msg, name):
    h = msg[name]
    if h is None:
        return None
    return [{"name": a.display_name, "addr": a.addr_spec} for a in h.addresses]


def structure(part):
    if part.is_multipart():
        return {"type": part.get_content_type(),
                "parts": [structure(p) for p in part.iter_parts()]}
    return {"type": part.get_content_type()}


def main():
    raw = open(sys.argv[1], "rb").read()
    msg = BytesParser(policy=email.policy.default).parsebytes(raw)
    defects, leaves = [], []
    for part in msg.walk():
        defects += [type(d).__name__ + ": " + str(d) for d in part.defects]
        for name, value in part.items():
            # decoding a header registers its defects (bad encoded words...)
            defects += [name + ": " + type(d).__name__ + ": " + str(d)
                        for d in getattr(value, "defects", ())]
        if part.is_multipart():
            continue
        data = part.get_payload(decode=True) or b""
        leaf = {
            "content_type": part.get_content_type(),
            "cte": part.get("Content-Transfer-Encoding"),
            "charset": part.get_content_charset(),
            "disposition": part.get_content_disposition(),
            "filename": part.get_filename(),
            "cid": part.get("Content-ID"),
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        if len(data) <= 1 << 20:
            leaf["b64"] = base64.b64encode(data).decode("ascii")
        if part.get_content_maintype() == "text":
            leaf["text"] = part.get_content()
        leaves.append(leaf)

    lines = raw.split(b"\r\n")
    head_end = raw.find(b"\r\n\r\n")
    header_lines = raw[:head_end].split(b"\r\n") if head_end >= 0 else lines
    out = {
        "defects": defects,
        "headers": [[k, str(v)] for k, v in msg.items()],
        "rfc2047": [[k, str(email.header.make_header(email.header.decode_header(
            v.replace("\r\n", ""))))] for k, v in msg.raw_items()],
        "from": addresses(msg, "From"),
        "to": addresses(msg, "To"),
        "cc": addresses(msg, "Cc"),
        "reply_to": addresses(msg, "Reply-To"),
        "subject": None if msg["Subject"] is None else str(msg["Subject"]),
        "structure": structure(msg),
        "leaves": leaves,
        "lines": {
            "max_line": max(len(x) for x in lines),
            "max_header_line": max(len(x) for x in header_lines),
            "bare_lf": any(b"\n" in x for x in lines),
            "bare_cr": any(b"\r" in x for x in lines),
            "eightbit": any(b > 127 for b in raw),
        },
    }
    json.dump(out, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
