"""Bypassing a failed gate (issue 16, DESIGN.md §1.7): an editor gives a reason and GitLab shows `success` named
mrgate on the MR's head commit, "bypassed by NAME: reason"; the run's verdict is `bypassed`, with who, why and when,
and the audit log has it. A viewer is refused; a passed, unfinished, superseded or already bypassed run is a 409
that says why; a bad reason is a 400; nothing changes on GitLab or in the run for a refused request. A newer push is
gated normally again."""
import functools
import re
import threading

import flows
from harness import Mrgate, run
from sim import Sim

TOKEN = "glpat-bypassTestTokenAcme01"
LEAK = "glpat-Xk9Pq2mZr7Lw4Tb8Nc3V"  # a GitLab token shape the secrets scanner catches

sim = Sim("gate_bypass")
sim.add_group("acme", tier="premium")
sim.add_token(TOKEN, scopes=["api"], access={"acme": 50}, username="gatebot", bot=True)
PID = sim.add_project("acme", "app", files=[{"path": "README.md", "content": "# app\n"}])["id"]
srv = Mrgate("gate_bypass", env={"MRGATE_GATE_WORKERS": "2"})
c = srv.login()
HOOK_URL = srv.base + "/hooks/gitlab"
statuses = functools.partial(flows.statuses, sim)
final_status = functools.partial(flows.final_status, sim, logs=srv)


def setup():
    flows.connect_and_sync(c, sim, "acme", TOKEN, timeout=30, logs=srv)
    r = c.put(f"/api/repos/{PID}/config", {"enabled": True, "fail_on": "high", "scans": ["secrets"],
                                           "comment": "off"})
    assert r.status == 200, r.body
    flows.wait_hook(sim.client(TOKEN), PID, HOOK_URL, logs=srv)
    assert c.post("/api/users", {"username": "vera", "password": "viewer-password-1", "role": "viewer"}).status == 201


def newest_run(iid):
    def done():
        items = c.get(f"/api/gates?repo={PID}&mr={iid}").json()["items"]
        return items[0] if items and items[0]["state"] == "done" else None
    return srv.wait_for(done, 30, f"the newest run of !{iid} recorded done")


def failed_mr(path):
    mr = sim.open_mr(PID, [{"path": path, "content": f"token = '{LEAK}'\n"}], wait=True)
    assert final_status(PID, mr["sha"])["status"] == "failed"
    return mr, newest_run(mr["iid"])


