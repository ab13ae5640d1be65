#!/usr/bin/python3
"""compose_check.py SOURCE_DIR — docker-compose.yml, the Dockerfile and
docker/entrypoint.sh read, since no Docker engine runs in CI (issue 11, 7):

* the memc-load service bind-mounts ./spool and something makes it writable
  for the daemon's user: a `user:` mapping, or the entrypoint script, which
  starts as root, hands a root-owned spool to memc-load and drops privileges;
* the config comes from a volume on /etc/memc-load, and the image does not
  COPY a config in;
* stop_grace_period is at least 30 s (above the daemon's stop_timeout).
Uses Debian's python3-yaml."""
import os
import re
import subprocess
import sys

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
        check(re.search(r"chown memc-load:memc-load \"?\$spool", text) is not None,
              "entrypoint hands a root-owned spool to memc-load")
        check("setpriv --reuid" in text, "entrypoint drops root (setpriv)")
        check(not re.search(r"^USER ", final, re.M), "no USER line: the entrypoint starts as root")

sys.exit(1 if fails else 0)
