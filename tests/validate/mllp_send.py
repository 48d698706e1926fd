"""Sends HL7 messages to an MLLP listener as an EHR would, with a few
lines of Python sockets (not pumpgw's code), and prints the answers.

Usage: mllp_send.py [--tls CA CERT KEY] HOST PORT ANSWERS FILE...  Sends
each FILE (segments one per line or ended by CR) framed as MLLP (0x0B ...
0x1C 0x0D), then reads ANSWERS frames for it (or what comes within 5 s).
Prints each answer with its segments one per line, answers separated by a
blank line. With --tls: TLS (Python's ssl module), trusting only CA, with
the client certificate CERT and its KEY ("-" for none). A refused
handshake prints "TLS refused: ..." and exits 3.
"""

import socket
import ssl
import sys


def read_frames(sock, want, buf):
    """Up to `want` frames; returns them and what is left of the buffer."""
    out = []
    sock.settimeout(5)
    while len(out) < want:
        while b"\x1c\r" in buf and len(out) < want:
            end = buf.index(b"\x1c\r")
            start = buf.find(b"\x0b")
            out.append(buf[start + 1 : end])
            buf = buf[end + 2 :]
        if len(out) >= want:
            break
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not chunk:
            break
        buf += chunk
    return out, buf


def connect(host, port, tls):
    sock = socket.create_connection((host, port), timeout=5)
    if tls is None:
        return sock
    ca, cert, key = tls
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    if cert != "-":
        context.load_cert_chain(cert, key)
    return context.wrap_socket(sock, server_hostname=host)


def main():
    args = sys.argv[1:]
    tls = None
    if args[0] == "--tls":
        tls, args = tuple(args[1:4]), args[4:]
    host, port, want = args[0], int(args[1]), int(args[2])
    answers = []
    try:
        sock = connect(host, port, tls)
        if tls is not None:
            # TLS 1.3 tells of a refused client certificate only after the
            # handshake: the first read shows it.
            sock.settimeout(0.5)
            try:
                if sock.recv(1) == b"":
                    raise ssl.SSLError("the gateway closed the connection")
            except socket.timeout:
                pass
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as e:
        print(f"TLS refused: {e}")
        sys.exit(3)
    with sock:
        buf = b""
        for path in args[3:]:
            with open(path, "rb") as f:
                text = f.read().strip().replace(b"\r\n", b"\r").replace(b"\n", b"\r")
            try:
                sock.sendall(b"\x0b" + text + b"\r\x1c\r")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the listener refused it part way: read its answer
            got, buf = read_frames(sock, want, buf)
            answers.extend(got)
    print("\n\n".join(a.decode("utf-8").strip("\r").replace("\r", "\n") for a in answers))


if __name__ == "__main__":
    main()
