#!/usr/bin/python3
"""metrics.py — the daemon's Prometheus textfile is valid and counts right.

Starts four real memcached and the daemon with --metrics-file, drops
generated files (some lines malformed), then checks the file with
`promtool check metrics` (Debian package prometheus) and that the counters
equal what was loaded: records stored per device type = the valid records
the generator listed, error lines = the lines it damaged, files loaded,
bytes read.  A SIGHUP reload keeps the counters; a missing directory is one
warning and no error.

usage: metrics.py MEMC_LOAD MEMC_GEN
"""
import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TYPES = ["idfa", "gaid", "adid", "dvid"]
sys.path.insert(0, os.path.join(HERE, "lib"))
import memcached  # noqa: E402  (tests/lib/memcached.py)


def start_memcached():
    return memcached.start("-m", "64")


def parse(path):
    """{(name, frozenset(labels)): value} of a text exposition."""
    out = {}
    for line in open(path):
        if line.startswith("#") or not line.strip():
            continue
        m = re.match(r'^(\w+)(?:\{(.*)\})? (\S+)$', line.strip())
        assert m, line
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(metrics, name, **labels):
    return metrics.get((name, frozenset(labels.items())))


def wait_for(what, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if what():
            return True
        time.sleep(0.05)
    return False


def main():
    memc_load, memc_gen = sys.argv[1], sys.argv[2]
    promtool = shutil.which("promtool")
    if not promtool:
        sys.exit("promtool not found (Debian package prometheus)")
    tmp = tempfile.mkdtemp(prefix="memc-metrics-")
    servers = [start_memcached() for _ in TYPES]
    daemon = None
    try:
        spool, incoming, textdir = (os.path.join(tmp, d) for d in ("spool", "in", "textfile"))
        for d in (spool, incoming, textdir):
            os.mkdir(d)
        prom = os.path.join(textdir, "memc-load.prom")
        expect = os.path.join(tmp, "expect.tsv")
        subprocess.run([memc_gen, "-n", "3000", "-f", "3", "-s", "7", "-e", "0.02", "--expect",
                        expect, incoming], check=True, stdout=subprocess.DEVNULL)
        conf = os.path.join(tmp, "memc-load.conf")
        with open(conf, "w") as f:
            f.write("pattern = %s/*.tsv.gz\n" % spool)
            for t, (_, port) in zip(TYPES, servers):
                f.write("%s = 127.0.0.1:%d\n" % (t, port))
            f.write("metrics_file = %s\nstate_dir =\nworkers = 2\nerror_threshold = 0.5\n" % prom)
        log = open(os.path.join(tmp, "daemon.log"), "w+")
        daemon = subprocess.Popen([memc_load, "--config", conf], stderr=log)
        assert wait_for(lambda: os.path.exists(prom)), "no metrics file"
        names = sorted(os.listdir(incoming))
        for n in names:
            os.rename(os.path.join(incoming, n), os.path.join(spool, n))
        assert wait_for(lambda: all(os.path.exists(os.path.join(spool, "." + n)) for n in names))

        valid = collections.Counter(line.split(":", 1)[0] for line in open(expect))
        total_valid = sum(valid.values())
        assert 0 < total_valid < 9000, total_valid

        def settled():
            m = parse(prom)
            return value(m, "memc_load_files_total", result="loaded") == 3
        assert wait_for(settled), open(prom).read()
        m = parse(prom)
        for t in TYPES:
            got = value(m, "memc_load_records_stored_total", type=t)
            assert got == valid[t], (t, got, valid[t])
        errors = sum(value(m, "memc_load_error_lines_total", type=t) for t in TYPES + ["unknown"])
        assert errors == 9000 - total_valid, (errors, 9000 - total_valid)
        size = sum(os.path.getsize(os.path.join(spool, "." + n)) for n in names)
        assert value(m, "memc_load_read_bytes_total") == size
        assert value(m, "memc_load_queue_files") == 0
        assert value(m, "memc_load_last_success_timestamp_seconds") > time.time() - 60
        for (_, port) in servers:
            assert value(m, "memc_load_server_up", server="127.0.0.1:%d" % port,
                         type=TYPES[[p for _, p in servers].index(port)]) in (0, 1)
        r = subprocess.run([promtool, "check", "metrics"], stdin=open(prom), capture_output=True,
                           text=True)
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.strip() == "" and r.stderr.strip() == "", r.stdout + r.stderr

        # a reload keeps the counters
        daemon.send_signal(signal.SIGHUP)
        time.sleep(6)  # the file is rewritten every 5 s
        m2 = parse(prom)
        assert value(m2, "memc_load_files_total", result="loaded") == 3
        assert value(m2, "memc_load_records_stored_total", type="idfa") == valid["idfa"]

        # a directory that does not exist: one warning, the daemon goes on
        shutil.rmtree(textdir)
        time.sleep(11)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
        log.seek(0)
        text = log.read()
        assert text.count("cannot write metrics") == 1, text
        print("metrics: %d records, %d error lines, promtool clean: 1 passed, 0 failed"
              % (total_valid, errors))
    finally:
        if daemon and daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        for proc, _ in servers:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
