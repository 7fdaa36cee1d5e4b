#!/usr/bin/env python3
"""tests/secrets-corpus/test_corpus.py — recall and false positives of the built-in secrets scanner on the corpus.

Generates the corpus of tests/secrets-corpus/corpus.py (seed 18) into a temporary directory and runs
`mrgate scan files` on it: every file goes through the diff GitLab sends for a new file and scan_secrets_set(), as
in the gate. Asserts, over the corpus:
  - it covers at least 60 formats, in files of at least 15 kinds;
  - recall >= 99% (a secret counts as found when a finding sits on its line);
  - at most 1 false-positive line per 100 near-miss lines (flagged filler lines count as false positives too);
  - no finding's excerpt or title holds a secret of the corpus;
  - mrgate scan exits 1 with findings, 0 on a clean file, 2 on a path it cannot read.
Prints recall per format and false positives per category (paths and line numbers only, never a secret).
Needs MRGATE_BIN (set by ctest).
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus  # noqa: E402

MIN_RECALL = 0.99
MAX_FP_PER_100 = 1.0
MIN_FORMATS = 60


def main():
    mrgate = os.environ.get("MRGATE_BIN")
    if not mrgate or not os.access(mrgate, os.X_OK):
        print("FAIL: MRGATE_BIN is not set to the mrgate binary")
        return 1
    failures = []
    with tempfile.TemporaryDirectory(prefix="mrgate-corpus-") as d:
        m = corpus.generate(d, seed=18)
        p = subprocess.run([mrgate, "scan", "files"], cwd=d, capture_output=True, text=True, timeout=600)
        if p.returncode not in (0, 1):
            print(f"FAIL: mrgate scan exited {p.returncode}: {p.stderr.strip()[:500]}")
            return 1
        findings = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
        flagged = {(f["path"], f["line"]) for f in findings}
        s = corpus.score(m, flagged)
        secrets = [x["secret"] for x in m["secrets"]]
        leaked = [f"{f['path']}:{f['line']}" for f in findings
                  if any(sec in f["excerpt"] or sec in f.get("title", "") for sec in secrets)]

    # The command's exit status: 1 with findings (above), 0 on a clean file, 2 for a path it cannot read.
    if p.returncode != 1:
        failures.append(f"mrgate scan exited {p.returncode} on the corpus, wants 1 (findings)")
    with tempfile.TemporaryDirectory(prefix="mrgate-scan-") as d:
        clean = os.path.join(d, "clean.py")
        with open(clean, "w") as f:
            f.write("import os\nTIMEOUT = 30\n")
        rc_clean = subprocess.run([mrgate, "scan", clean], capture_output=True, timeout=60).returncode
        rc_missing = subprocess.run([mrgate, "scan", os.path.join(d, "missing")], capture_output=True,
                                    timeout=60).returncode
    if rc_clean != 0:
        failures.append(f"mrgate scan exited {rc_clean} on a clean file, wants 0")
    if rc_missing != 2:
        failures.append(f"mrgate scan exited {rc_missing} on a missing path, wants 2")

    formats = len(s["by_format"])
    kinds = len({f["kind"] for f in m["files"]})
    print(f"corpus: {s['total']} secrets in {formats} formats, {s['near_total']} near-miss lines, "
          f"{m['filler_lines']} filler lines, {len(m['files'])} files of {kinds} kinds")
    print(f"{'format':36} found/total")
    for fmt, d in sorted(s["by_format"].items()):
        mark = "" if d["found"] == d["total"] else "   MISSED " + " ".join(d["missed"])
        print(f"  {fmt:34} {d['found']}/{d['total']}{mark}")
    print(f"{'near-miss category':36} flagged/total")
    for cat, d in sorted(s["near_by_category"].items()):
        mark = "" if not d["flagged"] else "   FLAGGED " + " ".join(d["lines"])
        print(f"  {cat:34} {d['flagged']}/{d['total']}{mark}")
    if s["filler_fp"]:
        print(f"  {'filler':34} {len(s['filler_fp'])}   FLAGGED " + " ".join(s["filler_fp"]))
    print(f"recall {100 * s['recall']:.1f}% ({s['found']}/{s['total']}); false-positive lines {s['fp_lines']} "
          f"= {s['fp_per_100']:.2f} per 100 near-miss lines")

    if formats < MIN_FORMATS:
        failures.append(f"corpus covers {formats} formats, wants at least {MIN_FORMATS}")
    if kinds < 15:
        failures.append(f"corpus has files of {kinds} kinds, wants at least 15")
    if s["recall"] < MIN_RECALL:
        failures.append(f"recall {100 * s['recall']:.1f}% is below {100 * MIN_RECALL:.0f}%")
    if s["fp_per_100"] > MAX_FP_PER_100:
        failures.append(f"{s['fp_per_100']:.2f} false-positive lines per 100 near misses, allowed {MAX_FP_PER_100}")
    if leaked:
        failures.append("an excerpt or title holds a secret at " + " ".join(leaked))
    for f in failures:
        print("FAIL: " + f)
    if not failures:
        print("PASS")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
