"""Ignoring a finding (issue 16, DESIGN.md §1.7): an editor ignores one finding by its fingerprint for a repo, or
every finding of a rule for a group and its subgroups, with a reason and an optional expiry. The next push passes
with the finding listed as ignored (in the report, the counts and the sticky note) and not counted; once the ignore
has expired the finding fails the gate again; deleting it does the same. Bad input is a 400 naming the field; a
viewer may read but not ignore; every change is audited."""
import functools
import re

import flows
from harness import Mrgate, run
from sim import Sim

TOKEN = "glpat-ignoreTestTokenAcme01"
LEAK = "glpat-Xk9Pq2mZr7Lw4Tb8Nc3V"  # a GitLab token shape the secrets scanner catches

sim = Sim("ignores")
sim.add_group("acme", tier="premium")
sim.add_group("acme/team", tier="premium")
sim.add_token(TOKEN, scopes=["api"], access={"acme": 50}, username="gatebot", bot=True)
APP = sim.add_project("acme", "app", files=[{"path": "README.md", "content": "# app\n"}])["id"]
SUB = sim.add_project("acme/team", "svc", files=[{"path": "README.md", "content": "# svc\n"}])["id"]
srv = Mrgate("ignores", env={"MRGATE_GATE_WORKERS": "2"})
c = srv.login()
HOOK_URL = srv.base + "/hooks/gitlab"
final_status = functools.partial(flows.final_status, sim, logs=srv)


def setup():
    flows.connect_and_sync(c, sim, "acme", TOKEN, timeout=30, logs=srv)
    for pid in (APP, SUB):
        r = c.put(f"/api/repos/{pid}/config", {"enabled": True, "fail_on": "high", "scans": ["secrets"],
                                               "comment": "always"})
        assert r.status == 200, r.body
        flows.wait_hook(sim.client(TOKEN), pid, HOOK_URL, logs=srv)
    assert c.post("/api/users", {"username": "vic", "password": "viewer-password-1", "role": "viewer"}).status == 201


def newest_run(pid, iid, sha):
    def done():
        items = c.get(f"/api/gates?repo={pid}&mr={iid}").json()["items"]
        return items[0] if items and items[0]["state"] == "done" and items[0]["head_sha"] == sha else None
    run_ = srv.wait_for(done, 30, f"the run of {sha[:8]} recorded done")
    return c.get(f"/api/gates/{run_['id']}").json()


def push(pid, iid, n):
    """A new head for MR iid (an unrelated file): the MR still adds the leak, so the finding is the same."""
    pushed = sim.push_mr(pid, iid, [{"path": f"notes{n}.md", "content": f"note {n}\n"}], wait=True)
    return final_status(pid, pushed["sha"])["status"], newest_run(pid, iid, pushed["sha"])


def sticky_note(pid, iid):
    notes = [n for n in sim.client(TOKEN).get(f"/api/v4/projects/{pid}/merge_requests/{iid}/notes").json()
             if n["body"].startswith("<!-- mrgate")]
    assert len(notes) == 1, notes
    return notes[0]["body"]


def test_an_ignored_fingerprint_passes_until_it_expires():
    mr = sim.open_mr(APP, [{"path": "cfg/app.py", "content": f"token = '{LEAK}'\n"}], wait=True)
    assert final_status(APP, mr["sha"])["status"] == "failed"
    first = newest_run(APP, mr["iid"], mr["sha"])
    [finding] = first["findings"]
    assert finding["ignored"] is None, finding
    r = c.post("/api/ignores", {"fingerprint": finding["fingerprint"], "repo_id": APP,
                                "reason": "a revoked token kept as a test fixture", "expires_at": "2999-12-31"})
    assert r.status == 201, r.body
    ign = r.json()
    assert ign["created_by"] == "admin" and ign["expired"] is False and ign["finding"]["path"] == "cfg/app.py", ign
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", ign["created_at"]), ign  # the API's one time format
    # the next push passes: the finding is listed as ignored, with the reason, and not counted
    state, run2 = push(APP, mr["iid"], 1)
    assert state == "success", run2
    [f2] = run2["findings"]
    assert f2["fingerprint"] == finding["fingerprint"] and f2["ignored"] == {
        "id": ign["id"], "reason": "a revoked token kept as a test fixture"}, f2
    assert run2["counts"]["ignored"] == 1 and run2["counts"]["total"] == 0, run2["counts"]
    note = sticky_note(APP, mr["iid"])
    assert "Ignored (1, not counted)" in note and "a revoked token kept as a test fixture" in note, note
    # expired (time passes: the expiry moved into the past) -> the finding counts again
    srv.sql(f"UPDATE finding_ignores SET expires_at = now() - interval '1 minute' WHERE id = {ign['id']}")
    assert c.get(f"/api/ignores?repo={APP}&expired=true").json()["items"][0]["id"] == ign["id"]
    assert c.get(f"/api/ignores?repo={APP}&expired=false").json()["items"] == []
    state, run3 = push(APP, mr["iid"], 2)
    assert state == "failed" and run3["findings"][0]["ignored"] is None, run3
    # deleted, audited
    assert c.delete(f"/api/ignores/{ign['id']}").status == 204
    assert c.delete(f"/api/ignores/{ign['id']}").status == 404
    actions = [a["action"] for a in c.get("/api/audit?action=ignore.").json()["items"]]
    assert "ignore.create" in actions and "ignore.delete" in actions, actions


