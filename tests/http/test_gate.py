"""The merge-request gate end to end (issue 6): the simulator delivers real webhooks to a running mrgate, which
posts commit statuses and a sticky note back; external SARIF scanners, fail modes, timeouts, dedupe, superseding,
a burst of 200 deliveries, and GET /api/gates."""
import functools
import json
import os
import time
import urllib.request

import flows
import harness
from harness import Mrgate, run
from sim import Sim

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
SCANNER = os.path.join(FIXTURES, "sarif_scanner.py")
TOKEN = "glpat-gateTestTokenAcme001"
LEAK = "glpat-Xk9Pq2mZr7Lw4Tb8Nc3V"  # a GitLab token shape the secrets scanner must catch
DIFFS = "/api/v4/projects/:id/merge_requests/:merge_request_iid/diffs"

sim = Sim("gate")
sim.add_group("acme", tier="premium")
sim.add_token(TOKEN, scopes=["api"], access={"acme": 50}, username="gatebot", bot=True)
P = {}
for name in ("app", "ignored", "never", "sast", "iac", "slow", "burst"):
    files = [{"path": "README.md", "content": "# %s\n" % name}]
    if name == "app":
        files.append({"path": "config/settings.py", "content": "DEBUG = False\ntoken = \"%s\"\n" % LEAK})
    if name == "sast":
        files.append({"path": "src/app.py", "content": "x = eval(old_input)\nprint(x)\n"})
    P[name] = sim.add_project("acme", name, files=files)["id"]

SCAN_TMP = harness.workdir("gate-tmp")
srv = Mrgate("gate", env={
    "TMPDIR": SCAN_TMP,
    "MRGATE_GATE_WORKERS": "4",
    "MRGATE_GATE_TIMEOUT": "8",
    "MRGATE_SCANNER_SAST": f"/usr/bin/python3 {SCANNER}",
    "MRGATE_SCANNER_MALWARE": "sleep 30 #",  # the tree path is appended: comment it out
    "MRGATE_GITLAB_RETRIES": "2",
    "MRGATE_GITLAB_BACKOFF_MS": "20",
    "MRGATE_LOG_LEVEL": "info",
})
c = srv.login()
HOOK_URL = srv.base + "/hooks/gitlab"


wait_for = srv.wait_for
statuses = functools.partial(flows.statuses, sim)  # mrgate's statuses on (pid, sha), oldest first
final_status = functools.partial(flows.final_status, sim, logs=srv)
db = srv.sql


def setup_module():
    flows.connect_and_sync(c, sim, "acme", TOKEN, timeout=30, logs=srv)
    secret = srv.cli("webhook-secret")
    assert secret.returncode == 0, secret.stderr
    global SECRET
    SECRET = secret.stdout.strip()
    assert len(SECRET) >= 32
    base = {"enabled": True, "fail_on": "high", "scans": ["secrets"], "comment": "on_findings"}
    cfgs = {"app": base, "burst": dict(base, comment="off"),
            "ignored": dict(base, ignore_paths=["fixtures/**", "*.pem"]),
            "never": dict(base, fail_on="never", comment="always"),
            "sast": dict(base, scans=["secrets", "sast"]),
            "iac": dict(base, scans=["secrets", "iac"]),
            "slow": dict(base, scans=["secrets", "malware"])}
    for name, cfg in cfgs.items():
        # "iac" has no scanner here on purpose (the verdict's note says so): confirmed as the API asks
        r = c.put(f"/api/repos/{P[name]}/config", dict(cfg, confirm_no_scanner=True))
        assert r.status == 200, (name, r.status, r.body)
    gl = sim.client(TOKEN)

    def ours(pid):
        return [h for h in gl.get(f"/api/v4/projects/{pid}/hooks").json() if h["url"] == HOOK_URL]
    # enabling the gate makes the apply engine add our hook; without one, add it by hand as an admin would
    deadline = time.time() + 15
    while time.time() < deadline and not all(ours(P[n]) for n in cfgs):
        time.sleep(0.2)
    for name in cfgs:
        hooks = ours(P[name])
        assert len(hooks) <= 1, hooks
        if not hooks:
            r = gl.post(f"/api/v4/projects/{P[name]}/hooks",
                        {"url": HOOK_URL, "token": SECRET, "merge_requests_events": True, "push_events": False})
            assert r.status == 201, r.body


