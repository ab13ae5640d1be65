#!/usr/bin/python3
"""metrics.py — the Prometheus textfile means what it says, and the shipped
alert rules and dashboard query only what the daemon really writes.

usage: metrics.py MEMC_LOAD MEMC_GEN     the real daemon (ctest: metrics)
       metrics.py --lint                 contrib/ alone (ctest: prometheus_contrib)

With the daemon (four real memcached, generated files, some lines
malformed), each file checked with `promtool check metrics` (Debian
package prometheus):
 1. the counters equal what was loaded: records stored per device type =
    the valid records the generator listed, error lines = the lines it
    damaged, files loaded, bytes read; the read-back's parts (equal,
    missing, different) add up to its sample; the load-duration histogram
    counted each load;
 2. a memcached stopped (SIGSTOP) under a file whose mtime is an hour old:
    memc_load_file_retries_total counts the incomplete loads, the queue and
    the oldest queued file's age show the file waiting, server_up is 0; once
    memcached runs again the file is counted once, as loaded (never "left");
 3. a reload onto another metrics_file keeps the counters and removes the
    old file; a missing directory is one info line (no node-exporter); a clean stop (SIGTERM)
    removes the file, a crash (SIGKILL) leaves it for the staleness alert;
 4. --oneshot without a metrics file of its own writes none; with
    --metrics-file it writes once, at exit: loaded, left and corrupt each
    counted once, memc_load_last_run_timestamp_seconds, no server_up;
 5. every metric name and label value that contrib/prometheus/
    memc-load.rules.yml and contrib/grafana/memc-load.json query is in
    those real files, and memc-load(8)'s METRICS section lists every family
    they hold.
--lint: every rule has a severity and summary/description/runbook, each
runbook names a catalog MESSAGE_ID or a README section that exists, the
rule tests have each alert firing and not firing, the dashboard is JSON on
the templated data source, and every family queried is in the README.
"""
import collections
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
RULES = os.path.join(SRC, "contrib", "prometheus", "memc-load.rules.yml")
RULE_TESTS = os.path.join(SRC, "contrib", "prometheus", "memc-load.rules.test.yml")
DASHBOARD = os.path.join(SRC, "contrib", "grafana", "memc-load.json")
TYPES = ["idfa", "gaid", "adid", "dvid"]
DEFAULT_PROM = "/var/lib/prometheus/node-exporter/memc-load.prom"
BUCKETS = ["1", "5", "15", "30", "60", "120", "300", "600", "1800", "3600", "+Inf"]
NODE_EXPORTER = {"node_textfile_mtime_seconds"}  # what rules may query besides ours
sys.path.insert(0, os.path.join(HERE, "lib"))
import memcached  # noqa: E402  (tests/lib/memcached.py)


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


def names(metrics):
    return {n for n, _ in metrics}


