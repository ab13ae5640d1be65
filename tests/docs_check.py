#!/usr/bin/python3
"""docs_check.py SOURCE_DIR — the texts an operator reads, checked against
the code that they describe (no daemon runs; a unit test):

* the journal catalog has one entry per MESSAGE_ID of src/common/log.h and
  no other; every @FIELD@ an entry names is a field the code sends; the
  README's MESSAGE_ID table lists each of them;
* the result entries each have their own text: "failed" (error rate) and
  "corrupt"/"unreadable" (set aside as .NAME.failed) are two entries, and
  the rates are shown as percent (MEMC_ERROR_PERCENT), as the log line does.
"""
import glob
import os
import re
import sys

src = sys.argv[1]
fails = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        fails.append(what)


def read(*path):
    with open(os.path.join(src, *path)) as f:
        return f.read()


# ---- the journal catalog -------------------------------------------------
log_h = read("src", "common", "log.h")
ids = dict(re.findall(r'#define (LOG_MSGID_\w+) "([0-9a-f]{32})"', log_h))
catalog = read("catalog", "memc-load.catalog")
entries = {}
for block in re.split(r"^-- ", catalog, flags=re.M)[1:]:
    head, _, body = block.partition("\n")
    entries.setdefault(head.strip(), []).append(body)
check(sorted(entries) == sorted(ids.values()),
      "one catalog entry per MESSAGE_ID of log.h (%d)" % len(ids))
check(all(len(v) == 1 for v in entries.values()), "no MESSAGE_ID has two catalog entries")
check(len(set(ids.values())) == len(ids), "no two LOG_MSGID_* share a MESSAGE_ID")

code = "".join(read(os.path.relpath(p, src)) for p in
               glob.glob(os.path.join(src, "src", "**", "*.[ch]"), recursive=True))
sent = set(re.findall(r'"(MEMC_[A-Z_]+)=', code)) | set(re.findall(r'"(MEMC_[A-Z_]+)"', code))
for msgid, (body,) in entries.items():
    for field in sorted(set(re.findall(r"@(\w+)@", body))):
        check(field in sent, "%s: @%s@ is a field the code sends" % (msgid, field))


def entry(name):
    return entries.get(ids.get(name, ""), [""])[0]


loaded, failed, corrupt = (entry("LOG_MSGID_FILE_" + n) for n in ("LOADED", "FAILED", "CORRUPT"))
check("@MEMC_ERROR_PERCENT@%" in loaded and "@MEMC_ERROR_RATE@" not in loaded,
      "the 'loaded' entry shows the error rate as a percent")
check("error_threshold" in failed and "@MEMC_ERROR_PERCENT@%" in failed,
      "the 'failed' entry explains the error rate")
check(".failed" not in failed and "gzip" not in failed,
      "the 'failed' entry does not tell the corrupt file's story")
check(".@MEMC_FILE@.failed" in corrupt and "gzip" in corrupt and "error_threshold" not in corrupt,
      "the 'corrupt' entry: set aside as .NAME.failed, not the error rate")
report_c = read("src", "master", "report.c")
check(re.search(r"report_entry\([^;]*LOG_MSGID_FILE_CORRUPT", report_c, re.S) is not None,
      "report.c logs a set-aside file with LOG_MSGID_FILE_CORRUPT")

readme = read("README.md")
for name, msgid in sorted(ids.items()):
    check("| `%s` |" % msgid in readme, "README's MESSAGE_ID table lists %s" % name)

sys.exit(1 if fails else 0)
