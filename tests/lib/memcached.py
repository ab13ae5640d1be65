"""memcached.py — the Python tests' way to start memcached.

A thin wrapper over tests/lib/memcached-start (a free loopback port, chosen
without a bind-then-close race; the started process is memcached itself, so
it is stopped by its PID).  Import with tests/lib on sys.path.
"""
import os
import subprocess
import sys

MEMCACHED_START = os.path.join(os.path.dirname(os.path.abspath(__file__)), "memcached-start")


def start(*args, port=0):
    """memcached with extra args (e.g. "-m", "64") on a free port, or on port
    (a restart where one was): (Popen, port)."""
    for _ in range(5):
        proc = subprocess.Popen([MEMCACHED_START, "--port", str(port), "-U", "0", *args],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        port = int(proc.stdout.readline() or 0)  # then it execs memcached: proc.pid is memcached
        proc.stdout.close()
        if port and subprocess.run([MEMCACHED_START, "--wait", str(proc.pid), str(port), "2"]
                                   ).returncode == 0:
            return proc, port
        proc.kill()
        proc.wait()
    sys.exit("cannot start memcached")
