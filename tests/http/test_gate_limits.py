"""The gate against a GitLab as strict as the real one (issue 19): merge requests past GitLab's diff limits (1,000
files, too-large files) are scanned from the repository trees or fail by the fail mode, never passed unread; and
no text a merge request controls can start a line of mrgate's note (quick actions such as /merge)."""
import functools
import os
import re
import time

import flows
from harness import Mrgate, run
from sim import Sim

TOKEN = "glpat-gateLimitsToken0001"
LEAK = "glpat-Xk9Pq2mZr7Lw4Tb8Nc3V"  # a GitLab token shape the secrets scanner catches

sim = Sim("gate_limits")
sim.add_group("acme", tier="premium")
sim.add_token(TOKEN, scopes=["api"], access={"acme": 50}, username="gatebot", bot=True)
P = {}
SCANNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "sarif_scanner.py")
for name in ("big", "huge", "notes", "arch", "other"):
    P[name] = sim.add_project("acme", name, files=[{"path": "README.md", "content": f"# {name}\n"},
                                                   {"path": "old/keep.txt", "content": "kept\n"}])["id"]

srv = Mrgate("gate_limits", env={"MRGATE_GATE_WORKERS": "4", "MRGATE_GATE_TIMEOUT": "60",
                                 "MRGATE_GITLAB_RETRIES": "2", "MRGATE_GITLAB_BACKOFF_MS": "20",
                                 "MRGATE_SCANNER_SAST": f"/usr/bin/python3 {SCANNER}", "MRGATE_LOG_LEVEL": "info"})
c = srv.login()
HOOK_URL = srv.base + "/hooks/gitlab"


wait_for = srv.wait_for
final_status = functools.partial(flows.final_status, sim, timeout=90, logs=srv)


def setup_module():
    flows.connect_and_sync(c, sim, "acme", TOKEN, logs=srv)
    secret = srv.cli("webhook-secret")
    assert secret.returncode == 0, secret.stderr
    cfg = {"enabled": True, "fail_on": "high", "scans": ["secrets"], "comment": "always"}
    for name in P:
        r = c.put(f"/api/repos/{P[name]}/config", dict(cfg, scans=["secrets", "sast"]) if name == "arch" else cfg)
        assert r.status == 200, (name, r.body)
    gl = sim.client(TOKEN)
    for name in P:
        deadline = time.time() + 15
        while time.time() < deadline and not [h for h in gl.get(f"/api/v4/projects/{P[name]}/hooks").json()
                                              if h["url"] == HOOK_URL]:
            time.sleep(0.2)
        if not [h for h in gl.get(f"/api/v4/projects/{P[name]}/hooks").json() if h["url"] == HOOK_URL]:
            r = gl.post(f"/api/v4/projects/{P[name]}/hooks", {"url": HOOK_URL, "token": secret.stdout.strip(),
                                                              "merge_requests_events": True})
            assert r.status == 201, r.body


def last_run(pid, iid):
    r = c.get(f"/api/gates?repo={pid}&mr={iid}")
    assert r.status == 200, r.body
    return c.get(f"/api/gates/{r.json()['items'][0]['id']}").json()


def many_files(n, last_content):
    files = [{"path": f"gen/f{i:04d}.txt", "content": f"value {i}\n"} for i in range(n - 1)]
    files.append({"path": f"gen/f{n - 1:04d}.py", "content": last_content})
    return files


# --- 1. diff limits -------------------------------------------------------------------------------------------------

def test_secret_in_file_1001_fails_the_gate():
    pid = P["big"]
    mr = sim.open_mr(pid, many_files(1001, f"A = 1\nTOKEN = \"{LEAK}\"\n"))
    gl = sim.client(TOKEN)
    assert gl.get(f"/api/v4/projects/{pid}/merge_requests/{mr['iid']}").json()["changes_count"] == "1000+"
    st = final_status(pid, mr["sha"])
    assert st["status"] == "failed", st
    assert st["description"].startswith("1 high new finding (fails on high)"), st
    got = last_run(pid, mr["iid"])
    assert [(f["rule_id"], f["path"], f["line"]) for f in got["findings"]] == [
        ("gitlab-pat", "gen/f1000.py", 2)], got["findings"]
    assert any("1 file" in n and "repository tree" in n for n in got["notes"]), got["notes"]
    assert LEAK not in str(got)


def test_overflow_that_cannot_be_read_follows_the_fail_mode():
    pid = P["big"]
    # the trees cannot be had: every archive download answers 404
    sim.script("GET", "/api/v4/projects/:id/repository/archive.tar.gz",
               [{"status": 404, "body": {"message": "404 File Not Found"}}] * 12)
    try:
        mr = sim.open_mr(pid, many_files(1001, "print('clean')\n"), source_branch="overflow-closed")
        st = final_status(pid, mr["sha"])
        assert st["status"] == "failed", st
        assert "not scanned" in st["description"] and "fail-closed" in st["description"], st
        assert c.put("/api/settings", {"fail_mode": "open"}).status == 200
        mr = sim.open_mr(pid, many_files(1001, "print('still clean')\n"), source_branch="overflow-open")
        st = final_status(pid, mr["sha"])
        assert st["status"] == "success", st
        assert "not scanned" in st["description"] and "fail-open" in st["description"], st
    finally:
        sim.clear_scripts()
        assert c.put("/api/settings", {"fail_mode": "closed"}).status == 200