def runs(pid, iid=None):
    q = f"/api/gates?repo={pid}" + (f"&mr={iid}" if iid else "")
    r = c.get(q)
    assert r.status == 200, r.body
    return r.json()["items"]


def done_runs(pid, iid):
    """The MR's runs, newest first, once the newest is recorded done: a run posts its final status on GitLab, then
    records itself done, so a test that saw the final status may still read the run as running for a moment."""
    return wait_for(lambda: (lambda rs: rs if rs and rs[0]["state"] == "done" else None)(runs(pid, iid)), 10,
                    f"the newest run of !{iid} recorded done")


# --- the receiver ------------------------------------------------------------------------------------------------

def test_wrong_or_missing_token_is_401_and_nothing_stored():
    before = db("SELECT count(*) FROM webhook_events")[0][0]
    body = json.dumps({"object_kind": "merge_request"}).encode()
    for headers in ({"X-Gitlab-Token": "wrong"}, {}, {"X-Gitlab-Token": SECRET + "x"}):
        h = {"Content-Type": "application/json", "X-Gitlab-Event": "Merge Request Hook", "Idempotency-Key": "k1"}
        h.update(headers)
        r = srv.client().post("/hooks/gitlab", raw=body, headers=h)
        assert r.status == 401, (headers, r.status, r.body)
        assert r.json()["error"] == "unauthorized"
    assert db("SELECT count(*) FROM webhook_events")[0][0] == before
    m = srv.client().get("/metrics").body.decode()
    assert 'mrgate_webhook_events_total{event="merge_request",outcome="unauthorized"} 3' in m, m[-2000:]


def test_events_not_gated_get_2xx_and_are_recorded():
    h = {"Content-Type": "application/json", "X-Gitlab-Token": SECRET}
    r = srv.client().post("/hooks/gitlab", raw=b'{"object_kind":"push"}',
                          headers=dict(h, **{"X-Gitlab-Event": "Push Hook", "Idempotency-Key": "push-1"}))
    assert r.status == 200 and r.json()["outcome"] == "ignored", r.body
    r = srv.client().post("/hooks/gitlab", raw=b'not json',
                          headers=dict(h, **{"X-Gitlab-Event": "Merge Request Hook", "Idempotency-Key": "junk-1"}))
    assert r.status == 200 and r.json()["outcome"] == "ignored", r.body
    # one with a key twice says so (a walk read only "not a JSON object")
    r = srv.client().post("/hooks/gitlab", raw=b'{"object_kind":"merge_request","object_kind":"push"}',
                          headers=dict(h, **{"X-Gitlab-Event": "Merge Request Hook", "Idempotency-Key": "dup-1"}))
    assert r.status == 200 and r.json()["outcome"] == "ignored", r.body
    # a body PostgreSQL refuses as jsonb (lone surrogate) is still recorded, without its payload
    r = srv.client().post("/hooks/gitlab", raw=b'{"object_kind":"note","x":"\\ud800"}',
                          headers=dict(h, **{"X-Gitlab-Event": "Note Hook", "Idempotency-Key": "odd-1"}))
    assert r.status == 200 and r.json()["outcome"] == "ignored", r.body
    rows = db("SELECT event_type, ignored_reason, payload IS NULL FROM webhook_events"
              " WHERE idempotency_key IN ('push-1','junk-1','dup-1','odd-1') ORDER BY id")
    assert rows == [["Push Hook", "push events are not gated", "f"],
                    ["Merge Request Hook", "body is not a JSON object: invalid JSON at byte 0 (\"n\"): a word JSON "
                     "does not have (the words are true, false and null; text needs double quotes)", "t"],
                    ["Merge Request Hook", "body is not a JSON object: invalid JSON: an object has the same key "
                     "twice, so what it means is ambiguous", "t"],
                    ["Note Hook", "note event without object_attributes", "t"]], rows
    # an unmanaged (never configured) repo: recorded and ignored
    other = sim.add_project("acme", "unconfigured", files=[{"path": "a", "content": "a\n"}])["id"]
    c.post("/api/sync")
    wait_for(lambda: c.get("/api/sync").json().get("state") == "done", what="sync")
    gl = sim.client(TOKEN)
    gl.post(f"/api/v4/projects/{other}/hooks", {"url": HOOK_URL, "token": SECRET, "merge_requests_events": True})
    mr = sim.open_mr(other, [{"path": "k.py", "content": f"t = '{LEAK}'\n"}], wait=True)
    d = sim.delivery(mr["deliveries"][0])
    assert d["response_status"] == 200, d
    rows = db(f"SELECT ignored_reason, run_id FROM webhook_events WHERE project_id = {other}")
    assert rows == [["gate is not enabled for this repo", ""]], rows
    assert statuses(other, mr["sha"]) == []


