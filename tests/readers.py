#!/usr/bin/python3
"""readers.py — the common memcached clients find every key memc-load stored.

Three real memcached; the idfa type spread over two of them, then over all
three.  For each `distribution` (and `hash`) a reader needs, memc-load
--oneshot loads the same generated records, then the client itself reads
every key back.  Besides memc-gen's records the file has a few keys whose
crc hash ((crc32 >> 16) & 0x7fff) is 0: the only keys python-memcache
(which counts that hash as 1) and `modula` + `hash = crc` place apart.

  reader (ctest readers_NAME)        matching setting     mismatched setting
  pylibmc ketama=True                ketama               ketama_weighted
  pylibmc ketama_weighted=True       ketama_weighted      ketama
  pylibmc hash=crc / murmur / fnv1a_32  modula + that hash   modula
  python-memcache Client             python_memcache      ketama; modula+crc*
  pymemcache HashClient              rendezvous           modula
  Cache::Memcached::Fast (perl)      modula + crc         modula; python_memcache*
  memccat, memccat --hash=crc/fnv1a_32  modula (+ hash)      ketama / modula
  nutcracker ketama + md5            ketama_weighted      ketama
  nutcracker modula + crc32          modula + crc         modula

Under the matching setting the client must find every key with its exact
bytes; under the mismatched one clearly fewer (at most 1/n + 0.2 of them),
so the test can tell the settings apart.  (*) Under the setting marked so
it must find every key but the crc-0 ones, and none of those.  For
ketama_weighted each key must also sit where libketama's continuum
(written out below in Python, independent of libmemcached) puts it.

usage: readers.py MEMC_LOAD MEMC_GEN READER    one reader's test
       readers.py MEMC_LOAD MEMC_GEN --table   every reader under every setting
READER: pylibmc python_memcache pymemcache cache_memcached_fast memccat nutcracker
"""
import binascii
import bisect
import glob
import hashlib
import os
import random
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import memcached  # noqa: E402  (tests/lib/memcached.py)

HERE = os.path.dirname(os.path.abspath(__file__))
RECORDS = 3000
ZERO_KEYS = 6  # keys whose crc hash is 0

# setting name -> the config file lines
SETTINGS = {
    "ketama": "distribution = ketama\n",
    "ketama_weighted": "distribution = ketama_weighted\n",
    "modula": "distribution = modula\n",
    "modula+crc": "distribution = modula\nhash = crc\n",
    "modula+murmur": "distribution = modula\nhash = murmur\n",
    "modula+fnv1a_32": "distribution = modula\nhash = fnv1a_32\n",
    "python_memcache": "distribution = python_memcache\n",
    "rendezvous": "distribution = rendezvous\n",
}


def need(module, package):
    try:
        return __import__(module)
    except ImportError:
        sys.exit("%s is missing: apt-get install %s (scripts/lib.sh lists it)" % (module, package))


# ---- the readers: each returns {key bytes: value bytes} of what it found ----

def chunks(keys, n):
    for i in range(0, len(keys), n):
        yield keys[i:i + n]


def read_pylibmc(behaviors):
    def read(ctx, keys):
        pylibmc = need("pylibmc", "python3-pylibmc")
        mc = pylibmc.Client(ctx["names"], behaviors=behaviors)
        got = {}
        for part in chunks([k.decode() for k in keys], 500):
            got.update({k.encode(): v for k, v in mc.get_multi(part).items()})
        mc.disconnect_all()
        return got
    return read


def read_python_memcache(ctx, keys):
    memcache = need("memcache", "python3-memcache")
    mc = memcache.Client(ctx["names"])
    got = {}
    for part in chunks([k.decode() for k in keys], 500):
        got.update({k.encode(): v for k, v in mc.get_multi(part).items()})
    mc.disconnect_all()
    return got


