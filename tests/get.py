#!/usr/bin/python3
"""get.py — `memc-load get` against real memcached.

Three memcached form the idfa type.  For each distribution memc-load
--oneshot loads a generated file, then `memc-load get` with the same
settings reads every key: each is found on the server that really holds it
(so get routes as the writer did), and its decoded lat, lon and apps pack
back to the exact bytes memc-gen expects.  Then the cases around it:

  * text output of a found key (server, lat, lon, apps, ttl never, size);
  * a missing key: exit 1, "not found" / "found": false;
  * a value that is not UserApps (a raw `set` through a socket): exit 1,
    "not a UserApps value", its ttl and size still shown;
  * a UserApps value set with an expiry: its remaining ttl;
  * --raw: the value bytes, nothing else on stdout;
  * a server that is down: exit 75;
  * another distribution than the load's finds fewer keys (exit 1);
  * a malformed key or unknown type: 64; a type without servers: 78.

usage: get.py MEMC_LOAD MEMC_GEN
"""
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import memcached  # noqa: E402  (tests/lib/memcached.py)

RECORDS = 600
DISTRIBUTIONS = [("ketama",), ("ketama_weighted",), ("modula", "crc"), ("modula", "murmur"),
                 ("python_memcache",), ("rendezvous",)]
failed = []


def check(ok, what):
    print("%s: %s" % ("ok" if ok else "FAIL", what))
    if not ok:
        failed.append(what)


def command(port, data):
    """Raw text-protocol bytes; the first line of the answer."""
    with socket.create_connection(("127.0.0.1", port), 5) as s:
        s.sendall(data)
        return s.makefile("rb").readline()


def holder(ports, key):
    """The port of the server that holds key, or None."""
    for port in ports:
        if command(port, b"mg " + key + b" k\r\n").startswith(b"HD"):
            return port
    return None


def pack(apps, lat, lon):
    """UserApps as memc-load packs it (src/load/pack.h)."""
    out = bytearray()
    for a in apps:
        out.append(0x08)
        while a >= 0x80:
            out.append(a & 0x7f | 0x80)
            a >>= 7
        out.append(a)
    return bytes(out) + b"\x11" + struct.pack("<d", lat) + b"\x19" + struct.pack("<d", lon)


def settings(dist):
    opts = ["--distribution", dist[0]]
    return opts + (["--hash", dist[1]] if len(dist) > 1 else [])


class Ctx:
    def __init__(self, memc_load, memc_gen, tmp, ports):
        self.memc_load, self.memc_gen, self.tmp, self.ports = memc_load, memc_gen, tmp, ports
        self.servers = ",".join("127.0.0.1:%d" % p for p in ports)

    def get(self, dist, *args, servers=None):
        cmd = [self.memc_load, "get", "-c", "/dev/null", "--idfa", servers or self.servers,
               "--gaid", "", "--adid", "", "--dvid", ""] + settings(dist) + list(args)
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def load(self, dist):
        """A fresh generated file loaded with this distribution: {key: value}."""
        for port in self.ports:
            assert command(port, b"flush_all\r\n") == b"OK\r\n"
        name = "-".join(dist)
        spool = os.path.join(self.tmp, "spool-" + name)
        expect = os.path.join(self.tmp, "expect-" + name + ".tsv")
        subprocess.run([self.memc_gen, "-n", str(RECORDS), "-s", "5", "-t", "idfa", "--expect",
                        expect, spool], check=True, stdout=subprocess.DEVNULL)
        r = subprocess.run([self.memc_load, "--oneshot", "-c", "/dev/null", "--pattern",
                            spool + "/*.tsv.gz", "--idfa", self.servers, "--gaid", "", "--adid",
                            "", "--dvid", ""] + settings(dist), stderr=subprocess.PIPE)
        if r.returncode != 0:
            sys.exit("memc-load %s exited %d: %s" % (name, r.returncode, r.stderr.decode()))
        want = {}
        with open(expect, "rb") as f:
            for line in f:
                key, value = line.rstrip(b"\n").split(b"\t")
                want[key] = bytes.fromhex(value.decode())
        return want


def check_all_keys(ctx, dist, want):
    """get --json of every key: found where it is stored, with its value."""
    keys = sorted(want)
    r = ctx.get(dist, "--json", *[k.decode() for k in keys])
    objs = [json.loads(line) for line in r.stdout.splitlines()]
    good = wrong_server = 0
    for k, o in zip(keys, objs):
        if o.get("found") and pack(o["apps"], o["lat"], o["lon"]) == want[k]:
            good += 1
        if o.get("server") != "127.0.0.1:%s" % holder(ctx.ports, k):
            wrong_server += 1
    check(r.returncode == 0 and len(objs) == len(keys) and good == len(keys) and
          not wrong_server,
          "%s: get finds %d/%d keys with their values, %d named another server than holds "
          "them (exit %d)" % ("+".join(dist), good, len(keys), wrong_server, r.returncode))