def test_an_editor_bypasses_a_failed_gate():
    mr, gate = failed_mr("leak1.py")
    assert gate["verdict"] == "failed" and gate["bypass"] is None, gate
    reason = "test fixture, the token was never valid"
    r = c.post(f"/api/gates/{gate['id']}/bypass", {"reason": reason})
    assert r.status == 200, r.body
    body = r.json()
    assert body["verdict"] == "bypassed", body
    assert body["bypass"]["by"] == "admin" and body["bypass"]["reason"] == reason and body["bypass"]["at"], body
    for t in (body["bypass"]["at"], body["created_at"], body["finished_at"]):  # the API's one time format
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", t), body
    # what GitLab shows on the head commit: success, named mrgate, who and why, linking the report
    last = statuses(PID, mr["sha"])[-1]
    assert last["status"] == "success", last
    assert last["description"] == f"bypassed by admin: {reason}", last
    assert last["target_url"].endswith(f"/#/gates/{gate['id']}"), last
    # the record: the run, the list filter and the audit log
    assert c.get(f"/api/gates/{gate['id']}").json()["verdict"] == "bypassed"
    assert [g["id"] for g in c.get(f"/api/gates?repo={PID}&verdict=bypassed").json()["items"]] == [gate["id"]]
    audit = [a for a in c.get("/api/audit?action=gate.bypass").json()["items"]]
    assert audit and audit[0]["actor"] == "admin", audit
    assert audit[0]["after"]["reason"] == reason, audit
    # once is enough: a second bypass is refused and posts nothing
    n = len(statuses(PID, mr["sha"]))
    r = c.post(f"/api/gates/{gate['id']}/bypass", {"reason": "again"})
    assert r.status == 409 and "bypassed already" in r.json()["message"], r.body
    assert len(statuses(PID, mr["sha"])) == n
    assert audit[0]["target"] == f"gate run {gate['id']} (acme/app !{mr['iid']})", audit
    # the bypass holds for this head until a new push: reopening the MR gates the same head again, still passed
    sim.close_mr(PID, mr["iid"], wait=True)
    sim.reopen_mr(PID, mr["iid"], wait=True)
    again = srv.wait_for(lambda: (lambda rs: rs[0] if rs and rs[0]["id"] != gate["id"] and rs[0]["state"] == "done"
                                  else None)(c.get(f"/api/gates?repo={PID}&mr={mr['iid']}").json()["items"]), 30,
                         "the run of the reopened MR")
    assert again["head_sha"] == mr["sha"] and again["verdict"] == "bypassed", again
    assert statuses(PID, mr["sha"])[-1]["status"] == "success", statuses(PID, mr["sha"])[-1]
    assert statuses(PID, mr["sha"])[-1]["description"] == f"bypassed by admin: {reason}"
    # a newer push is gated normally: the new head fails again, and the old run can no longer be bypassed
    pushed = sim.push_mr(PID, mr["iid"], [{"path": "leak1b.py", "content": f"t = '{LEAK}'\n"}], wait=True)
    assert final_status(PID, pushed["sha"])["status"] == "failed"
    newer = newest_run(mr["iid"])
    assert newer["id"] != gate["id"] and newer["verdict"] == "failed", newer
    # the old run says which run is newer (the report links it instead of offering a bypass that would be refused)
    assert c.get(f"/api/gates/{gate['id']}").json()["newer_run_id"] == newer["id"]
    assert newer["newer_run_id"] is None, newer
    r = c.post(f"/api/gates/{again['id']}/bypass", {"reason": "the old head"})
    assert r.status == 409 and "bypassed already" in r.json()["message"], r.body


def test_refusals_change_nothing():
    mr, gate = failed_mr("leak2.py")
    n = len(statuses(PID, mr["sha"]))
    vera = srv.login("vera", "viewer-password-1")
    r = vera.post(f"/api/gates/{gate['id']}/bypass", {"reason": "I am only a viewer"})
    assert r.status == 403 and "editor" in r.json()["message"], r.body
    for body, why in [({}, "required"), ({"reason": ""}, "empty"), ({"reason": "   "}, "empty"),
                      ({"reason": "\u00a0\u200b"}, "U+200B"), ({"reason": "\u00a0 \u3000"}, "empty"),
                      ({"reason": "a\u202eb"}, "U+202E"), ({"reason": "one\u2028two"}, "U+2028"),
                      ({"reason": "c1\u0085"}, "U+0085"),
                      ({"reason": "two\nlines"}, "one line"), ({"reason": "x" * 201}, "at most 200"),
                      ({"reason": 7}, "must be a string"), ({"reason": "ok", "force": True}, "unknown field")]:
        r = c.post(f"/api/gates/{gate['id']}/bypass", body)
        assert r.status == 400 and why in r.json()["message"], (body, r.status, r.body)
    assert c.post("/api/gates/999999/bypass", {"reason": "x"}).status == 404
    assert c.post("/api/gates/abc/bypass", {"reason": "x"}).status == 400
    # a passed run: nothing to bypass
    ok = sim.open_mr(PID, [{"path": "clean.py", "content": "print('hello')\n"}], wait=True)
    assert final_status(PID, ok["sha"])["status"] == "success"
    passed = newest_run(ok["iid"])
    r = c.post(f"/api/gates/{passed['id']}/bypass", {"reason": "x"})
    assert r.status == 409 and "only a failed gate" in r.json()["message"], r.body
    # nothing happened to the failed run or on GitLab
    assert len(statuses(PID, mr["sha"])) == n and statuses(PID, mr["sha"])[-1]["status"] == "failed"
    assert c.get(f"/api/gates/{gate['id']}").json()["verdict"] == "failed"
    # GitLab refuses the status: 502 (not mrgate's own 403), nothing recorded
    sim.script("POST", f"/api/v4/projects/{PID}/statuses/{mr['sha']}",
               [{"status": 403, "body": {"message": "403 Forbidden"}}] * 10)
    r = c.post(f"/api/gates/{gate['id']}/bypass", {"reason": "GitLab says no"})
    sim.clear_scripts()
    assert r.status == 502 and "403 Forbidden" in r.json()["message"], r.body
    assert c.get(f"/api/gates/{gate['id']}").json()["verdict"] == "failed"
    # a long reason (multi-byte) is cut to GitLab's 255 bytes at a character boundary, the run keeps it whole
    reason = "é" * 200
    r = c.post(f"/api/gates/{gate['id']}/bypass", {"reason": reason})
    assert r.status == 200, r.body
    desc = statuses(PID, mr["sha"])[-1]["description"]
    assert len(desc.encode()) <= 255 and desc.startswith("bypassed by admin: éé"), desc
    assert r.json()["bypass"]["reason"] == reason