def test_a_rule_ignored_for_a_group_covers_its_subgroups():
    mr = sim.open_mr(SUB, [{"path": "k.py", "content": f"k = '{LEAK}'\n"}], wait=True)
    assert final_status(SUB, mr["sha"])["status"] == "failed"
    rule = newest_run(SUB, mr["iid"], mr["sha"])["findings"][0]["rule_id"]
    r = c.post("/api/ignores", {"rule_id": rule, "group": "acme", "reason": "the whole group uses fake tokens"})
    assert r.status == 201, r.body
    state, run2 = push(SUB, mr["iid"], 1)
    assert state == "success" and run2["findings"][0]["ignored"]["id"] == r.json()["id"], run2
    assert [i["id"] for i in c.get(f"/api/ignores?group=acme&rule={rule}").json()["items"]] == [r.json()["id"]]
    assert [i["id"] for i in c.get(f"/api/ignores?repo={SUB}").json()["items"]] == [r.json()["id"]]
    assert c.get("/api/ignores?group=other").json()["items"] == []
    assert c.delete(f"/api/ignores/{r.json()['id']}").status == 204


def test_a_group_filter_lists_every_ignore_that_applies_inside_the_group():
    """?group=acme: the group's own ignores, its subgroups', and those of the repos under it (a reviewer of a group
    sees everything ignored inside it); ?group=acme/team: not the ignores of acme or of its other repos."""
    made = [c.post("/api/ignores", body) for body in (
        {"rule_id": "scope-rule", "group": "acme", "reason": "top"},
        {"rule_id": "scope-rule", "group": "acme/team", "reason": "sub"},
        {"rule_id": "scope-rule", "repo_id": APP, "reason": "app"},
        {"rule_id": "scope-rule", "repo_id": SUB, "reason": "svc"})]
    assert all(r.status == 201 for r in made), [r.body for r in made]
    top, sub, app, svc = (r.json()["id"] for r in made)
    ids = lambda q: [i["id"] for i in c.get(f"/api/ignores?rule=scope-rule&{q}").json()["items"]]  # noqa: E731
    assert ids("group=acme") == [svc, app, sub, top]
    assert ids("group=ACME") == [svc, app, sub, top]
    assert ids("group=acme/team") == [svc, sub]
    assert ids("group=acme/te") == []
    assert ids("group=acme&limit=2") == [svc, app]
    for i in (top, sub, app, svc):
        assert c.delete(f"/api/ignores/{i}").status == 204