# --- verdicts -----------------------------------------------------------------------------------------------------

def test_leaked_token_fails_then_fix_passes_with_one_sticky_note():
    pid = P["app"]
    sim.script("GET", DIFFS, [{"stall_ms": 1500}])  # hold the scan so that `pending` can be seen
    mr = sim.open_mr(pid, [{"path": "deploy/ci.env", "content": f"A=1\nGITLAB_TOKEN={LEAK}\n"}])
    sha1 = mr["sha"]
    pending = wait_for(lambda: statuses(pid, sha1), 10, "pending status")
    assert pending[0]["status"] == "pending", pending
    st = final_status(pid, sha1)
    assert st["status"] == "failed", st
    assert st["description"] == "1 high new finding (fails on high)", st
    assert st["ref"] == mr.get("source_branch", st["ref"])
    run1 = done_runs(pid, mr["iid"])[0]
    assert st["target_url"] == f"{srv.base}/#/gates/{run1['id']}", st
    assert (run1["verdict"], run1["state"], run1["status_posted"]) == ("failed", "done", "failed"), run1
    notes = wait_for(lambda: sim.notes(pid, mr["iid"]), 10, "note")
    assert len(notes) == 1, notes
    body = notes[0]["body"]
    assert "gitlab-pat" in body and "deploy/ci.env:2" in body and LEAK not in body, body
    # the fix: a push removing the token
    pushed = sim.push_mr(pid, mr["iid"], [{"path": "deploy/ci.env", "content": "A=1\nGITLAB_TOKEN=${GITLAB_TOKEN}\n"}])
    st2 = final_status(pid, pushed["sha"])
    assert st2["status"] == "success" and st2["description"] == "no new findings (fails on high)", st2

    def edited():
        n = sim.notes(pid, mr["iid"])
        return n if len(n) == 1 and "No new findings" in n[0]["body"] else None
    notes2 = wait_for(edited, 10, "the same note edited")
    assert notes2[0]["id"] == notes[0]["id"]
    # the existing secret in config/settings.py (not added by the MR) never counted
    got = c.get(f"/api/gates/{run1['id']}").json()
    assert [(f["rule_id"], f["path"], f["line"], f["severity"]) for f in got["findings"]] == [
        ("gitlab-pat", "deploy/ci.env", 2, "high")], got
    assert LEAK not in json.dumps(got)


def test_secret_only_in_removed_lines_passes():
    pid = P["app"]
    mr = sim.open_mr(pid, [{"path": "config/settings.py", "content": "DEBUG = False\n"}])
    st = final_status(pid, mr["sha"])
    assert st["status"] == "success", st


def test_conflict_from_gitlab_is_retried():
    pid = P["app"]
    busy = {"status": 409, "body": {"message": "Another update to this commit status is in progress"}}
    sim.script("POST", "/api/v4/projects/:id/statuses/:sha", [busy, busy])
    mr = sim.open_mr(pid, [{"path": "docs/readme.md", "content": "hello\n"}])
    st = final_status(pid, mr["sha"])
    assert st["status"] == "success", st
    item = done_runs(pid, mr["iid"])[0]
    assert (item["state"], item["attempts"]) == ("done", 1), item


def test_secret_in_ignored_path_passes():
    pid = P["ignored"]
    mr = sim.open_mr(pid, [{"path": "fixtures/tokens.txt", "content": f"{LEAK}\n"},
                           {"path": "keys/test.pem", "content": f"t={LEAK}\n"},
                           {"path": "src/ok.py", "content": "print('hi')\n"}])
    st = final_status(pid, mr["sha"])
    # the two files in ignore_paths are not scanned, and the status says so
    assert st["status"] == "success", st
    assert st["description"] == "no new findings (fails on high); 2 changed files not scanned (ignore_paths)", st
    assert sim.notes(pid, mr["iid"]) == []  # on_findings and nothing found: no note


def test_fail_on_never_always_succeeds_with_counts():
    pid = P["never"]
    mr = sim.open_mr(pid, [{"path": "a.env", "content": f"T={LEAK}\n"}])
    st = final_status(pid, mr["sha"])
    assert st["status"] == "success", st
    assert st["description"] == "1 high new finding (report only)", st
    assert len(wait_for(lambda: sim.notes(pid, mr["iid"]), 10, "note (comment always)")) == 1


