#!/usr/bin/python3
"""docs_check.py SOURCE_DIR [MEMC_LOAD] — the texts an operator reads, checked against
the code that they describe (no daemon runs; a unit test):

* the journal catalog has one entry per MESSAGE_ID of src/common/log.h and
  no other; every @FIELD@ an entry names is a field the code sends; the
  README's MESSAGE_ID table lists each of them;
* the result entries each have their own text: "failed" (error rate) and
  "corrupt"/"unreadable" (set aside as .NAME.failed) are two entries, and
  the rates are shown as percent (MEMC_ERROR_PERCENT), as the log line does;
* the man pages are `mandoc -Tlint` clean; memc-load(8)'s DESCRIPTION
  renders the line format with its tabs as `\\t`; its JOURNAL section lists
  every MESSAGE_ID, its METRICS section the README's metric families (and
  tests/metrics.py holds it to the families a real daemon writes); it has
  EXAMPLES; its EXIT STATUS and, given MEMC_LOAD, `--help` name every
  status of src/common/exitcode.h.
"""
import glob
import os
import re
import subprocess
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

# ---- the man pages --------------------------------------------------------
for page in ("memc-load.8", "memc-load.conf.5"):
    lint = subprocess.run(["mandoc", "-Tlint", os.path.join(src, "man", page)],
                          capture_output=True, text=True)
    check(lint.returncode == 0 and not (lint.stdout + lint.stderr).strip(),
          "mandoc -Tlint %s is clean%s" % (page, (": " + lint.stdout + lint.stderr).rstrip()
                                           if lint.stdout + lint.stderr else ""))
man8 = os.path.join(src, "man", "memc-load.8")
text = subprocess.run(["mandoc", "-Tutf8", man8], capture_output=True, text=True).stdout
text = re.sub(r".\x08", "", text)  # overstrike bold/underline
flat = " ".join(text.split())
check('"dev_type\\tdev_id\\tlat\\tlon\\tapp,app,..."' in flat,
      "DESCRIPTION renders the line format with \\t between the fields")
src8 = read("man", "memc-load.8")


def man_section(name):
    m = re.search(r"^\.SH %s\n(.*?)(?=^\.SH )" % re.escape(name), src8, re.M | re.S)
    return m.group(1) if m else ""


check(man_section("EXAMPLES").count(".EX") >= 3, "memc-load(8) has EXAMPLES")
journal = man_section("JOURNAL")
for name, msgid in sorted(ids.items()):
    check(msgid in journal, "memc-load(8) JOURNAL lists %s" % name)
man_metrics = set(re.findall(r"^\.B (memc_load_\w+)", man_section("METRICS"), re.M))
prom = readme.split("### Prometheus", 1)[1].split("\n## ", 1)[0]
readme_metrics = set(re.findall(r"`(memc_load_\w+)", prom.split("\n### ", 1)[0]))
check(man_metrics == readme_metrics,
      "memc-load(8) METRICS lists the README's families (%d; only in man: %s, only in README: %s)"
      % (len(readme_metrics), sorted(man_metrics - readme_metrics),
         sorted(readme_metrics - man_metrics)))
codes = sorted({int(v) for v in re.findall(r"MEMC_EXIT_\w+\s*=\s*(\d+)",
                                           read("src", "common", "exitcode.h"))})
exit_man = man_section("EXIT STATUS")
help_text = ""
if len(sys.argv) > 2:
    help_text = subprocess.run([sys.argv[2], "--help"], capture_output=True, text=True).stdout
    help_text = help_text.split("Exit status:", 1)[-1]
for code in codes:
    check(re.search(r"^\.B %d$" % code, exit_man, re.M) is not None,
          "memc-load(8) EXIT STATUS names %d" % code)
    if len(sys.argv) > 2:
        check(re.search(r"(^|[ ;(])%d " % code, help_text, re.M) is not None,
              "--help names exit status %d" % code)

sys.exit(1 if fails else 0)