def test_bad_input_and_roles():
    fp = "a" * 64
    before = c.get("/api/ignores?limit=200").json()["items"]
    cases = [
        ({"repo_id": APP, "reason": "x"}, "exactly one of \"fingerprint\""),
        ({"fingerprint": fp, "rule_id": "r", "repo_id": APP, "reason": "x"}, "exactly one of \"fingerprint\""),
        ({"fingerprint": "ABC", "repo_id": APP, "reason": "x"}, "64 lower-case hex"),
        ({"fingerprint": fp, "reason": "x"}, "exactly one of \"repo_id\""),
        ({"fingerprint": fp, "repo_id": APP, "group": "acme", "reason": "x"}, "exactly one of \"repo_id\""),
        ({"fingerprint": fp, "repo_id": "1", "reason": "x"}, "repo_id"),
        ({"fingerprint": fp, "group": "acme/../x", "reason": "x"}, "group path"),
        ({"fingerprint": fp, "repo_id": APP}, "reason"),
        ({"fingerprint": fp, "repo_id": APP, "reason": ""}, "empty"),
        ({"fingerprint": fp, "repo_id": APP, "reason": "x" * 201}, "at most 200"),
        ({"fingerprint": fp, "repo_id": APP, "reason": "x", "expires_at": "tomorrow"}, "YYYY-MM-DD"),
        ({"fingerprint": fp, "repo_id": APP, "reason": "x", "expires_at": "2026-02-30"}, "calendar date"),
        ({"fingerprint": fp, "repo_id": APP, "reason": "x", "expires_at": "2020-01-01"}, "today or a later day"),
        ({"fingerprint": fp, "repo_id": APP, "reason": "x", "scope": "all"}, "unknown field \"scope\""),
    ]
    for body, why in cases:
        r = c.post("/api/ignores", body)
        assert r.status == 400 and why in r.json()["message"], (body, r.status, r.body)
    r = c.post("/api/ignores", {"fingerprint": fp, "repo_id": 987654, "reason": "x"})
    assert r.status == 404 and "no repository 987654" in r.json()["message"], r.body
    r = c.post("/api/ignores", {"fingerprint": fp, "group": "nonexistent/grp", "reason": "x"})
    assert r.status == 404 and "no group" in r.json()["message"], r.body
    for bad_rule in ["r\nx", "sp ace", "tab\tx"]:
        r = c.post("/api/ignores", {"rule_id": bad_rule, "repo_id": APP, "reason": "x"})
        assert r.status == 400 and "rule_id" in r.json()["message"], (bad_rule, r.body)
    # the same ignore twice is a 409 naming the first; a group path in another case is the same group
    first = c.post("/api/ignores", {"rule_id": "dup-rule", "group": "acme/team", "reason": "x", "expires_at": "2999-12-31"})
    assert first.status == 201 and first.json()["group"] == "acme/team", first.body
    assert first.json()["expires_at"] == "2999-12-31", first.json()  # the day given, not the instant it ends
    r = c.post("/api/ignores", {"rule_id": "dup-rule", "group": "ACME/Team", "reason": "again"})
    assert r.status == 409 and f"ignore {first.json()['id']}" in r.json()["message"], r.body
    assert c.delete(f"/api/ignores/{first.json()['id']}").status == 204
    vic = srv.login("vic", "viewer-password-1")
    assert vic.get("/api/ignores").status == 200
    r = vic.post("/api/ignores", {"fingerprint": fp, "repo_id": APP, "reason": "x"})
    assert r.status == 403, r.body
    assert c.get("/api/ignores?expired=maybe").status == 400
    assert c.get("/api/ignores?limit=200").json()["items"] == before


def test_ignored_reasons_are_inert_text_in_the_note():
    """A reason is shown, never acted on: no @all mention, image, link or label of it is live in GitLab's note."""
    mr = sim.open_mr(APP, [{"path": "x/k.py", "content": f"k = '{LEAK}'\n"}], wait=True)
    assert final_status(APP, mr["sha"])["status"] == "failed"
    rule = newest_run(APP, mr["iid"], mr["sha"])["findings"][0]["rule_id"]
    evil = "@all ![t](http://evil.example/t.png) [click](http://evil.example) ~label `x`"
    r = c.post("/api/ignores", {"rule_id": rule, "repo_id": APP, "reason": evil})
    assert r.status == 201, r.body
    state, _ = push(APP, mr["iid"], 9)
    assert state == "success"
    note = sticky_note(APP, mr["iid"])
    line = [l for l in note.splitlines() if "evil.example" in l][0]
    # one code span, its delimiter longer than the reason's backticks (core/gate_report.h gate_md_code)
    assert line.endswith(f": `` {evil} ``"), line
    assert "No new findings counted" in note, note
    assert c.delete(f"/api/ignores/{r.json()['id']}").status == 204


setup()
run([test_an_ignored_fingerprint_passes_until_it_expires, test_a_rule_ignored_for_a_group_covers_its_subgroups,
     test_a_group_filter_lists_every_ignore_that_applies_inside_the_group,
     test_bad_input_and_roles, test_ignored_reasons_are_inert_text_in_the_note])
