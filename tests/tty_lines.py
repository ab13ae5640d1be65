#!/usr/bin/python3
"""tty_lines.py — on a terminal a log line is the sentence alone.

The journal gets the MEMC_* fields; a person at a terminal gets the
sentence.  Runs `memc-load --oneshot` under script(1) (a real pty) with the
idfa memcached missing, so the "left in place" error (a structured entry
with fields) is printed, and checks that it carries no " MEMC_" suffix;
the same run with stderr to a file keeps the fields (scripts parse them).

usage: tty_lines.py MEMC_LOAD MEMC_GEN
"""
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connections are refused
    return port


def main():
    memc_load, memc_gen = sys.argv[1], sys.argv[2]
    tmp = tempfile.mkdtemp(prefix="memc-tty-")
    try:
        spool = os.path.join(tmp, "spool")
        os.mkdir(spool)
        subprocess.run([memc_gen, "-n", "200", "-s", "3", spool], check=True,
                       stdout=subprocess.DEVNULL)
        port = closed_port()
        args = [memc_load, "--oneshot", "--config", "/dev/null", "--pattern",
                spool + "/*.tsv.gz", "--workers", "1"]
        for t in ("idfa", "gaid", "adid", "dvid"):
            args += ["--" + t, "127.0.0.1:%d" % port]
        cmd = " ".join(shlex.quote(a) for a in args)
        tty = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True,
                             text=True, timeout=120)
        out = tty.stdout
        assert "left in place" in out, out
        left = [l for l in out.splitlines() if "left in place" in l]
        assert all(" MEMC_" not in l for l in left), left
        with open(os.path.join(tmp, "err"), "w+") as err:
            r = subprocess.run(args, stderr=err, timeout=120)
            err.seek(0)
            text = err.read()
        assert r.returncode == 75, r.returncode
        assert "left in place" in text and " MEMC_FILE=" in text, text
        print("tty lines: sentence only on a terminal, fields in files: 1 passed, 0 failed")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
