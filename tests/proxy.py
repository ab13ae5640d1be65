#!/usr/bin/python3
"""proxy.py — memc-load writing through twemproxy (nutcracker) with
`protocol = classic`.

Three real memcached behind one nutcracker pool (distribution ketama, hash
md5, as readers.py starts it); the idfa type names only the proxy, with
idfa_protocol = classic.

  1. a one-shot load through the proxy: exit 0, the file renamed, and every
     key read back byte-identical (classic gets on a socket: no client
     library needed) through nutcracker, and straight from the memcached
     that libketama's continuum (readers.py, in Python) names: what a
     reader with distribution = ketama_weighted finds;
  2. `memc-load get`, `verify` and `--check-config` through the proxy (classic
     get; the check says what a classic type goes without);
  3. the default meta protocol through the proxy: exit 75, the file left,
     and the message says what to set (not "unreachable");
  4. the daemon, one memcached behind the proxy killed while a file loads:
     the records nutcracker answered SERVER_ERROR for are counted as not
     stored, the file stays (never renamed with records missing) and is
     loaded again once the memcached is back; then every key is there.

usage: proxy.py MEMC_LOAD MEMC_GEN
"""
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "lib"))
import memcached  # noqa: E402  (tests/lib/memcached.py)
import readers  # noqa: E402  (nutcracker and the readers)

POOL = "ketama_md5"
META_CLOSED = ("closed the connection on a meta command: a proxy without meta support? "
               "set protocol = classic for this type")
failed = []


def check(ok, what):
    print("%s: %s" % ("ok" if ok else "FAILED", what))
    if not ok:
        failed.append(what)


def write_conf(path, spool, proxy, protocol, extra=""):
    with open(path, "w") as f:
        f.write("pattern = %s/*.tsv.gz\nidfa = 127.0.0.1:%d\ngaid =\nadid =\ndvid =\n"
                "state_dir =\nmetrics_file =\nworkers = 1\nio_timeout_ms = 3000\n"
                "idfa_protocol = %s\n%s" % (spool, proxy, protocol, extra))


def gen(memc_gen, spool, n, seed):
    """A generated file of n idfa records: {key: value}."""
    expect = spool + ".expect"
    subprocess.run([memc_gen, "-n", str(n), "-s", str(seed), "-t", "idfa", "--expect", expect,
                    spool], check=True, stdout=subprocess.DEVNULL)
    want = {}
    with open(expect, "rb") as f:
        for line in f:
            key, value = line.rstrip(b"\n").split(b"\t")
            want[key] = bytes.fromhex(value.decode())
    return want


def files(spool):
    return sorted(os.listdir(spool))


def compare(label, want, got):
    same = sum(1 for k, v in want.items() if got.get(k) == v)
    check(same == len(want), "%s: %d / %d keys with their exact bytes" % (label, same, len(want)))


def get_values(port, keys):
    """Pipelined classic `get <key>`, one key each: {key: value} of the hits."""
    got = {}
    with socket.create_connection(("127.0.0.1", port), 10) as s:
        f = s.makefile("rb")
        for part in readers.chunks(keys, 500):
            s.sendall(b"".join(b"get " + k + b"\r\n" for k in part))
            for _ in part:
                line = f.readline()
                if line.startswith(b"VALUE "):
                    _, key, _, size = line.split()
                    got[key] = f.read(int(size) + 2)[:-2]
                    line = f.readline()
                assert line == b"END\r\n", line
    return got


def read_both(ctx, want, label):
    keys = sorted(want)
    compare(label + ", through nutcracker", want, get_values(ctx["proxy"][POOL], keys))
    route, direct = readers.libketama_router(ctx["names"]), {}
    for g, port in enumerate(ctx["ports"]):
        direct.update(get_values(port, [k for k in keys if route(k) == g]))
    compare(label + ", straight from the memcached ketama_weighted names", want, direct)


def items(port):
    with socket.create_connection(("127.0.0.1", port), 5) as s:
        s.sendall(b"stats\r\n")
        f = s.makefile("rb")
        n = 0
        for line in f:
            if line.startswith(b"STAT curr_items "):
                n = int(line.split()[2])
            if line == b"END\r\n":
                return n


