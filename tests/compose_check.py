#!/usr/bin/python3
"""compose_check.py SOURCE_DIR — docker-compose.yml, the Dockerfile and
docker/entrypoint.sh read, since no Docker engine runs in CI (issue 11, 7):

* the memc-load service bind-mounts ./spool and something makes it writable
  for the daemon's user: a `user:` mapping, or the entrypoint script, which
  starts as root, hands a root-owned spool to memc-load and drops privileges;
* the config comes from a volume on /etc/memc-load, and the image does not
  COPY a config in;
* stop_grace_period is at least 30 s (above the daemon's stop_timeout);
* the entrypoint never takes ./spool from its owner (a root-owned one only
  gets group write for memc-load), and the README says to mkdir it first;
* /var/lib/memc-load (server identities, metrics) is a named volume, and
  the image creates it for memc-load;
* every memcached service and memc-load have a healthcheck, and memc-load
  waits for the four with condition: service_healthy; the memcached check
  is run here against a real memcached (and a closed port), memc-load's
  against a fresh, a stale and a missing metrics file.
Uses Debian's python3-yaml and memcached."""
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

import yaml

src = sys.argv[1]
fails = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        fails.append(what)


def seconds(v):
    m = re.fullmatch(r"(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?", str(v).strip())
    if not m or not any(m.groups()):
        return None
    return int(m.group(1) or 0) * 60 + float(m.group(2) or 0)


with open(os.path.join(src, "docker-compose.yml")) as f:
    compose = yaml.safe_load(f)
svc = compose["services"]["memc-load"]
vols = [v if isinstance(v, str) else "%s:%s" % (v.get("source"), v.get("target"))
        for v in svc.get("volumes", [])]
targets = {v.split(":")[1]: v.split(":")[0] for v in vols}

check(targets.get("/var/spool/memc-load") == "./spool", "./spool is bind-mounted on the spool")
check("/etc/memc-load" in targets, "the config comes from a volume on /etc/memc-load")
conf_src = targets.get("/etc/memc-load", "")
check(os.path.isfile(os.path.join(src, conf_src, "memc-load.conf")),
      "the config volume (%s) holds memc-load.conf" % conf_src)
grace = seconds(svc.get("stop_grace_period", "10s"))
check(grace is not None and grace >= 30, "stop_grace_period %s >= 30s" % svc.get("stop_grace_period"))
stop_timeout = 20  # the default (README, config table)
with open(os.path.join(src, conf_src or "etc", "memc-load.conf")) as f:
    for line in f:
        m = re.match(r"\s*stop_timeout\s*=\s*(\d+)", line)
        if m:
            stop_timeout = int(m.group(1))
check(grace is not None and grace > stop_timeout,
      "stop_grace_period above stop_timeout (%d s)" % stop_timeout)

with open(os.path.join(src, "Dockerfile")) as f:
    docker = f.read()
final = docker.split("\nFROM ")[-1]  # the runtime stage
check(not re.search(r"^COPY .*etc/memc-load", final, re.M), "no config baked into the image")

if "user" in svc:
    check(True, "user: mapping %s" % svc["user"])
else:
    m = re.search(r'^ENTRYPOINT \["([^"]+)"', final, re.M)
    check(m is not None, "the image has an ENTRYPOINT")
    entry = m.group(1) if m else ""
    cm = re.search(r"^COPY (\S+) %s$" % re.escape(entry), final, re.M)
    check(cm is not None, "the entrypoint %s is copied from the source tree" % entry)
    script = os.path.join(src, cm.group(1)) if cm else ""
    check(os.path.isfile(script), "entrypoint script %s exists" % script)
    if os.path.isfile(script):
        text = open(script).read()
        check(subprocess.run(["sh", "-n", script]).returncode == 0, "entrypoint parses (sh -n)")
        check(not re.search(r"^\s*chown\b[^\n]*\$\{?spool\b", text, re.M),
              "entrypoint never chowns the spool (its owner stays)")
        check(re.search(r"^\s*chgrp memc-load \"?\$spool\"?\s*$", text, re.M) is not None and
              re.search(r"^\s*chmod g\+rwxs? \"?\$spool", text, re.M) is not None,
              "a root-owned spool gets group write for memc-load")
        check(re.search(r"^\s*chown\b[^\n]*\$\{?state\b", text, re.M) is not None,
              "entrypoint gives the state directory to the daemon's user")
        check("setpriv --reuid" in text, "entrypoint drops root (setpriv)")
        check(not re.search(r"^USER ", final, re.M), "no USER line: the entrypoint starts as root")

