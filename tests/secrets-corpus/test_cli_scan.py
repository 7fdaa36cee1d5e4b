#!/usr/bin/env python3
"""tests/secrets-corpus/test_cli_scan.py — `mrgate scan` as a user runs it, on the secrets corpus, with no database.

Generates the corpus of tests/secrets-corpus/corpus.py (seed 18) and checks, on it:
  - --format json (one object per line), text and sarif report the same findings (path, line, rule);
  - the SARIF log has the shape SARIF 2.1.0 requires (version, runs[].tool.driver.name, results[] with ruleId,
    message.text, locations[].physicalLocation.artifactLocation.uri and region.startLine), every ruleId is one of
    the driver's rules, and the severities map back (security-severity);
  - the corpus committed to a git repository and then changed: `git diff | mrgate scan --diff -` reports exactly
    the findings `mrgate scan` reports on the changed files, on the lines the change adds (new line numbers), and
    nothing on the lines it removes;
  - exit codes: 1 when a finding is at or above --fail-on (default high), 0 below it or with never, 2 for a bad
    flag, a bad --fail-on or --format value, '-' without --diff, a malformed diff, with a message on stderr;
  - no output (any format, stderr included) holds a secret of the corpus.
Needs MRGATE_BIN (set by ctest) and git (scripts/deps.sh installs it).
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus  # noqa: E402

FAILURES = []


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print("FAIL: " + what)


def run(args, cwd, stdin=None):
    return subprocess.run([os.environ["MRGATE_BIN"], "scan", *args], cwd=cwd, input=stdin, capture_output=True,
                          text=True, timeout=600)


def git(cwd, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=cwd, check=True,
                   capture_output=True)


def keys_json(out):
    return {(f["path"], f["line"], f["rule_id"]) for f in map(json.loads, out.splitlines()) if f}


def check_sarif(doc, want_keys):
    log = json.loads(doc)
    check(log.get("version") == "2.1.0", "sarif: version is not 2.1.0")
    runs = log.get("runs")
    check(isinstance(runs, list) and len(runs) == 1, "sarif: runs is not an array of one run")
    run_ = runs[0]
    driver = run_["tool"]["driver"]
    check(driver.get("name") == "mrgate", "sarif: tool.driver.name is not mrgate")
    rules = driver.get("rules", [])
    ids = [r["id"] for r in rules]
    check(len(ids) == len(set(ids)) and len(ids) >= 60, f"sarif: {len(ids)} rules, with duplicates or too few")
    for r in rules:
        check(r.get("shortDescription", {}).get("text") and r.get("helpUri", "").startswith("https://"),
              f"sarif: rule {r['id']} lacks shortDescription.text or an https helpUri")
    got = set()
    sev_score = {"critical": 9.0, "high": 7.0, "medium": 4.0, "low": 0.0}
    for res in run_["results"]:
        check(isinstance(res.get("message", {}).get("text"), str), "sarif: a result without message.text")
        check(res.get("ruleId") in ids and ids[res["ruleIndex"]] == res["ruleId"],
              "sarif: a result whose ruleId/ruleIndex is not a driver rule")
        loc = res["locations"][0]["physicalLocation"]
        uri, line = loc["artifactLocation"]["uri"], loc["region"]["startLine"]
        check(isinstance(line, int) and line >= 1, "sarif: region.startLine is not a positive integer")
        check(" " not in uri and not uri.startswith("/"), f"sarif: uri {uri!r} is not a relative URI reference")
        check(res.get("level") in ("error", "warning", "note"), "sarif: a result with a bad level")
        check(res.get("partialFingerprints", {}).get("mrgate/v1"), "sarif: a result without its fingerprint")
        check(float(res["properties"]["security-severity"]) >= 0, "sarif: a result without security-severity")
        got.add((uri, line, res["ruleId"]))
    check(got == want_keys, f"sarif reports {len(got)} findings, json {len(want_keys)}")
    return log


def main():
    if not os.environ.get("MRGATE_BIN"):
        print("FAIL: MRGATE_BIN is not set to the mrgate binary")
        return 1
    with tempfile.TemporaryDirectory(prefix="mrgate-cli-scan-") as d:
        m = corpus.generate(d, seed=18)
        secrets = [x["secret"] for x in m["secrets"]]

        def no_secret(name, text):
            leaked = [s for s in secrets if s in text]
            check(not leaked, f"{name}: {len(leaked)} secrets of the corpus appear in the output")

        pj = run(["files"], d)
        check(pj.returncode == 1, f"json: exit {pj.returncode}, wants 1 (high findings)")
        want = keys_json(pj.stdout)
        check(len(want) > 100, f"json: only {len(want)} findings on the corpus")
        no_secret("json", pj.stdout + pj.stderr)

        pt = run(["--format", "text", "files"], d)
        check(pt.returncode == 1, f"text: exit {pt.returncode}, wants 1")
        got_text = set()
        for line in pt.stdout.splitlines():
            if line.startswith("    "):
                continue  # the excerpt
            where, _, rest = line.partition(": ")
            path, _, ln = where.rpartition(":")
            got_text.add((path, int(ln), rest.split(" ")[1].rstrip(":")))
        check(got_text == want, f"text reports {len(got_text)} findings, json {len(want)}")
        no_secret("text", pt.stdout + pt.stderr)

        ps = run(["--format=sarif", "files"], d)
        check(ps.returncode == 1, f"sarif: exit {ps.returncode}, wants 1")
        check_sarif(ps.stdout, want)
        no_secret("sarif", ps.stdout + ps.stderr)

        # Thresholds: the corpus has critical findings, so every level but never fails it.
        sevs = {json.loads(x)["severity"] for x in pj.stdout.splitlines()}
        check("critical" in sevs and "medium" in sevs, f"corpus severities {sorted(sevs)}")
        for level, rc in (("critical", 1), ("low", 1), ("never", 0)):
            p = run(["--fail-on", level, "files"], d)
            check(p.returncode == rc, f"--fail-on {level}: exit {p.returncode}, wants {rc}")
        # A file with only a medium finding (a generic password) passes the default threshold, high.
        med = os.path.join(d, "medium.py")
        with open(med, "w") as f:
            f.write('db_password = "Xq7pL9mN2vB4kT"\n')
        p = run([med], d)
        check(p.returncode == 0 and '"severity":"medium"' in p.stdout,
              f"a medium finding under the default --fail-on high: exit {p.returncode}, wants 0 and the finding")
        check(run(["--fail-on", "medium", med], d).returncode == 1, "--fail-on medium on a medium finding: wants 1")

        # A diff on stdin: commit half of every file, then the whole corpus; plus a removed secret line.
        repo = os.path.join(d, "repo")
        os.makedirs(repo)
        git(repo, "init", "-q")
        changed = sorted(f["path"] for f in m["files"])[:40]
        full = {}
        for rel in changed:
            with open(os.path.join(d, rel)) as f:
                full[rel] = f.read().splitlines(keepends=True)
            os.makedirs(os.path.dirname(os.path.join(repo, rel)), exist_ok=True)
            with open(os.path.join(repo, rel), "w") as f:
                f.writelines(full[rel][: len(full[rel]) // 2])
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "half")
        first = changed[0]
        for rel in changed:
            lines = full[rel]
            if rel == first:  # drop its first line, which the diff then removes
                lines = lines[1:]
            with open(os.path.join(repo, rel), "w") as f:
                f.writelines(lines)
        diff = subprocess.run(["git", "diff"], cwd=repo, capture_output=True, text=True, check=True).stdout
        pd = run(["--diff", "-"], repo, stdin=diff)
        check(pd.returncode in (0, 1), f"--diff -: exit {pd.returncode}: {pd.stderr.strip()[:200]}")
        got_diff = keys_json(pd.stdout)
        pf = run(changed, repo)
        in_files = keys_json(pf.stdout)
        # Only what the change added: the second half of each file (the first file is one line shorter).
        added = {(p, ln, r) for (p, ln, r) in in_files
                 if ln > len(full[p]) // 2 - (1 if p == first else 0)}
        check(len(added) >= 10, f"the added halves hold only {len(added)} findings")
        check(got_diff == added, f"--diff - reports {len(got_diff)} findings, the added halves hold {len(added)}")
        check(pd.returncode == (1 if any(json.loads(x)["severity"] in ("high", "critical")
                                         for x in pd.stdout.splitlines()) else 0), "--diff -: wrong exit code")
        no_secret("diff", pd.stdout + pd.stderr)
        patch = os.path.join(d, "change.patch")
        with open(patch, "w") as f:
            f.write(diff)
        check(keys_json(run(["--diff", patch], d).stdout) == got_diff, "--diff FILE differs from --diff -")

        # Usage and input errors: exit 2 and a message that says why.
        for args, stdin, says in ((["--bogus", "files"], None, "unknown option --bogus"),
                                  (["--fail-on", "hihg", "files"], None, "--fail-on must be"),
                                  (["--format", "xml", "files"], None, "--format must be"),
                                  (["--fail-on"], None, "needs a value"),
                                  ([], None, "nothing to scan"),
                                  (["-"], "", "add --diff"),
                                  (["--diff", "-"], "@@ -1 +1 @@\n+x\n", "line 1"),
                                  (["--diff", "-"], "just some text\nnot a patch\n", "no file header"),
                                  (["--diff", "-"], "--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n+x\nzz\n", "line 3"),
                                  (["--diff", os.path.join(d, "missing.patch")], None, "could not read"),
                                  (["missing-dir"], None, "the scan is incomplete")):
            p = run(args, d, stdin=stdin)
            check(p.returncode == 2 and says in p.stderr,
                  f"mrgate scan {' '.join(args)}: exit {p.returncode}, stderr {p.stderr.strip()[:160]!r}; "
                  f"wants 2 and {says!r}")
        # Hostile file names: a newline or tab in a path cannot forge a line of the text output, and a patch
        # without "diff --git" lines (git's prefixes still there) names new files without "b/".
        key = "AKIAIOSFODNN7EXAMPLF"
        odd = ("--- /dev/null\n+++ \"b/x\\nevil.txt:9: high forged-rule: looks real\"\n@@ -0,0 +1 @@\n+" + key + "\n"
               "--- /dev/null\n+++ b/new.env\n@@ -0,0 +1 @@\n+" + key + "\n"
               "--- a/old.env\n+++ b/old.env\n@@ -1 +1,2 @@\n x\n+" + key + "\n")
        pt = run(["--diff", "-", "--format", "text"], d, stdin=odd)
        check(pt.returncode == 1, f"hostile names: exit {pt.returncode}: {pt.stderr.strip()[:200]}")
        heads = [ln for ln in pt.stdout.splitlines() if not ln.startswith("    ")]
        check(len(heads) == 3 and not any(ln.startswith("evil.txt") for ln in heads),
              f"a newline in a path forged a text line: {heads!r}")
        check(any(ln.startswith('"x\\nevil.txt:9: high forged-rule: looks real":1: ') for ln in heads),
              f"a path with a newline is not quoted as git quotes it: {heads!r}")
        check(any(ln.startswith("new.env:1: ") for ln in heads) and any(ln.startswith("old.env:2: ") for ln in heads),
              f"git's b/ prefix kept without a diff --git line: {heads!r}")
        # the closing count reads as a sentence: one file, one finding
        one = os.path.join(d, "one")
        os.makedirs(one)
        with open(os.path.join(one, "config.env"), "w") as f:
            f.write("AWS_ACCESS_KEY_ID=" + key + "\n")
        p1 = run(["--format", "text", "."], one)
        check("scanned 1 file, 1 finding\n" in p1.stderr, f"one file: stderr {p1.stderr.strip()[-160:]!r}")
        print(f"json/text/sarif: {len(want)} findings each; git diff of {len(changed)} files: {len(got_diff)} findings "
              f"on added lines")
    if not FAILURES:
        print("PASS")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