def wait_for(what, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if what():
            return True
        time.sleep(0.05)
    return False


def promtool_clean(promtool, path):
    r = subprocess.run([promtool, "check", "metrics"], stdin=open(path), capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == "" and r.stderr.strip() == "", r.stdout + r.stderr


def write_conf(path, spool, ports, prom, extra=""):
    with open(path, "w") as f:
        f.write("pattern = %s/*.tsv.gz\n" % spool)
        for t, port in zip(TYPES, ports):
            if port:
                f.write("%s = 127.0.0.1:%d\n" % (t, port))
        if prom is not None:
            f.write("metrics_file = %s\n" % prom)
        f.write("state_dir =\nworkers = 2\nerror_threshold = 0.5\n" + extra)


def check_histogram(m, loads):
    """The load-duration histogram: cumulative buckets, +Inf = count = loads."""
    name = "memc_load_file_load_duration_seconds"
    got = [value(m, name + "_bucket", le=le) for le in BUCKETS]
    assert None not in got, got
    assert got == sorted(got) and got[-1] == loads, (got, loads)
    assert value(m, name + "_count") == loads, value(m, name + "_count")
    assert value(m, name + "_sum") > 0


def check_loaded(m, valid, spool, names_):
    """Phase 1: the counters equal what was loaded."""
    total_valid = sum(valid.values())
    for t in TYPES:
        got = value(m, "memc_load_records_stored_total", type=t)
        assert got == valid[t], (t, got, valid[t])
    errors = sum(value(m, "memc_load_error_lines_total", type=t) for t in TYPES + ["unknown"])
    assert errors == 9000 - total_valid, (errors, 9000 - total_valid)
    size = sum(os.path.getsize(os.path.join(spool, "." + n)) for n in names_)
    assert value(m, "memc_load_read_bytes_total") == size
    assert value(m, "memc_load_queue_files") == 0
    assert value(m, "memc_load_oldest_queued_file_age_seconds") == 0
    assert value(m, "memc_load_last_success_timestamp_seconds") > time.time() - 60
    for r in ("failed", "corrupt", "unreadable", "crashed", "left"):
        assert value(m, "memc_load_files_total", result=r) == 0, r
    assert value(m, "memc_load_file_retries_total") == 0
    check_histogram(m, 3)
    # the read-back: parts in one family, the sample in another
    sampled = value(m, "memc_load_verify_sampled_records_total")
    parts = [value(m, "memc_load_verify_records_total", outcome=o)
             for o in ("equal", "missing", "different")]
    assert sampled > 0 and sum(parts) == sampled and parts[0] == sampled, (sampled, parts)
    assert not any(n == "memc_load_verify_records_total" and ("outcome", "sampled") in ls
                   for n, ls in m), "the sample size is not one of the read-back's parts"
    return errors


def retry_phase(prom, spool, memc_gen, tmp, server):
    """Phase 2: a file retried while its memcached is stopped is one file."""
    proc, port = server
    gen = os.path.join(tmp, "gen-retry")
    os.mkdir(gen)
    subprocess.run([memc_gen, "-n", "300", "-f", "1", "-s", "11", "-p", "zz", gen], check=True,
                   stdout=subprocess.DEVNULL)
    (name,) = os.listdir(gen)
    hour_ago = time.time() - 3600
    os.utime(os.path.join(gen, name), (hour_ago, hour_ago))
    proc.send_signal(signal.SIGSTOP)
    try:
        os.rename(os.path.join(gen, name), os.path.join(spool, name))

        def waiting():
            m = parse(prom)
            age = value(m, "memc_load_oldest_queued_file_age_seconds")
            return (value(m, "memc_load_file_retries_total") >= 1
                    and value(m, "memc_load_queue_files") == 1 and 3500 < age < 3700
                    and value(m, "memc_load_server_up", server="127.0.0.1:%d" % port,
                              type="idfa") == 0)
        assert wait_for(waiting, 40), open(prom).read()
        m = parse(prom)
        assert value(m, "memc_load_files_total", result="left") == 0, "a retry is not a result"
        assert value(m, "memc_load_files_total", result="loaded") == 3
    finally:
        proc.send_signal(signal.SIGCONT)
    assert wait_for(lambda: os.path.exists(os.path.join(spool, "." + name)), 60)

    def loaded():
        m = parse(prom)
        return (value(m, "memc_load_files_total", result="loaded") == 4
                and value(m, "memc_load_queue_files") == 0)
    assert wait_for(loaded), open(prom).read()
    m = parse(prom)
    retries = value(m, "memc_load_file_retries_total")
    assert retries >= 1 and value(m, "memc_load_files_total", result="left") == 0
    assert value(m, "memc_load_oldest_queued_file_age_seconds") == 0
    check_histogram(m, 4 + retries)  # every load that ran to its end, incomplete ones too
    return open(prom).read()


def oneshot_phase(memc_load, memc_gen, tmp, idfa_port, promtool):
    """Phase 4: one-shot writes only a file given to it, once, at exit."""
    spool, gen = os.path.join(tmp, "spool-oneshot"), os.path.join(tmp, "gen-oneshot")
    os.mkdir(spool)
    os.mkdir(gen)
    conf = os.path.join(tmp, "oneshot.conf")  # no metrics_file: the built-in default
    write_conf(conf, spool, [idfa_port, 0, 0, 1], None)  # dvid: a port nobody listens on
    before = os.stat(DEFAULT_PROM) if os.path.exists(DEFAULT_PROM) else None
    r = subprocess.run([memc_load, "--oneshot", "--config", conf], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "cannot write metrics" not in r.stderr, r.stderr
    after = os.stat(DEFAULT_PROM) if os.path.exists(DEFAULT_PROM) else None
    assert (before and (before.st_mtime_ns, before.st_ino)) == \
        (after and (after.st_mtime_ns, after.st_ino)), "one-shot wrote the service's file"

    for t, prefix in (("idfa", "a"), ("dvid", "b")):  # a: loaded; b: its memcached is down
        subprocess.run([memc_gen, "-n", "200", "-f", "1", "-s", "5", "-t", t, "-p", prefix, gen],
                       check=True, stdout=subprocess.DEVNULL)
    for n in os.listdir(gen):
        os.rename(os.path.join(gen, n), os.path.join(spool, n))
    with open(os.path.join(spool, "c.tsv.gz"), "wb") as f:
        f.write(b"this is not gzip data\n")
    prom = os.path.join(tmp, "oneshot.prom")
    t0 = time.time()
    r = subprocess.run([memc_load, "--oneshot", "--config", conf, "--metrics-file", prom],
                       capture_output=True, text=True)
    assert r.returncode == 1, (r.returncode, r.stderr)  # a file failed (corrupt)
    assert os.path.exists(os.path.join(spool, "b0000.tsv.gz")), os.listdir(spool)
    promtool_clean(promtool, prom)
    m = parse(prom)
    want = {"loaded": 1, "failed": 0, "corrupt": 1, "unreadable": 0, "crashed": 0, "left": 1}
    got = {r: value(m, "memc_load_files_total", result=r) for r in want}
    assert got == want, (got, open(prom).read())
    assert value(m, "memc_load_file_retries_total") == 0
    assert int(t0) <= value(m, "memc_load_last_run_timestamp_seconds") <= time.time()
    assert value(m, "memc_load_last_success_timestamp_seconds") >= int(t0)
    assert value(m, "memc_load_queue_files") == 0
    assert value(m, "memc_load_records_stored_total", type="idfa") > 0
    assert not any(n == "memc_load_server_up" for n, _ in m), "one-shot does not probe"
    check_histogram(m, 3)
    return open(prom).read()


def stop_phases(daemon, conf, spool, ports, prom, textdir2, log):
    """Phase 3: reload onto another file, a missing directory, a clean stop."""
    prom2 = os.path.join(textdir2, "memc-load.prom")
    write_conf(conf, spool, ports, prom2, "retry_interval = 1\nhealth_interval = 1\n")
    daemon.send_signal(signal.SIGHUP)
    assert wait_for(lambda: os.path.exists(prom2) and not os.path.exists(prom)), \
        "a reload onto another metrics_file removes the old one"
    m = parse(prom2)
    assert value(m, "memc_load_files_total", result="loaded") == 4, "a reload keeps the counters"

    # a directory that does not exist (no node-exporter): one info line,
    # no warning, the daemon goes on
    shutil.rmtree(textdir2)
    time.sleep(11)  # the file is rewritten every 5 s
    os.mkdir(textdir2)
    assert wait_for(lambda: os.path.exists(prom2), 10), "written again once the directory is back"
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(30) == 0
    assert not os.path.exists(prom2), "a clean stop removes the metrics file"
    log.seek(0)
    text = log.read()
    said = [l for l in text.splitlines() if "directory %s does not exist" % textdir2 in l]
    assert len(said) == 1 and ": info: no metrics: " in said[0], text
    assert "cannot write metrics" not in text, text


def crash_leaves_file(memc_load, conf, prom):
    """SIGKILL: nothing can remove the file; its mtime goes stale."""
    daemon = subprocess.Popen([memc_load, "--config", conf], stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: os.path.exists(prom)), "no metrics file"
    finally:
        daemon.kill()
        daemon.wait()
    time.sleep(0.3)
    assert os.path.exists(prom), "a crash cannot remove the file"


# ---- what contrib/ queries -------------------------------------------------


def load_yaml(path):
    import yaml  # python3-yaml
    return yaml.safe_load(open(path))


def rules():
    return [r for g in load_yaml(RULES)["groups"] for r in g["rules"]]


def dashboard_exprs(dash):
    out = []
    for p in dash["panels"]:
        out += [t["expr"] for t in p.get("targets", [])]
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            out.append(v["definition"])
    return out


def queried():
    """Every PromQL expression of the rules and the dashboard."""
    return [r["expr"] for r in rules()] + dashboard_exprs(json.load(open(DASHBOARD)))


def selectors(expr):
    """(name, [(label, op, value)]) for each metric a PromQL expression names."""
    out = []
    for m in re.finditer(r'\b([a-z_][a-z0-9_]*)\s*(\{[^}]*\})?', expr):
        name = m.group(1)
        if not (name.startswith("memc_load_") or name.startswith("node_")):
            continue
        matchers = re.findall(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"', m.group(2) or "")
        out.append((name, matchers))
    return out


def check_queried(files):
    """Phase 5: what the rules and the dashboard query is in the real files."""
    found = {}
    for m in files:
        for n, labels in m:
            for k, v in labels:
                found.setdefault((n, k), set()).add(v)
        for n in names(m):
            found.setdefault((n, None), set())
    count = 0
    for expr in queried():
        for name, matchers in selectors(expr):
            count += 1
            if name in NODE_EXPORTER:
                continue
            assert (name, None) in found, "%s (queried by %r) is in no real metrics file" % (
                name, expr)
            for label, op, val in matchers:
                if label in ("instance", "job") or op not in ("=", "=~"):
                    continue
                vals = found.get((name, label), set())
                for v in val.split("|") if op == "=~" else [val]:
                    assert v in vals, "%s{%s=%r} (queried by %r): not in the files, only %s" % (
                        name, label, v, expr, sorted(vals))
    assert count > 20, count
    return count


def daemon_main(memc_load, memc_gen):
    promtool = shutil.which("promtool")
    if not promtool:
        sys.exit("promtool not found (Debian package prometheus)")
    tmp = tempfile.mkdtemp(prefix="memc-metrics-")
    servers = [memcached.start("-m", "64") for _ in TYPES]
    ports = [p for _, p in servers]
    daemon = None
    try:
        spool, incoming, textdir, textdir2 = (os.path.join(tmp, d)
                                              for d in ("spool", "in", "textfile", "textfile2"))
        for d in (spool, incoming, textdir, textdir2):
            os.mkdir(d)
        prom = os.path.join(textdir, "memc-load.prom")
        expect = os.path.join(tmp, "expect.tsv")
        subprocess.run([memc_gen, "-n", "3000", "-f", "3", "-s", "7", "-e", "0.02", "--expect",
                        expect, incoming], check=True, stdout=subprocess.DEVNULL)
        conf = os.path.join(tmp, "memc-load.conf")
        write_conf(conf, spool, ports, prom, "retry_interval = 1\nhealth_interval = 1\n")
        log = open(os.path.join(tmp, "daemon.log"), "w+")
        daemon = subprocess.Popen([memc_load, "--config", conf], stderr=log)
        assert wait_for(lambda: os.path.exists(prom)), "no metrics file"
        names_ = sorted(os.listdir(incoming))
        for n in names_:
            os.rename(os.path.join(incoming, n), os.path.join(spool, n))
        assert wait_for(lambda: all(os.path.exists(os.path.join(spool, "." + n)) for n in names_))
        valid = collections.Counter(line.split(":", 1)[0] for line in open(expect))
        assert 0 < sum(valid.values()) < 9000, valid
        assert wait_for(lambda: value(parse(prom), "memc_load_files_total", result="loaded") == 3)
        errors = check_loaded(parse(prom), valid, spool, names_)
        promtool_clean(promtool, prom)

        daemon_text = retry_phase(prom, spool, memc_gen, tmp, servers[0])
        promtool_clean(promtool, prom)
        stop_phases(daemon, conf, spool, ports, prom, textdir2, log)
        crash_leaves_file(memc_load, conf, os.path.join(textdir2, "memc-load.prom"))
        oneshot_text = oneshot_phase(memc_load, memc_gen, tmp, ports[0], promtool)

        files = []
        for i, text in enumerate((daemon_text, oneshot_text)):
            path = os.path.join(tmp, "real%d.prom" % i)
            open(path, "w").write(text)
            files.append(parse(path))
        n = check_queried(files)
        # memc-load(8) METRICS lists every family a real daemon writes
        man = open(os.path.join(SRC, "man", "memc-load.8")).read()
        man = man.split("\n.SH METRICS\n", 1)[1].split("\n.SH ", 1)[0]
        listed = set(re.findall(r"^\.B (memc_load_\w+)", man, re.M))
        written = set(re.findall(r"^# TYPE (\w+) ", daemon_text + oneshot_text, re.M))
        assert written <= listed, "not in memc-load(8) METRICS: %s" % sorted(written - listed)
        print("metrics: %d records, %d error lines, promtool clean, retries, stop, one-shot, "
              "%d queried selectors found: 1 passed, 0 failed" % (sum(valid.values()), errors, n))
    finally:
        if daemon and daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        for proc, _ in servers:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


# ---- --lint: contrib/ without a daemon ---------------------------------------


def slug(heading):
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def lint_rules(catalog_ids, anchors):
    alerts = []
    for r in rules():
        a = r["alert"]
        alerts.append(a)
        assert r.get("labels", {}).get("severity") in ("critical", "warning"), a
        ann = r.get("annotations", {})
        for k in ("summary", "description", "runbook"):
            assert ann.get(k, "").strip(), "%s: no %s" % (a, k)
        ids = re.findall(r"MESSAGE_ID=([0-9a-f]{32})", ann["runbook"])
        refs = re.findall(r"README\.md#([\w-]+)", ann["runbook"])
        assert ids or refs, "%s: runbook names no catalog entry or README section" % a
        for i in ids:
            assert i in catalog_ids, "%s: MESSAGE_ID %s is not in the catalog" % (a, i)
        for ref in refs:
            assert ref in anchors, "%s: README has no section #%s" % (a, ref)
    assert len(alerts) == len(set(alerts)), alerts
    fires, quiet = set(), set()
    for t in load_yaml(RULE_TESTS)["tests"]:
        for case in t.get("alert_rule_test", []):
            (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
    for a in alerts:
        assert a in fires and a in quiet, "%s: the rule tests need it firing and not firing" % a
    return alerts


def lint_dashboard():
    dash = json.load(open(DASHBOARD))
    assert dash["uid"] and dash["title"]
    panels = [p for p in dash["panels"] if p["type"] != "row"]
    for p in panels:
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["expr"].strip(), p["title"]
        for d in [p.get("datasource")] + [t.get("datasource") for t in p["targets"]]:
            assert d is None or d.get("uid") == "${datasource}", (p["title"], d)
    return len(panels)


def lint_main():
    catalog = open(os.path.join(SRC, "catalog", "memc-load.catalog")).read()
    catalog_ids = set(re.findall(r"^-- ([0-9a-f]{32})$", catalog, re.M))
    readme = open(os.path.join(SRC, "README.md")).read()
    anchors = {slug(h) for h in re.findall(r"^#+ (.*)$", readme, re.M)}
    alerts = lint_rules(catalog_ids, anchors)
    npanels = lint_dashboard()
    # every family queried is documented in README's Prometheus section
    section = readme.split("### Prometheus", 1)[1].split("\n## ", 1)[0]
    for expr in queried():
        for name, matchers in selectors(expr):
            if name in NODE_EXPORTER:
                for label, op, val in matchers:
                    if label == "file":  # basename (node-exporter <= 1.6) or full path
                        for f in ("memc-load.prom", DEFAULT_PROM):
                            assert re.fullmatch(val.replace("\\\\", "\\"), f), (val, f)
                continue
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            assert "`%s" % base in section or "`%s" % name in section, \
                "%s is not in README's Prometheus section" % name
    print("prometheus contrib: %d alerts, %d panels lint clean: 1 passed, 0 failed"
          % (len(alerts), npanels))


if __name__ == "__main__":
    if sys.argv[1:] == ["--lint"]:
        lint_main()
    else:
        daemon_main(sys.argv[1], sys.argv[2])