def check_cases(ctx, dist, want):
    """The single-key cases, on data loaded with dist."""
    key = sorted(want)[0]
    r = ctx.get(dist, key.decode())
    out = r.stdout.decode()
    check(r.returncode == 0 and "key     %s\n" % key.decode() in out and "ttl     never\n" in out
          and "size    %d bytes\n" % len(want[key]) in out and "\nlat     " in out
          and "\napps    " in out, "text output of a found key (exit %d):\n%s" % (r.returncode, out))
    r = ctx.get(dist, "--json", key.decode(), "idfa:no-such-key")
    objs = [json.loads(line) for line in r.stdout.splitlines()]
    check(r.returncode == 1 and len(objs) == 2 and objs[0]["found"] and objs[0]["ttl"] is None
          and objs[1]["found"] is False, "a missing key: exit 1, found false (exit %d)"
          % r.returncode)
    r = ctx.get(dist, "idfa:no-such-key")
    check(r.returncode == 1 and "error   not found\n" in r.stdout.decode(),
          "a missing key in text: 'not found', exit 1 (exit %d)" % r.returncode)
    r = ctx.get(dist, "--raw", key.decode())
    check(r.returncode == 0 and r.stdout == want[key], "--raw prints the value bytes")


def check_values(ctx, dist):
    """A value that is not UserApps, and one with an expiry, set raw."""
    for port in ctx.ports:  # on every server: wherever get routes it
        assert command(port, b"set idfa:not-userapps 0 300 5\r\nhello\r\n") == b"STORED\r\n"
        value = pack([1, 2, 300], 55.5, -1.25)
        assert command(port, b"set idfa:expiring 0 600 %d\r\n%s\r\n" % (len(value), value)) \
            == b"STORED\r\n"
    r = ctx.get(dist, "idfa:not-userapps")
    out = r.stdout.decode()
    check(r.returncode == 1 and "error   not a UserApps value" in out and "size    5 bytes" in out,
          "a value that is not UserApps: said so, exit 1 (exit %d):\n%s" % (r.returncode, out))
    r = ctx.get(dist, "--json", "idfa:not-userapps")
    o = json.loads(r.stdout)
    check(r.returncode == 1 and o["found"] and o["error"].startswith("not a UserApps value")
          and 290 <= o["ttl"] <= 300 and o["size"] == 5, "the same as JSON: %s" % o)
    r = ctx.get(dist, "--json", "idfa:expiring")
    o = json.loads(r.stdout)
    check(r.returncode == 0 and o["apps"] == [1, 2, 300] and o["lat"] == 55.5
          and o["lon"] == -1.25 and 590 <= o["ttl"] <= 600, "a value with an expiry: %s" % o)


def check_errors(ctx, dist, want):
    keys = [k.decode() for k in sorted(want)]
    other = ("modula",) if dist[0] != "modula" else ("ketama",)
    r = ctx.get(other, "--json", *keys)
    found = sum(1 for line in r.stdout.splitlines() if json.loads(line)["found"])
    check(r.returncode == 1 and found < len(keys) * 0.6,
          "another distribution (%s) finds fewer: %d/%d (exit %d)"
          % (other[0], found, len(keys), r.returncode))
    down = ctx.servers + ",127.0.0.1:1"
    r = ctx.get(dist, *keys[:50], servers=down)
    check(r.returncode == 75 and "unreachable: " in r.stdout.decode(),
          "a server down: exit 75 (exit %d)" % r.returncode)
    for bad, status in (("nocolon", 64), ("foo:1", 64), ("idfa:", 64), ("idfa:a b", 64),
                        ("gaid:1", 78)):
        r = ctx.get(dist, bad)
        check(r.returncode == status and r.stderr, "key '%s': exit %d (exit %d: %s)"
              % (bad, status, r.returncode, r.stderr.decode().strip()))
    r = ctx.get(dist, "--json", "--raw", keys[0])
    check(r.returncode == 64, "--json with --raw: exit 64 (exit %d)" % r.returncode)
    r = ctx.get(("ketama", "crc"), keys[0])
    check(r.returncode == 78, "hash with ketama: exit 78 (exit %d)" % r.returncode)


def main():
    memc_load, memc_gen = sys.argv[1], sys.argv[2]
    tmp = tempfile.mkdtemp(prefix="memc-get-")
    procs = []
    try:
        for _ in range(3):
            procs.append(memcached.start("-m", "64"))
        ctx = Ctx(memc_load, memc_gen, tmp, [p for _, p in procs])
        for dist in DISTRIBUTIONS:
            want = ctx.load(dist)
            check_all_keys(ctx, dist, want)
            if dist == ("ketama",):
                check_cases(ctx, dist, want)
                check_values(ctx, dist)
                check_errors(ctx, dist, want)
        print("failed: %d" % len(failed) if failed else "passed")
        sys.exit(1 if failed else 0)
    finally:
        for proc, _ in procs:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