def test_the_sticky_note_says_bypassed():
    """The note the run wrote is edited in place: GitLab's status and the note agree after a bypass."""
    r = c.put(f"/api/repos/{PID}/config", {"enabled": True, "fail_on": "high", "scans": ["secrets"],
                                           "comment": "always"})
    assert r.status == 200, r.body
    mr, gate = failed_mr("leak4.py")
    gl = sim.client(TOKEN)

    def note():
        notes = [n for n in gl.get(f"/api/v4/projects/{PID}/merge_requests/{mr['iid']}/notes").json()
                 if n["body"].startswith("<!-- mrgate")]
        assert len(notes) == 1, notes
        return notes[0]["body"]
    srv.wait_for(lambda: "mrgate: failed" in note(), 20, "the failed note")
    # the findings table shows each full fingerprint, and how to ignore one
    [finding] = c.get(f"/api/gates/{gate['id']}").json()["findings"]
    assert "| Fingerprint |" in note() and f"| `{finding['fingerprint']}` |" in note(), note()
    assert "`/mrgate ignore <fingerprint> <reason>`" in note(), note()
    # a reason is user text: in the note it is inline code, no mention, link, image or reference of it live
    reason = "@all please review [runbook](http://evil.example/phish) ![x](http://evil.example/p.png) `x` #1 ~bug"
    assert c.post(f"/api/gates/{gate['id']}/bypass", {"reason": reason}).status == 200
    body = note()
    lines = body.split("\n")
    assert "### :white_check_mark: mrgate: bypassed" in lines, body
    assert f"Bypassed by ` admin `: `` {reason} ``" in lines, body
    assert [ln for ln in lines if "@all" in ln or "evil.example" in ln] == [f"Bypassed by ` admin `: `` {reason} ``"], \
        body
    assert "leak4.py" in body, body  # the findings are still listed
    # a run that passes because its finding is ignored says so in its headline
    r = c.post("/api/ignores", {"fingerprint": finding["fingerprint"], "repo_id": PID, "reason": "a test key"})
    assert r.status == 201, r.body
    pushed = sim.push_mr(PID, mr["iid"], [{"path": "later4.md", "content": "later\n"}], wait=True)
    assert final_status(PID, pushed["sha"])["status"] == "success"
    srv.wait_for(lambda: pushed["sha"][:12] in note(), 20, "the note of the new head")
    assert "### :white_check_mark: mrgate: passed: 1 finding ignored" in note().split("\n"), note()
    assert "` a test key `" in note(), note()


