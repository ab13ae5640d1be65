#!/usr/bin/python3
"""verify.py EXPECT.tsv TYPE=HOST:PORT... — compare memc-gen --expect lines
with what memcached serves (meta get, pipelined 1000 at a time); an address
may be a UNIX socket path (TYPE=/path/mc.sock).
Prints "N keys verified, M mismatches"; exit 1 on any mismatch."""
import socket
import sys


def main():
    expect = sys.argv[1]
    servers = dict(a.split("=", 1) for a in sys.argv[2:])
    conns = {}
    for t, addr in servers.items():
        if addr.startswith("/"):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(addr)
        else:
            host, port = addr.rsplit(":", 1)
            s = socket.create_connection((host, int(port)))
        conns[t] = (s, s.makefile("rb"))
    pending = {t: [] for t in servers}
    total = bad = 0

    def flush(t):
        nonlocal total, bad
        s, f = conns[t]
        batch = pending[t]
        s.sendall(b"".join(b"mg " + k + b" v\r\n" for k, _ in batch))
        for key, want in batch:
            head = f.readline()
            got = None
            if head.startswith(b"VA "):
                got = f.read(int(head.split()[1]) + 2)[:-2].hex()
            total += 1
            if got != want:
                bad += 1
                if bad <= 5:
                    print("mismatch %s: got %s want %s" % (key.decode(), got, want))
        batch.clear()

    with open(expect, "rb") as fh:
        for line in fh:
            key, want = line.rstrip(b"\n").split(b"\t")
            t = key.split(b":", 1)[0].decode()
            if t not in pending:
                continue
            pending[t].append((key, want.decode()))
            if len(pending[t]) >= 1000:
                flush(t)
    for t in pending:
        if pending[t]:
            flush(t)
    print("%d keys verified, %d mismatches" % (total, bad))
    sys.exit(1 if bad or not total else 0)


main()