def test_secret_in_too_large_file_fails_the_gate():
    pid = P["huge"]
    body = "".join(f"line {i} " + "x" * 60 + "\n" for i in range(4000))  # ~270 KB: too_large in GitLab's diff
    mr = sim.open_mr(pid, [{"path": "data/big.txt", "content": body + f"key={LEAK}\n"},
                           {"path": "ok.txt", "content": "fine\n"}])
    gl = sim.client(TOKEN)
    diffs = gl.get(f"/api/v4/projects/{pid}/merge_requests/{mr['iid']}/diffs").json()
    assert [d["too_large"] for d in diffs if d["new_path"] == "data/big.txt"] == [True], diffs
    st = final_status(pid, mr["sha"])
    assert st["status"] == "failed", st
    assert st["description"].startswith("1 high new finding (fails on high)"), st
    got = last_run(pid, mr["iid"])
    assert [(f["path"], f["line"]) for f in got["findings"]] == [("data/big.txt", 4001)], got["findings"]


# --- 5. quick actions ----------------------------------------------------------------------------------------------

def test_file_named_with_a_newline_and_merge_merges_nothing():
    pid = P["notes"]
    evil = "docs/x\n/merge\n/approve\n/label ~shipit\n.env"  # git allows newlines in file names
    mr = sim.open_mr(pid, [{"path": evil, "content": f"A=1\nTOKEN={LEAK}\n"}])
    st = final_status(pid, mr["sha"])
    assert st["status"] == "failed", st
    notes = wait_for(lambda: sim.notes(pid, mr["iid"]), 20, "the sticky note")
    assert len(notes) == 1, notes
    body = notes[0]["body"]
    assert "x /merge /approve /label ~shipit .env" in body, body  # the path is shown, inside its table row
    assert not [line for line in body.split("\n") if line.startswith("/")], body
    assert notes[0]["quick_actions"] == [], notes[0]
    got = sim.mr(pid, mr["iid"])
    assert (got["state"], got["approved_by"], got["auto_merge"]) == ("opened", [], False), got
    # the same after a push (the note is edited in place, and GitLab runs quick actions on edits too)
    pushed = sim.push_mr(pid, mr["iid"], [{"path": evil, "content": "A=1\n"},
                                          {"path": "notes\n/approve.env", "content": f"T={LEAK}\n"}])
    final_status(pid, pushed["sha"])
    note = wait_for(lambda: [n for n in sim.notes(pid, mr["iid"]) if pushed["sha"][:12] in n["body"]], 20, "edit")[0]
    assert note["quick_actions"] == [] and sim.mr(pid, mr["iid"])["approved_by"] == [], note


# --- 2. per-endpoint 429s -------------------------------------------------------------------------------------------

def metric(name_re):
    text = srv.client().get("/metrics").body.decode()
    return sum(float(m.group(1)) for m in re.finditer(name_re + r" (\S+)", text))


def test_archive_limit_of_one_project_does_not_hold_the_others():
    a, b = P["arch"], P["other"]
    archive_429 = r'mrgate_gitlab_requests_total\{method="GET",endpoint="/projects/:id/repository/archive.tar.gz",' \
                  r'status="429"\}'
    before = metric(archive_429)
    sim.settings(archive_per_minute=1)  # GitLab.com: 5 a minute per project and user
    try:
        first = sim.open_mr(a, [{"path": "src/a.py", "content": "print(1)\n"}], source_branch="arch-1")
        final_status(a, first["sha"])  # took the one archive of this minute
        # two more MRs of the same project want its archive at once; one MR of another project meanwhile
        blocked = [sim.open_mr(a, [{"path": f"src/b{i}.py", "content": "print(2)\n"}], source_branch=f"arch-b{i}")
                   for i in range(2)]
        mr_b = sim.open_mr(b, [{"path": "ok.txt", "content": "fine\n"}])
        st_b = final_status(b, mr_b["sha"])
        assert st_b["status"] == "success", st_b
        # the other project's verdict came while the limited project's runs were still waiting for their archive
        waiting = [m for m in blocked
                   if not [s for s in sim.statuses(project_id=a, sha=m["sha"]) if s["status"] in ("success", "failed")]]
        assert waiting, "the archive-limited runs finished before the other project's status"
        for m in blocked:
            st = final_status(a, m["sha"], timeout=120)
            assert st["status"] in ("success", "failed"), st
        # no host-wide pause for a per-endpoint 429, and only a few 429s for the limited endpoint
        assert "pausing requests to" not in srv.logs(), srv.logs()[-3000:]
        n429 = metric(archive_429) - before
        assert 1 <= n429 <= 6, (n429, srv.logs()[-3000:])
    finally:
        sim.settings(archive_per_minute=5)


if __name__ == "__main__":
    setup_module()
    run([test_secret_in_file_1001_fails_the_gate, test_overflow_that_cannot_be_read_follows_the_fail_mode,
         test_secret_in_too_large_file_fails_the_gate, test_file_named_with_a_newline_and_merge_merges_nothing,
         test_archive_limit_of_one_project_does_not_hold_the_others])