def test_two_bypasses_at_once_post_one_status():
    """Two editors bypass the same run at the same moment: one wins, the other is refused before anything reaches
    GitLab, with a true reason (no push arrived)."""
    mr, gate = failed_mr("leak5.py")
    route = "POST /api/v4/projects/:id/statuses/:sha"
    before = sim.counters()["by_route"].get(route, 0)
    # GitLab takes its time: the first bypass is still waiting on it when the second arrives
    sim.script("POST", f"/api/v4/projects/{PID}/statuses/{mr['sha']}", [{"stall_ms": 1500}] * 2)
    clients = [srv.login(), srv.login()]
    start, answers = threading.Barrier(2), [None, None]

    def bypass(i):
        start.wait()
        answers[i] = clients[i].post(f"/api/gates/{gate['id']}/bypass", {"reason": f"editor {i} says ok"})
    threads = [threading.Thread(target=bypass, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    sim.clear_scripts()
    assert sorted(a.status for a in answers) == [200, 409], [(a.status, a.body) for a in answers]
    [refused] = [a for a in answers if a.status == 409]
    msg = refused.json()["message"]
    assert "being bypassed by another request" in msg or "bypassed already" in msg, msg
    assert "newer run" not in msg, msg
    assert sim.counters()["by_route"].get(route, 0) - before == 1
    assert statuses(PID, mr["sha"])[-1]["status"] == "success"
    got = c.get(f"/api/gates/{gate['id']}").json()
    [winner] = [a for a in answers if a.status == 200]
    assert got["verdict"] == "bypassed" and got["bypass"]["reason"] == winner.json()["bypass"]["reason"], got
    assert len([a for a in c.get("/api/audit?action=gate.bypass").json()["items"]
                if a["target"].startswith(f"gate run {gate['id']} ")]) == 1
    # a refused GitLab call releases the run: it can be bypassed right after
    mr2, gate2 = failed_mr("leak6.py")
    sim.script("POST", f"/api/v4/projects/{PID}/statuses/{mr2['sha']}",
               [{"status": 403, "body": {"message": "403 Forbidden"}}] * 10)
    assert c.post(f"/api/gates/{gate2['id']}/bypass", {"reason": "refused"}).status == 502
    sim.clear_scripts()
    assert c.post(f"/api/gates/{gate2['id']}/bypass", {"reason": "now it works"}).status == 200


def test_only_the_newest_run_can_be_bypassed():
    mr, old = failed_mr("leak3.py")
    pushed = sim.push_mr(PID, mr["iid"], [{"path": "leak3b.py", "content": f"t = '{LEAK}'\n"}], wait=True)
    assert final_status(PID, pushed["sha"])["status"] == "failed"
    newer = newest_run(mr["iid"])
    r = c.post(f"/api/gates/{old['id']}/bypass", {"reason": "the old head"})
    assert r.status == 409 and "newer run of this merge request is its gate now" in r.json()["message"], r.body
    assert c.get(f"/api/gates/{old['id']}").json()["newer_run_id"] == newer["id"]
    assert c.post(f"/api/gates/{newer['id']}/bypass", {"reason": "the new head"}).status == 200


def test_a_repo_no_longer_gated_cannot_be_bypassed():
    """A walk unmanaged a repo (GitLab got "mrgate gate removed for this repository" on its failed MR), then bypassed
    the old run from its report: 200, and a third status and an edited note on a repo mrgate no longer manages."""
    mr, gate = failed_mr("leak6.py")
    assert c.get(f"/api/gates/{gate['id']}").json()["repo_gated"] is True

    def listed():
        return next(g for g in c.get(f"/api/gates?repo={PID}").json()["items"] if g["id"] == gate["id"])
    assert listed()["repo_gated"] is True
    r = c.put(f"/api/repos/{PID}/config", {"unmanaged": True})
    assert r.status == 200, r.body
    flows.wait_job(c, r.json()["apply"]["job_id"])
    removed = final_status(PID, mr["sha"])
    assert removed["status"] == "success" and "gate removed" in removed["description"], removed
    n = len(statuses(PID, mr["sha"]))
    r = c.post(f"/api/gates/{gate['id']}/bypass", {"reason": "after unmanage"})
    assert r.status == 409 and "no longer gated" in r.json()["message"], r.body
    assert len(statuses(PID, mr["sha"])) == n
    # the report can say so before anyone tries: the run's JSON tells the repo is no longer gated
    got = c.get(f"/api/gates/{gate['id']}").json()
    assert got["verdict"] == "failed" and got["repo_gated"] is False, got
    # and so does the list of runs (a walk saw "failed" there while GitLab showed "gate removed")
    assert listed()["verdict"] == "failed" and listed()["repo_gated"] is False, listed()


setup()
run([test_an_editor_bypasses_a_failed_gate, test_refusals_change_nothing, test_only_the_newest_run_can_be_bypassed,
     test_two_bypasses_at_once_post_one_status,
     test_the_sticky_note_says_bypassed, test_a_repo_no_longer_gated_cannot_be_bypassed])