def read_pymemcache(ctx, keys):
    need("pymemcache", "python3-pymemcache")
    from pymemcache.client.hash import HashClient
    mc = HashClient([("127.0.0.1", p) for p in ctx["ports"]])
    got = {}
    for part in chunks([k.decode() for k in keys], 500):  # str keys: see README
        got.update({k.encode(): v for k, v in mc.get_many(part).items()})
    mc.close()
    return got


def read_cmf(ctx, keys):
    r = subprocess.run(["perl", os.path.join(HERE, "readers_cmf.pl")] + ctx["names"],
                       input=b"".join(k + b"\n" for k in keys), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    if r.returncode != 0:
        sys.exit("readers_cmf.pl exited %d: %s (apt-get install libcache-memcached-fast-perl)"
                 % (r.returncode, r.stderr.decode()))
    got = {}
    for line in r.stdout.splitlines():
        k, v = line.split(b"\t")
        got[k] = bytes.fromhex(v.decode())
    return got


def read_memccat(hash_name):
    """memccat -v KEY...: "key: K\\nvalue: V\\n" on stdout for each key found,
    in order, and each key missing named on stderr.  The values are binary
    and their length is not printed, so the whole of stdout is compared with
    what the keys found must give.  (Its --file writes every value to the
    first key's file in libmemcached 1.1.4; without -v a missing key is not
    reported at all.)"""
    def read(ctx, keys):
        if not shutil.which("memccat"):
            sys.exit("memccat is missing: apt-get install libmemcached-tools")
        got = {}
        opts = ["-v", "--servers=" + ",".join(ctx["names"])]
        if hash_name:
            opts.append("--hash=" + hash_name)
        for part in chunks(keys, 500):
            r = subprocess.run(["memccat"] + opts + [k.decode() for k in part],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            missing = set()
            for line in r.stderr.decode().splitlines():
                m = re.fullmatch(r"Could not find key '(.*)': NOT FOUND", line)
                if m:
                    missing.add(m.group(1).encode())
                elif not line.startswith("Checking for hash"):
                    sys.exit("memccat: %s" % line)
            found = [k for k in part if k not in missing]
            expect = b"".join(b"key: %s\nvalue: %s\n" % (k, ctx["want"][k]) for k in found)
            if r.stdout != expect:
                got.update({k: None for k in found})  # counted as other bytes
            else:
                got.update({k: ctx["want"][k] for k in found})
        return got
    return read


def read_nutcracker(pool):
    def read(ctx, keys):
        need("pymemcache", "python3-pymemcache")
        from pymemcache.client.base import Client
        mc = Client(("127.0.0.1", ctx["proxy"][pool]), timeout=10)
        got = {}
        for part in chunks(keys, 100):
            got.update(mc.get_many(part))
        mc.close()
        return got
    return read


# (ctest group, label, matching setting, mismatched setting, crc-0 setting, read)
READERS = [
    ("pylibmc", "pylibmc ketama=True", "ketama", "ketama_weighted", None,
     read_pylibmc({"ketama": True})),
    ("pylibmc", "pylibmc ketama_weighted=True", "ketama_weighted", "ketama", None,
     read_pylibmc({"ketama_weighted": True})),
    ("pylibmc", "pylibmc hash=crc", "modula+crc", "modula", "python_memcache",
     read_pylibmc({"hash": "crc"})),
    ("pylibmc", "pylibmc hash=murmur", "modula+murmur", "modula", None,
     read_pylibmc({"hash": "murmur"})),
    ("pylibmc", "pylibmc hash=fnv1a_32", "modula+fnv1a_32", "modula", None,
     read_pylibmc({"hash": "fnv1a_32"})),
    ("python_memcache", "python-memcache Client", "python_memcache", "ketama", "modula+crc",
     read_python_memcache),
    ("pymemcache", "pymemcache HashClient", "rendezvous", "modula", None, read_pymemcache),
    ("cache_memcached_fast", "Cache::Memcached::Fast", "modula+crc", "modula", "python_memcache",
     read_cmf),
    ("memccat", "memccat", "modula", "ketama", None, read_memccat(None)),
    ("memccat", "memccat --hash=crc", "modula+crc", "modula", "python_memcache",
     read_memccat("crc")),
    ("memccat", "memccat --hash=fnv1a_32", "modula+fnv1a_32", "modula", None,
     read_memccat("fnv1a_32")),
    ("nutcracker", "nutcracker ketama + md5", "ketama_weighted", "ketama", None,
     read_nutcracker("ketama_md5")),
    ("nutcracker", "nutcracker modula + crc32", "modula+crc", "modula", "python_memcache",
     read_nutcracker("modula_crc32")),
]

NUTCRACKER_POOLS = {"ketama_md5": ("ketama", "md5"), "modula_crc32": ("modula", "crc32")}


# ---- nutcracker (twemproxy): a config in the temp dir, free ports, by PID ----

def free_port():
    """A random loopback port below the ephemeral range (as memcached-start
    picks them); the caller starts again if it turns out to be taken."""
    lo = 32768
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo = int(f.read().split()[0])
    except OSError:
        pass
    return random.randrange(10000, lo) if lo > 12000 else random.randrange(61000, 65535)


def listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        return True
    except OSError:
        return False


def start_nutcracker(tmp, names):
    """nutcracker with one pool per NUTCRACKER_POOLS entry over names:
    (Popen, {pool: port})."""
    if not shutil.which("nutcracker"):
        sys.exit("nutcracker is missing: apt-get install nutcracker")
    for _ in range(5):
        ports = {pool: free_port() for pool in NUTCRACKER_POOLS}
        conf = os.path.join(tmp, "nutcracker.yml")
        with open(conf, "w") as f:
            for pool, (dist, hash_name) in NUTCRACKER_POOLS.items():
                f.write("%s:\n  listen: 127.0.0.1:%d\n  distribution: %s\n  hash: %s\n"
                        "  timeout: 5000\n  auto_eject_hosts: false\n  preconnect: false\n"
                        "  servers:\n" % (pool, ports[pool], dist, hash_name))
                f.writelines("   - %s:1\n" % n for n in names)
        if any(listening(p) for p in ports.values()):
            continue
        proc = subprocess.Popen(["nutcracker", "-c", conf, "-s", str(free_port()), "-a",
                                 "127.0.0.1", "-o", os.path.join(tmp, "nutcracker.log"),
                                 "-p", os.path.join(tmp, "nutcracker.pid")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 5
        while proc.poll() is None and time.time() < deadline:
            if all(listening(p) for p in ports.values()):
                return proc, ports
            time.sleep(0.05)
        proc.kill()
        proc.wait()
    sys.exit("cannot start nutcracker (see %s)" % os.path.join(tmp, "nutcracker.log"))


# ---- the data and the loads ----

def command(port, line):
    """One text-protocol command; the first line of its answer."""
    with socket.create_connection(("127.0.0.1", port), 5) as s:
        s.sendall(line + b"\r\n")
        return s.makefile("rb").readline()


def server_keys(port, keys):
    """The keys of `keys` that this one server holds (meta no-op gets)."""
    held = set()
    with socket.create_connection(("127.0.0.1", port), 10) as s:
        f = s.makefile("rb")
        for part in chunks(keys, 500):
            s.sendall(b"".join(b"mg " + k + b" k q\r\n" for k in part) + b"mn\r\n")
            while True:
                line = f.readline()
                if line.startswith(b"MN"):
                    break
                assert line.startswith(b"HD "), line
                held.update(fl[1:] for fl in line.split()[1:] if fl.startswith(b"k"))
    return held


def crc_hash(key):
    return (binascii.crc32(key) >> 16) & 0x7fff


def pack(apps, lat, lon):
    """The UserApps value as memc-load packs it (src/load/pack.h)."""
    out = bytearray()
    for a in apps:
        out.append(0x08)
        while a >= 0x80:
            out.append(a & 0x7f | 0x80)
            a >>= 7
        out.append(a)
    return bytes(out) + b"\x11" + struct.pack("<d", lat) + b"\x19" + struct.pack("<d", lon)


def make_data(memc_gen, tmp):
    """memc-gen's records and the crc-0 keys as gzip files in tmp/src:
    ({key: value}, [crc-0 keys])."""
    src = os.path.join(tmp, "src")
    expect = os.path.join(tmp, "expect.tsv")
    subprocess.run([memc_gen, "-n", str(RECORDS), "-s", "12", "-t", "idfa", "--expect", expect,
                    src], check=True, stdout=subprocess.DEVNULL)
    want = {}
    with open(expect, "rb") as f:
        for line in f:
            key, value = line.rstrip(b"\n").split(b"\t")
            want[key] = bytes.fromhex(value.decode())
    if len(want) < RECORDS * 0.9:
        sys.exit("memc-gen listed only %d records" % len(want))
    zero, i = [], 0
    while len(zero) < ZERO_KEYS:
        key = b"idfa:crc0-%06x" % i
        if crc_hash(key) == 0:
            zero.append(key)
        i += 1
    import gzip
    with gzip.open(os.path.join(src, "zz-crc0.tsv.gz"), "wb") as f:
        for k in zero:
            f.write(b"idfa\t%s\t1.5\t2.5\t7,300,70000\n" % k[5:])
            want[k] = pack([7, 300, 70000], 1.5, 2.5)
    return want, zero


def load(ctx, setting, tmp):
    """memc-load --oneshot of the data under this setting, onto emptied
    servers."""
    for port in ctx["ports"]:
        assert command(port, b"flush_all") == b"OK\r\n"
    spool = os.path.join(tmp, "spool")
    shutil.rmtree(spool, ignore_errors=True)
    os.mkdir(spool)
    for f in glob.glob(os.path.join(tmp, "src", "*.tsv.gz")):
        shutil.copy(f, spool)
    conf = os.path.join(tmp, "memc-load.conf")
    with open(conf, "w") as f:
        f.write("# the setting under test, from the config file\n" + SETTINGS[setting] +
                "settle_time = 0  # the files were copied in whole: no need to wait\n")
    # two packer threads: each routes through its own copy of the server map
    r = subprocess.run([ctx["memc_load"], "--oneshot", "--config", conf, "--pattern",
                        spool + "/*.tsv.gz", "--idfa", ",".join(ctx["names"]), "--gaid", "",
                        "--adid", "", "--dvid", "", "--threads", "2"], stderr=subprocess.PIPE)
    if r.returncode != 0:
        sys.exit("memc-load (%s) exited %d:\n%s" % (setting, r.returncode, r.stderr.decode()))


def libketama_router(names):
    """libketama's choice among equally weighted servers named "host:port":
    40 MD5 digests of "name-i" per server, 4 points from each, the key's
    MD5 (first 4 bytes, little-endian) goes to the first point at or after
    it, wrapping to the first point.  Returns key -> server index."""
    points = []
    for idx, name in enumerate(names):
        for i in range(40):
            d = hashlib.md5(b"%s-%d" % (name.encode(), i)).digest()
            for h in range(4):
                points.append((int.from_bytes(d[h * 4:h * 4 + 4], "little"), idx))
    points.sort()
    values = [p for p, _ in points]

    def route(key):
        h = int.from_bytes(hashlib.md5(key).digest()[:4], "little")
        return points[bisect.bisect_left(values, h) % len(points)][1]
    return route


def check_placement(ctx, setting, failed):
    """Every key on one server, each server a fair share; ketama_weighted
    against libketama."""
    keys = list(ctx["want"])
    held = [server_keys(port, keys) for port in ctx["ports"]]
    shares = [len(h) for h in held]
    n = len(ctx["ports"])
    print("%d servers, %s: %d keys, per server %s" % (n, setting, len(keys), shares))
    if sum(shares) != len(keys) or min(shares) < len(keys) // (2 * n):
        failed.append("%d servers, %s: keys not spread over the servers: %s"
                      % (n, setting, shares))
    if setting == "ketama_weighted":
        route = libketama_router(ctx["names"])
        off = sum(1 for k in keys if k not in held[route(k)])
        print("  libketama continuum (Python): %d/%d keys on its server" % (len(keys) - off,
                                                                           len(keys)))
        if off:
            failed.append("ketama_weighted: %d keys not where libketama puts them" % off)


def count(ctx, got):
    hits = sum(1 for k, v in got.items() if ctx["want"].get(k) == v)
    return hits, len(got) - hits


def judge(reader, n, setting, got, ctx, failed):
    """The reader's result under one setting against what it must be."""
    _, label, match, mismatch, zero_setting, _ = reader
    want, zero = ctx["want"], ctx["zero"]
    hits, wrong = count(ctx, got)
    where = "%d servers, %s read by %s" % (n, setting, label)
    if wrong:
        failed.append("%s: %d values differ" % (where, wrong))
    if setting == match and hits != len(want):
        failed.append("%s (its setting): %d/%d keys" % (where, hits, len(want)))
    if setting == mismatch and hits > len(want) * (1.0 / n + 0.2):
        failed.append("%s: %d/%d keys, want clearly fewer (the settings must place keys "
                      "differently)" % (where, hits, len(want)))
    if setting == zero_setting:
        zero_found = sum(1 for k in zero if k in got)
        if hits != len(want) - len(zero) or zero_found:
            failed.append("%s: %d/%d keys, %d of the %d crc-0 keys; want all but those"
                          % (where, hits, len(want), zero_found, len(zero)))
    return hits


def run(ctx, readers, settings, tmp, failed):
    """Each setting loaded once per server count, read by every reader;
    returns {(label, n, setting): hits}."""
    table = {}
    for n in (2, 3):
        ctx["names"] = ["127.0.0.1:%d" % p for p in ctx["all_ports"][:n]]
        ctx["ports"] = ctx["all_ports"][:n]
        proxy = None
        if any(r[0] == "nutcracker" for r in readers):
            proxy, ctx["proxy"] = start_nutcracker(tmp, ctx["names"])
        try:
            for setting in settings:
                load(ctx, setting, tmp)
                check_placement(ctx, setting, failed)
                for reader in readers:
                    got = reader[5](ctx, list(ctx["want"]))
                    hits = judge(reader, n, setting, got, ctx, failed)
                    table[(reader[1], n, setting)] = hits
                    print("  %-30s %5d/%d" % (reader[1], hits, len(ctx["want"])))
        finally:
            if proxy:
                proxy.terminate()
                proxy.wait()
    return table


def print_table(readers, settings, table, total):
    for n in (2, 3):
        print("\n%d servers: keys found of %d" % (n, total))
        print("%-30s" % "" + "".join("%17s" % s for s in settings))
        for r in readers:
            print("%-30s" % r[1] + "".join("%17d" % table[(r[1], n, s)] for s in settings))


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    memc_load, memc_gen, which = sys.argv[1:]
    if which == "--table":
        readers, settings = READERS, list(SETTINGS)
    else:
        readers = [r for r in READERS if r[0] == which]
        if not readers:
            sys.exit("no reader %s" % which)
        settings = [s for s in SETTINGS if any(s in r[2:5] for r in readers)]
    tmp = tempfile.mkdtemp(prefix="memc-readers-")
    procs, failed = [], []
    try:
        for _ in range(3):
            proc, port = memcached.start("-m", "64")
            procs.append((proc, port))
        want, zero = make_data(memc_gen, tmp)
        # in port order: twemproxy's modula takes its servers sorted by name
        # ("host:port", shorter first), so memc-load lists them the same way
        ctx = {"memc_load": memc_load, "want": want, "zero": zero,
               "all_ports": sorted(p for _, p in procs)}
        table = run(ctx, readers, settings, tmp, failed)
        if which == "--table":
            print_table(readers, settings, table, len(want))
        for f in failed:
            print("FAIL: " + f)
        print("failed" if failed else "passed")
        sys.exit(1 if failed else 0)
    finally:
        for proc, _ in procs:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
