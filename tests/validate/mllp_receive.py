"""An EHR's MLLP receiver for documentation (IHE PCD-01 and PCD-10), as a
few lines of Python sockets (not pumpgw's code), for the tests.

Usage: mllp_receive.py PORT OUT [--tls CERT KEY CA]  Listens on
127.0.0.1:PORT, one connection at a time (with --tls: TLS with Python's
ssl module, presenting CERT and KEY and requiring a client certificate
CA signed; a refused handshake is printed on stderr and the next
connection taken). Each message received is appended to OUT as one JSON line
({"control": MSH-10, "type": MSH-9, "text": the message, segments ended
by CR}), flushed and synced to disk, and only then acknowledged: ACK with
MSA-1 AA and MSA-2 its MSH-10. Prints "listening" once it is. Runs until
killed.
"""

import json
import os
import socket
import ssl
import sys


def fields(segment):
    return segment.split("|")


def ack(message):
    msh = fields(message.split("\r")[0])
    control = msh[9] if len(msh) > 9 else ""
    version = msh[11] if len(msh) > 11 else "2.6"
    return (
        f"MSH|^~\\&|TEST-EHR|EHR|{msh[2] if len(msh) > 2 else ''}||20261204000000||ACK^R01^ACK|A{control}|P|{version}\r"
        f"MSA|AA|{control}\r"
    ), control, (msh[8] if len(msh) > 8 else "")


def serve(conn, out):
    buf = b""
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            return
        buf += chunk
        while b"\x1c\r" in buf:
            end = buf.index(b"\x1c\r")
            start = buf.find(b"\x0b")
            message = buf[start + 1 : end].decode("utf-8")
            buf = buf[end + 2 :]
            answer, control, kind = ack(message)
            out.write(json.dumps({"control": control, "type": kind, "text": message}) + "\n")
            out.flush()
            os.fsync(out.fileno())
            conn.sendall(b"\x0b" + answer.encode("utf-8") + b"\x1c\r")


def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    context = None
    if len(sys.argv) > 3 and sys.argv[3] == "--tls":
        cert, key, ca = sys.argv[4:7]
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=ca)
        context.load_cert_chain(cert, key)
        context.verify_mode = ssl.CERT_REQUIRED
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(4)
    print("listening", flush=True)
    with open(path, "a", encoding="utf-8") as out:
        while True:
            conn, _ = server.accept()
            if context is not None:
                try:
                    conn = context.wrap_socket(conn, server_side=True)
                    print(f"TLS client: {conn.getpeercert().get('subject')}", file=sys.stderr, flush=True)
                except (ssl.SSLError, OSError) as e:
                    print(f"TLS refused: {e}", file=sys.stderr, flush=True)
                    conn.close()
                    continue
            with conn:
                try:
                    serve(conn, out)
                except (ConnectionResetError, BrokenPipeError):
                    pass


if __name__ == "__main__":
    main()