def one_shot(memc_load, memc_gen, tmp, ctx):
    spool = os.path.join(tmp, "spool1")
    want = gen(memc_gen, spool, 20000, 7)
    conf = os.path.join(tmp, "classic.conf")
    write_conf(conf, spool, ctx["proxy"][POOL], "classic", "exptime = 1d\n")
    r = subprocess.run([memc_load, "--oneshot", "-c", conf], capture_output=True, text=True)
    name = files(spool)
    check(r.returncode == 0 and len(name) == 1 and name[0].startswith("."),
          "classic load through nutcracker: exit %d, spool %s %s" % (r.returncode, name,
                                                                     r.stderr[-300:]))
    read_both(ctx, want, "classic load")
    # the exptime went into the classic set: the memcached holding a key
    # says its TTL (exptime = 1d from the file's time, a fresh file)
    key = sorted(want)[0]
    port = ctx["ports"][readers.libketama_router(ctx["names"])(key)]
    ttl = readers.command(port, b"mg " + key + b" t")
    check(re.match(rb"HD t(\d+)\r\n", ttl) is not None and
          86000 < int(re.match(rb"HD t(\d+)", ttl).group(1)) <= 86400,
          "the classic set carried exptime = 1d: %r" % ttl)

    # get, verify, --check-config through the proxy
    key = sorted(want)[0].decode()
    g = subprocess.run([memc_load, "get", "--json", "-c", conf, key, "idfa:no-such-device"],
                       capture_output=True, text=True)
    check(g.returncode == 1 and '"found":true' in g.stdout.splitlines()[0] and
          '"ttl":"unknown"' in g.stdout and '"found":false' in g.stdout.splitlines()[1],
          "get through nutcracker: one found (ttl unknown), one missing, exit %d: %s %s" %
          (g.returncode, g.stdout, g.stderr))
    v = subprocess.run([memc_load, "verify", "-c", conf, os.path.join(spool, name[0])],
                       capture_output=True, text=True)
    m = re.search(r"^all\s+(\d+)\s+(\d+)\s+0\s+0\s", v.stdout, re.M)
    check(v.returncode == 0 and m is not None and int(m.group(1)) == int(m.group(2)) > 0,
          "verify through nutcracker: exit %d: %s" % (v.returncode, (v.stdout + v.stderr)[-400:]))
    c = subprocess.run([memc_load, "--check-config", "-c", conf], capture_output=True, text=True)
    check("classic protocol: no stats identity, no re-warm, no eviction counts" in c.stdout and
          re.search(r"127\.0\.0\.1:%d .* ok\n" % ctx["proxy"][POOL], c.stdout) is not None,
          "--check-config through nutcracker: a classic probe, what is off: %s" % c.stdout[-600:])
    return want


def meta_refused(memc_load, memc_gen, tmp, ctx):
    spool = os.path.join(tmp, "spool2")
    gen(memc_gen, spool, 20000, 8)
    conf = os.path.join(tmp, "meta.conf")
    write_conf(conf, spool, ctx["proxy"][POOL], "meta")
    r = subprocess.run([memc_load, "--oneshot", "-c", conf], capture_output=True, text=True)
    name = files(spool)
    check(r.returncode == 75 and not name[0].startswith(".") and META_CLOSED in r.stderr and
          "TLS" not in r.stderr,
          "meta through nutcracker: exit %d, spool %s, says what to set: %s" %
          (r.returncode, name, r.stderr[-400:]))


def killed_mid_load(memc_load, memc_gen, tmp, ctx, procs):
    spool = os.path.join(tmp, "spool3")
    os.mkdir(spool)
    want = gen(memc_gen, os.path.join(tmp, "gen3"), 300000, 9)
    for port in ctx["ports"]:
        assert readers.command(port, b"flush_all") == b"OK\r\n"
    conf = os.path.join(tmp, "daemon.conf")
    write_conf(conf, spool, ctx["proxy"][POOL], "classic",
               "retry_interval = 1\nsettle_time = 0\nerror_threshold = 0.5\n")
    log = open(os.path.join(tmp, "daemon.log"), "w+")
    daemon = subprocess.Popen([memc_load, "-c", conf], stderr=log)
    try:
        victim = 1
        src = glob.glob(os.path.join(tmp, "gen3", "*.tsv.gz"))[0]
        os.rename(src, os.path.join(spool, os.path.basename(src)))
        deadline = time.time() + 30
        while items(ctx["ports"][victim]) == 0 and time.time() < deadline:
            time.sleep(0.002)
        procs[victim][0].kill()  # by PID, mid-load
        procs[victim][0].wait()
        renamed_early = False
        left = None
        deadline = time.time() + 30
        while time.time() < deadline and left is None:
            log.seek(0)
            m = re.search(r"left in place: (\d+) records not stored", log.read())
            left = int(m.group(1)) if m else None
            renamed_early |= any(f.startswith(".") for f in files(spool))
            time.sleep(0.05)
        log.seek(0)
        text = log.read()
        check(left is not None and left > 0 and not renamed_early and
              "answered 'SERVER_ERROR" in text,
              "a memcached behind nutcracker killed mid-load: %s records counted as not stored, "
              "the file left (renamed early: %s)" % (left, renamed_early))
        # back on the same port, empty: the file is loaded again, whole
        procs[victim] = memcached.start("-m", "64", port=ctx["ports"][victim])
        deadline = time.time() + 60
        while time.time() < deadline and not any(f.startswith(".") for f in files(spool)):
            time.sleep(0.1)
        check(any(f.startswith(".") for f in files(spool)),
              "the file is loaded again once the memcached is back: %s" % files(spool))
        read_both(ctx, want, "after the retry")
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(30)
        log.close()


def main():
    memc_load, memc_gen = sys.argv[1], sys.argv[2]
    tmp = tempfile.mkdtemp(prefix="memc-proxy-")
    procs, proxy = [], None
    try:
        for _ in range(3):
            procs.append(memcached.start("-m", "64"))
        ports = [p for _, p in procs]
        names = ["127.0.0.1:%d" % p for p in ports]
        proxy, proxy_ports = readers.start_nutcracker(tmp, names)
        ctx = {"names": names, "ports": ports, "proxy": proxy_ports}
        one_shot(memc_load, memc_gen, tmp, ctx)
        meta_refused(memc_load, memc_gen, tmp, ctx)
        killed_mid_load(memc_load, memc_gen, tmp, ctx, procs)
        print("failed: %d" % len(failed) if failed else "passed")
        sys.exit(1 if failed else 0)
    finally:
        if proxy:
            proxy.kill()
            proxy.wait()
        for proc, _ in procs:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