with open(os.path.join(src, "README.md")) as f:
    readme = f.read()
check(re.search(r"^mkdir (-p )?spool\b", readme, re.M) is not None, "README: mkdir spool first")

# the state directory: a named volume, created by the image for memc-load
state_src = targets.get("/var/lib/memc-load", "")
check(state_src != "" and not state_src.startswith((".", "/")) and
      state_src in (compose.get("volumes") or {}),
      "/var/lib/memc-load is a named volume (%s)" % state_src)
check(re.search(r"install -d -o memc-load -g memc-load [^\n]*/var/lib/memc-load", final) is not None,
      "the image creates /var/lib/memc-load for memc-load")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run_test(test, subst):
    """A compose healthcheck test ([CMD, ...] or [CMD-SHELL, cmd]) run here,
    with compose's $$ unescaped and subst's replacements made."""
    args = [a.replace("$$", "$") for a in test[1:]]
    for a, b in subst.items():
        args = [x.replace(a, b) for x in args]
    if test[0] == "CMD-SHELL":
        args = ["sh", "-c"] + args
    return subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          timeout=20).returncode


mcs = sorted(n for n in compose["services"] if n.startswith("memcached-"))
check(len(mcs) == 4, "four memcached services")
deps = svc.get("depends_on", {})
for n in mcs:
    hc = compose["services"][n].get("healthcheck", {})
    check(bool(hc.get("test")), "%s has a healthcheck" % n)
    check(isinstance(deps, dict) and deps.get(n, {}).get("condition") == "service_healthy",
          "memc-load waits for %s to be healthy" % n)
tests = {repr(compose["services"][n].get("healthcheck", {}).get("test")) for n in mcs}
check(len(tests) == 1, "the four memcached share one healthcheck")
mc_test = compose["services"][mcs[0]].get("healthcheck", {}).get("test")
if mc_test:
    port = free_port()
    mc = subprocess.Popen(["memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0",
                           "-u", "nobody"], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        check(run_test(mc_test, {"11211": str(port)}) == 0,
              "the memcached healthcheck passes against a real memcached")
    finally:
        mc.kill()
        mc.wait()
    check(run_test(mc_test, {"11211": str(free_port())}) != 0,
          "the memcached healthcheck fails on a closed port")

ml_test = svc.get("healthcheck", {}).get("test")
check(bool(ml_test), "memc-load has a healthcheck")
metrics = [a.split("=", 1)[1] for a in svc.get("command", []) if a.startswith("--metrics-file=")]
check(len(metrics) == 1 and metrics[0].startswith("/var/lib/memc-load/"),
      "memc-load writes its metrics into the state volume")
if ml_test and metrics:
    with tempfile.TemporaryDirectory() as tmp:
        prom = os.path.join(tmp, "memc-load.prom")
        sub = {metrics[0]: prom}
        check(run_test(ml_test, sub) != 0, "memc-load unhealthy without a metrics file")
        open(prom, "w").close()
        check(run_test(ml_test, sub) == 0, "memc-load healthy with a fresh metrics file")
        old = time.time() - 120
        os.utime(prom, (old, old))
        check(run_test(ml_test, sub) != 0, "memc-load unhealthy with a 2 minutes old one")

sys.exit(1 if fails else 0)