def test_sarif_scanner_counts_only_added_lines():
    pid = P["sast"]
    mr = sim.open_mr(pid, [{"path": "src/app.py", "content": "x = eval(old_input)\nprint(x)\ny = eval(new_input)\n"}])
    st = final_status(pid, mr["sha"])
    assert st["status"] == "failed" and st["description"] == "1 high new finding (fails on high)", st
    run1 = done_runs(pid, mr["iid"])[0]
    got = c.get(f"/api/gates/{run1['id']}").json()
    assert [(f["scan_type"], f["rule_id"], f["path"], f["line"]) for f in got["findings"]] == [
        ("sast", "test.eval", "src/app.py", 3)], got
    assert "y = eval(new_input)" in got["findings"][0]["excerpt"]
    assert TOKEN not in srv.logs()
    # the head tree is removed right after the scan (the status may be posted a moment before)
    wait_for(lambda: os.listdir(SCAN_TMP) == [], 5, "temporary tree removed")
    # no scanner output on a removed-only change
    mr2 = sim.open_mr(pid, [{"path": "src/app.py", "content": "print(1)\n"}])
    assert final_status(pid, mr2["sha"])["status"] == "success"
    # a crashing scanner is a problem: fail-closed
    mr3 = sim.open_mr(pid, [{"path": "MRGATE_SCANNER_CRASH", "content": "boom\n"}])
    st3 = final_status(pid, mr3["sha"])
    assert st3["status"] == "failed" and "sast: the scanner failed (exit 3)" in st3["description"], st3


def test_enabled_type_without_scanner_follows_fail_mode():
    pid = P["iac"]
    mr = sim.open_mr(pid, [{"path": "main.tf", "content": "resource {}\n"}])
    st = final_status(pid, mr["sha"])
    assert st["status"] == "failed", st
    assert st["description"] == "no new findings (fails on high); iac: no scanner configured; fail-closed", st
    r = c.put("/api/settings", {"fail_mode": "open"})
    assert r.status == 200, r.body
    try:
        pushed = sim.push_mr(pid, mr["iid"], [{"path": "main.tf", "content": "resource { a = 1 }\n"}])
        st2 = final_status(pid, pushed["sha"])
        assert st2["status"] == "success", st2
        assert st2["description"] == "no new findings (fails on high); iac: no scanner configured; fail-open", st2
        item = done_runs(pid, mr["iid"])[0]
        assert item["notes"] == ["iac: no scanner configured"], item
    finally:
        assert c.put("/api/settings", {"fail_mode": "closed"}).status == 200


def test_timeout_fails_closed():
    pid = P["slow"]
    mr = sim.open_mr(pid, [{"path": "bin/tool", "content": "echo hi\n"}])
    st = final_status(pid, mr["sha"], timeout=40)
    assert st["status"] == "failed", st
    assert st["description"] == "no new findings (fails on high); timed out after 8 s; fail-closed", st
    item = done_runs(pid, mr["iid"])[0]
    assert item["verdict"] == "timeout", item
    # the killed scanner's temporary tree is removed
    wait_for(lambda: os.listdir(SCAN_TMP) == [], 5, "temporary trees removed")


# --- delivery semantics ------------------------------------------------------------------------------------------

def test_same_delivery_twice_is_one_run():
    pid = P["app"]
    mr = sim.open_mr(pid, [{"path": "docs/x.md", "content": "hello\n"}], wait=True)
    final_status(pid, mr["sha"])
    again = sim.redeliver(mr["deliveries"][0], wait=True)
    d = sim.delivery(again["id"])
    assert d["response_status"] == 200, d
    time.sleep(0.3)
    assert len(runs(pid, mr["iid"])) == 1
    rows = db(f"SELECT count(*) FROM webhook_events WHERE project_id = {pid} AND mr_iid = {mr['iid']}")
    assert rows == [["1"]], rows


