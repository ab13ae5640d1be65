#!/usr/bin/python3
"""pycompat.py — memc-load's values are byte-identical to Python protobuf.

Independent of every line of our C: the expected value of each record is
computed the way the original memc_load.py did it (google.protobuf
UserApps, SerializeToString), from the same .tsv.gz, and compared with what
a real memcached serves after memc-load --oneshot.

usage: pycompat.py MEMC_LOAD MEMC_GEN
"""
import gzip
import os
import shutil
import socket
import subprocess
import sys
import tempfile

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory


def user_apps_class():
    fdp = descriptor_pb2.FileDescriptorProto(name="appsinstalled.proto", syntax="proto2")
    m = fdp.message_type.add(name="UserApps")
    L, T = descriptor_pb2.FieldDescriptorProto, descriptor_pb2.FieldDescriptorProto
    m.field.add(name="apps", number=1, label=L.LABEL_REPEATED, type=T.TYPE_UINT32)
    m.field.add(name="lat", number=2, label=L.LABEL_OPTIONAL, type=T.TYPE_DOUBLE)
    m.field.add(name="lon", number=3, label=L.LABEL_OPTIONAL, type=T.TYPE_DOUBLE)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    desc = pool.FindMessageTypeByName("UserApps")
    try:
        return message_factory.GetMessageClass(desc)
    except AttributeError:  # older protobuf
        return message_factory.MessageFactory(pool).GetPrototype(desc)


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import memcached  # noqa: E402  (tests/lib/memcached.py)


def start_memcached():
    """memcached on a free loopback port: (Popen, port)."""
    return memcached.start("-m", "256")


def mg(sock_file, sock, key):
    sock.sendall(b"mg " + key + b" v\r\n")
    head = sock_file.readline()
    if head.startswith(b"EN"):
        return None
    assert head.startswith(b"VA "), head
    n = int(head.split()[1])
    data = sock_file.read(n + 2)
    return data[:-2]


def expected(lines, UserApps):
    """The original loader's parsing, with the contract's fixes."""
    out = {}
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        parts = line.split(b"\t")
        if len(parts) != 5:
            continue
        dev_type, dev_id, lat, lon, apps = parts
        if not dev_type or not dev_id:
            continue
        try:
            lat, lon = float(lat), float(lon)
        except ValueError:
            continue
        ua = UserApps()
        for a in apps.split(b","):
            a = a.strip()
            if a.isdigit() and int(a) <= 0xFFFFFFFF:
                ua.apps.append(int(a))
        ua.lat, ua.lon = lat, lon
        out[dev_type + b":" + dev_id] = ua.SerializeToString()
    return out


def main():
    memc_load, memc_gen = sys.argv[1], sys.argv[2]
    UserApps = user_apps_class()
    tmp = tempfile.mkdtemp(prefix="memc-pycompat-")
    proc, port = start_memcached()
    try:
        spool = os.path.join(tmp, "spool")
        subprocess.run([memc_gen, "-n", "3000", "-s", "99", "--dup", "0.05", spool],
                       check=True, stdout=subprocess.DEVNULL)
        # hand-written corner cases on top
        corner = (b"idfa\tneg-zero\t-0.0\t0\t1,2\n"
                  b"gaid\texp\t1e-7\t-1.5E+2\t4294967295,0,128,16384\n"
                  b"adid\tdirty\t  12.5 \t7\t 5 ,x,-1,,99999999999,6\n"
                  b"dvid\tunderscore\t1_000.25\t.5\t3\n"
                  b"idfa\tnoapps\t1\t2\t,\n"
                  b"idfa\tlong-digits\t0.1000000000000000055511151231257827\t"
                  b"123456789012345678901234567890\t1\n")
        with gzip.open(os.path.join(spool, "zz-corner.tsv.gz"), "wb") as f:
            f.write(corner)
        addr = "127.0.0.1:%d" % port
        r = subprocess.run([memc_load, "--oneshot", "--config", "/dev/null", "--pattern",
                            spool + "/*.tsv.gz", "--idfa", addr, "--gaid", addr, "--adid",
                            addr, "--dvid", addr], stderr=subprocess.PIPE)
        if r.returncode != 0:
            sys.exit("memc-load exited %d:\n%s" % (r.returncode, r.stderr.decode()))
        want = {}
        for name in sorted(os.listdir(spool)):
            with gzip.open(os.path.join(spool, name), "rb") as f:
                want.update(expected(f.read().splitlines(), UserApps))
        sock = socket.create_connection(("127.0.0.1", port))
        sf = sock.makefile("rb")
        bad = 0
        for key, value in want.items():
            got = mg(sf, sock, key)
            if got != value:
                bad += 1
                if bad <= 5:
                    print("mismatch %r: got %r want %r" % (key, got, value))
        print("%d keys compared with Python protobuf, %d mismatches" % (len(want), bad))
        print("%d passed, %d failed" % (len(want) - bad, bad))
        sys.exit(1 if bad or len(want) < 2800 else 0)
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
