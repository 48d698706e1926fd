"""Sends HL7 messages to an MLLP listener as an EHR would, with a few
lines of Python sockets (not pumpgw's code), and prints the answers.

Usage: mllp_send.py HOST PORT ANSWERS FILE...  Sends each FILE (segments
one per line or ended by CR) framed as MLLP (0x0B ... 0x1C 0x0D), then
reads ANSWERS frames for it (or what comes within 5 s). Prints each answer
with its segments one per line, answers separated by a blank line.
"""

import socket
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


def main():
    host, port, want = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    answers = []
    with socket.create_connection((host, port), timeout=5) as sock:
        buf = b""
        for path in sys.argv[4:]:
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
