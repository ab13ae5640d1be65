#!/usr/bin/python3
"""cli_lines.py — a command's messages name the program once.

The messages of the commands (a bad option, --check-config, verify, get)
go through log_cli: on a terminal, a file or a pipe they start with
"memc-load: " (as coreutils' do); on the journal stream (JOURNAL_STREAM
names stderr, as under ExecReload=) the journal names the program already
("memc-load[292]: ..."), so a line is the message alone with journald's
"<N>" priority prefix.  Each command is run both ways, stderr to a file,
and every line is checked.

usage: cli_lines.py MEMC_LOAD
"""
import os
import shutil
import subprocess
import sys
import tempfile


def run(args, journal, tmp):
    path = os.path.join(tmp, "err")
    with open(path, "w+") as err:
        env = dict(os.environ)
        env.pop("JOURNAL_STREAM", None)
        if journal:
            st = os.fstat(err.fileno())
            env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
        r = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=err, env=env, timeout=60)
        err.seek(0)
        return r.returncode, err.read().splitlines()


def main():
    memc_load = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="memc-cli-")
    try:
        none = os.path.join(tmp, "nospool", "*.tsv.gz")
        cases = [
            ([memc_load, "--workers", "zero"], 64, "<3>", "--workers"),
            ([memc_load, "--check-config", "--no-probe", "--config", "/dev/null",
              "--pattern", none], 1, "<3>", "spool directory"),
            ([memc_load, "get", "--config", "/dev/null", "nocolon"], 64, "<3>",
             "is not dev_type:dev_id"),
            ([memc_load, "verify", "--config", "/dev/null", os.path.join(tmp, "missing.gz")],
             66, "<3>", "No such file"),
        ]
        for args, code, prio, what in cases:
            for journal in (False, True):
                rc, lines = run(args, journal, tmp)
                assert rc == code, (args, journal, rc, lines)
                said = [l for l in lines if what in l]
                assert said, (args, journal, lines)
                for l in lines:
                    assert not l.startswith("memc-load: ") or not journal, (args, l)
                    assert "memc-load: memc-load" not in l, (args, l)
                want = prio if journal else "memc-load: "
                assert all(l.startswith(want) for l in said), (args, journal, said)
        print("cli lines: 'memc-load: ' off the journal, '<N>' on it: %d passed, 0 failed"
              % (2 * len(cases)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
