#!/usr/bin/python3
"""ketama_readers.py — other ketama clients find every key memc-load stored.

Three real memcached form one ketama cluster for idfa.  For each value of
the `distribution` key, memc-load --oneshot loads a generated file, then
pylibmc (libmemcached underneath, as readers use it) reads every key back:

  distribution = ketama           read by pylibmc behaviors {"ketama": True}
  distribution = ketama_weighted  read by pylibmc behaviors {"ketama_weighted": True}

The matching client must find every key with its exact bytes; the other one
must find clearly fewer (about a third), so the test can tell the settings
apart.  For ketama_weighted each key must also sit on the server that
libketama's continuum (written out below in Python, independent of
libmemcached: what twemproxy and spymemcached's KETAMA compute) names.

usage: ketama_readers.py MEMC_LOAD MEMC_GEN
"""
import bisect
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile

try:
    import pylibmc
except ImportError:
    sys.exit("pylibmc is missing: apt-get install python3-pylibmc (scripts/lib.sh lists it)")

RECORDS = 6000
BEHAVIORS = {"ketama": {"ketama": True}, "ketama_weighted": {"ketama_weighted": True}}


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import memcached  # noqa: E402  (tests/lib/memcached.py)


def start_memcached():
    return memcached.start("-m", "64")


def command(port, line):
    """One text-protocol command; the first line of its answer."""
    with socket.create_connection(("127.0.0.1", port), 5) as s:
        s.sendall(line + b"\r\n")
        f = s.makefile("rb")
        return f.readline()


def server_keys(port, keys):
    """The keys of `keys` that this one server holds (meta no-op gets)."""
    held = set()
    with socket.create_connection(("127.0.0.1", port), 10) as s:
        f = s.makefile("rb")
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            s.sendall(b"".join(b"mg " + k + b" k q\r\n" for k in chunk) + b"mn\r\n")
            while True:
                line = f.readline()
                if line.startswith(b"MN"):
                    break
                assert line.startswith(b"HD "), line
                for flag in line.split()[1:]:
                    if flag.startswith(b"k"):
                        held.add(flag[1:])
    return held


def libketama_server(names, key):
    """libketama's choice among equally weighted servers named "host:port":
    40 MD5 digests of "name-i" per server, 4 points from each, the key's
    MD5 (first 4 bytes, little-endian) goes to the first point at or after
    it, wrapping to the first point."""
    points = []
    for idx, name in enumerate(names):
        for i in range(40):
            d = hashlib.md5(b"%s-%d" % (name.encode(), i)).digest()
            for h in range(4):
                points.append((int.from_bytes(d[h * 4:h * 4 + 4], "little"), idx))
    points.sort()
    values = [p for p, _ in points]

    def route(k):
        h = int.from_bytes(hashlib.md5(k).digest()[:4], "little")
        i = bisect.bisect_left(values, h)
        return points[i % len(points)][1]

    return route(key)


def load(memc_load, memc_gen, tmp, distribution, names):
    """memc-load --oneshot of a fresh generated file with this distribution;
    returns {key: value} as memc-gen --expect lists it."""
    spool = os.path.join(tmp, "spool-" + distribution)
    expect = os.path.join(tmp, "expect-" + distribution + ".tsv")
    subprocess.run([memc_gen, "-n", str(RECORDS), "-s", "12", "-t", "idfa", "--expect", expect,
                    spool], check=True, stdout=subprocess.DEVNULL)
    conf = os.path.join(tmp, distribution + ".conf")
    with open(conf, "w") as f:
        f.write("# the setting under test, from the config file\n"
                "distribution = %s\n" % distribution)
    # two packer threads: each routes through its own copy of the server map
    r = subprocess.run([memc_load, "--oneshot", "--config", conf, "--pattern",
                        spool + "/*.tsv.gz", "--idfa", ",".join(names), "--gaid", "", "--adid",
                        "", "--dvid", "", "--threads", "2"], stderr=subprocess.PIPE)
    if r.returncode != 0:
        sys.exit("memc-load (%s) exited %d:\n%s" % (distribution, r.returncode,
                                                     r.stderr.decode()))
    want = {}
    with open(expect, "rb") as f:
        for line in f:
            key, value = line.rstrip(b"\n").split(b"\t")
            want[key] = bytes.fromhex(value.decode())
    if len(want) < RECORDS * 0.9:
        sys.exit("memc-gen listed only %d records" % len(want))
    return want


def read_all(names, behaviors, want):
    """(hits with the exact bytes, wrong bytes) for a pylibmc client."""
    mc = pylibmc.Client(names, behaviors=behaviors)
    keys = [k.decode() for k in want]
    hits = wrong = 0
    for i in range(0, len(keys), 500):
        got = mc.get_multi(keys[i:i + 500])
        for k, v in got.items():
            if v == want[k.encode()]:
                hits += 1
            else:
                wrong += 1
    mc.disconnect_all()
    return hits, wrong


def main():
    memc_load, memc_gen = sys.argv[1], sys.argv[2]
    tmp = tempfile.mkdtemp(prefix="memc-ketama-")
    procs, ports = [], []
    failed = []
    try:
        for _ in range(3):
            proc, port = start_memcached()
            procs.append(proc)
            ports.append(port)
        names = ["127.0.0.1:%d" % p for p in ports]
        for distribution in ("ketama", "ketama_weighted"):
            for port in ports:
                assert command(port, b"flush_all") == b"OK\r\n"
            want = load(memc_load, memc_gen, tmp, distribution, names)
            keys = list(want)
            held = [server_keys(port, keys) for port in ports]
            shares = [len(h) for h in held]
            print("%s: %d keys, per server %s" % (distribution, len(want), shares))
            if sum(shares) != len(want) or min(shares) < len(want) // 6:
                failed.append("%s: keys not spread over the 3 servers: %s" % (distribution,
                                                                             shares))
            if distribution == "ketama_weighted":
                off = sum(1 for k in keys
                          if k not in held[libketama_server(names, k)])
                print("  libketama continuum (Python): %d/%d keys on its server" %
                      (len(keys) - off, len(keys)))
                if off:
                    failed.append("ketama_weighted: %d keys not where libketama puts them" % off)
            for reader, behaviors in BEHAVIORS.items():
                hits, wrong = read_all(names, behaviors, want)
                print("  pylibmc %s: %d/%d keys found with their bytes, %d with other bytes" %
                      (behaviors, hits, len(want), wrong))
                if wrong:
                    failed.append("%s read by %s: %d values differ" % (distribution, reader,
                                                                      wrong))
                if reader == distribution and hits != len(want):
                    failed.append("%s read by the matching client: %d/%d keys" %
                                  (distribution, hits, len(want)))
                if reader != distribution and hits > len(want) * 0.6:
                    failed.append("%s read by the other client: %d/%d keys, want clearly fewer "
                                  "(the settings must place keys differently)" %
                                  (distribution, hits, len(want)))
        for f in failed:
            print("FAIL: " + f)
        print("%s" % ("failed" if failed else "passed"))
        sys.exit(1 if failed else 0)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