def test_newer_head_supersedes_older_run():
    pid = P["app"]
    sim.script("GET", DIFFS, [{"stall_ms": 2500}])
    mr = sim.open_mr(pid, [{"path": "a.env", "content": f"T={LEAK}\n"}])
    wait_for(lambda: statuses(pid, mr["sha"]), 10, "pending of the first head")
    pushed = sim.push_mr(pid, mr["iid"], [{"path": "a.env", "content": "T=${T}\n"}])
    st = final_status(pid, pushed["sha"])
    assert st["status"] == "success", st
    # the first run wakes up from its stall: never a stale verdict on the head the MR left, and its pending status
    # does not stay pending forever (a walk found the old head's external pipeline "pending" in the pipelines list)
    old = wait_for(lambda: (lambda st: st if st and st[-1]["status"] != "pending" else None)(statuses(pid, mr["sha"])),
                   10, "the old head's pending status canceled")
    assert [s["status"] for s in old] in (["canceled"], ["pending", "canceled"]), old
    assert old[-1]["description"].startswith("superseded by a newer push"), old
    items = {i["head_sha"]: i for i in runs(pid, mr["iid"])}
    assert items[mr["sha"]]["state"] == "superseded", items[mr["sha"]]
    assert items[pushed["sha"]]["verdict"] == "passed"


def test_burst_of_200_deliveries_all_acknowledged_and_gated():
    pid = P["burst"]
    iids = []
    for i in range(200):
        leak = f"K={LEAK}\n" if i % 10 == 0 else f"v = {i}\n"
        mr = sim.open_mr(pid, [{"path": f"f{i}.txt", "content": leak}], source_branch=f"burst-{i}")
        iids.append((mr["iid"], mr["sha"], i % 10 == 0))

    def all_final():
        got = {s["sha"]: s["status"] for s in sim.statuses(project_id=pid) if s["name"] == "mrgate"}
        done = [sha for _, sha, _ in iids if got.get(sha) in ("success", "failed")]
        return got if len(done) == 200 else None
    got = wait_for(all_final, 150, "200 final statuses", interval=0.5)
    # every delivery, those that mrgate's own status posts set off included, has had its answer by now
    sim.wait_deliveries(timeout_ms=60000)
    ds = [d for d in sim.deliveries() if d.get("project_id", pid) == pid]
    for iid, sha, leaky in iids:
        assert got[sha] == ("failed" if leaky else "success"), (iid, got[sha])
    rows = db(f"SELECT count(*), count(*) FILTER (WHERE state = 'done') FROM gate_runs WHERE project_id = {pid}")
    assert rows == [["200", "200"]], rows
    bad = [d for d in ds if d.get("response_status") not in (200, 202)]
    assert not bad, bad[:3]
    m = srv.client().get("/metrics").body.decode()
    assert "mrgate_gate_verdicts_total{verdict=\"failed\"}" in m and "mrgate_gate_duration_seconds_count" in m


# --- the API -------------------------------------------------------------------------------------------------------

def test_gates_api_filters_and_detail():
    pid = P["app"]
    failed = c.get(f"/api/gates?repo={pid}&verdict=failed").json()["items"]
    assert failed and all(i["verdict"] == "failed" and i["repo_id"] == pid for i in failed), failed
    assert failed[0]["path_with_namespace"] == "acme/app"
    page = c.get("/api/gates?limit=2").json()
    assert len(page["items"]) == 2 and page["next_cursor"], page
    nxt = c.get(f"/api/gates?limit=2&cursor={page['next_cursor']}").json()
    assert nxt["items"][0]["id"] < page["items"][1]["id"] + 1 and nxt["items"][0]["id"] != page["items"][1]["id"]
    assert c.get("/api/gates?verdict=maybe").status == 400
    assert c.get("/api/gates?repo=abc").status == 400
    assert c.get("/api/gates/999999").status == 404
    assert srv.client().get("/api/gates").status == 401
    one = c.get(f"/api/gates/{failed[0]['id']}").json()
    assert one["counts"]["high"] >= 1 and one["findings"], one


if __name__ == "__main__":
    setup_module()
    run([test_wrong_or_missing_token_is_401_and_nothing_stored,
         test_events_not_gated_get_2xx_and_are_recorded,
         test_leaked_token_fails_then_fix_passes_with_one_sticky_note,
         test_secret_only_in_removed_lines_passes,
         test_conflict_from_gitlab_is_retried,
         test_secret_in_ignored_path_passes,
         test_fail_on_never_always_succeeds_with_counts,
         test_sarif_scanner_counts_only_added_lines,
         test_enabled_type_without_scanner_follows_fail_mode,
         test_timeout_fails_closed,
         test_same_delivery_twice_is_one_run,
         test_newer_head_supersedes_older_run,
         test_burst_of_200_deliveries_all_acknowledged_and_gated,
         test_gates_api_filters_and_detail])
