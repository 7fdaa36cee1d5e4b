"""Findings on the line (issue 16): with the comment mode "inline" a gate run opens one GitLab discussion per new
finding, positioned on the added line with the MR's diff_refs; at most 20 per merge request, the rest in the sticky
note; a push that removes a finding resolves its discussion; a redelivery or a new push with the finding still there
posts nothing again. The simulator checks every position as GitLab does (tests/gitlab-sim/README.md, Discussions)."""
import functools
import hashlib

import flows
from harness import Mrgate, run

ALNUM = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
TOKEN = "glpat-inlineTestTokenAcme01"
sim = flows.acme_sim("inline", TOKEN)
APP, MANY, LEFT = (sim.add_project("acme", name, files=[{"path": "README.md", "content": f"# {name}\n"}])["id"]
                   for name in ("app", "many", "left"))
DISCUSSIONS = "/api/v4/projects/:id/merge_requests/:merge_request_iid/discussions"
srv = Mrgate("inline", env={"MRGATE_GATE_WORKERS": "2"})
c = srv.login()
gl = sim.client(TOKEN)
final_status = functools.partial(flows.final_status, sim, logs=srv)
newest_run = functools.partial(flows.gate_run_of, c, logs=srv)


def leak(n):
    """A distinct GitLab token shape per n (the secrets scanner catches each; a distinct fingerprint each)."""
    digest = hashlib.sha256(f"inline-{n}".encode()).digest()
    return "glpat-" + "".join(ALNUM[b % len(ALNUM)] for b in digest[:20])


def setup():
    flows.connect_and_sync(c, sim, "acme", TOKEN, timeout=30, logs=srv)
    config = {"enabled": True, "fail_on": "high", "scans": ["secrets"], "comment": "inline"}
    stored = flows.gate_repos(c, sim, TOKEN, (APP, MANY, LEFT), srv.base + "/hooks/gitlab", config, logs=srv)
    assert [s["comment"] for s in stored] == ["inline"] * 3, stored


def threads(pid, iid):
    """The MR's discussions started by mrgate (not single notes), every page, as GitLab lists them."""
    out, page = [], 1
    while True:
        r = gl.get(f"/api/v4/projects/{pid}/merge_requests/{iid}/discussions?per_page=7&page={page}")
        assert r.status == 200, r.body
        out += [d for d in r.json() if not d["individual_note"]]
        if not r.header("X-Next-Page"):
            return out
        page = int(r.header("X-Next-Page"))


def sticky_note(pid, iid, sha):
    """The sticky note once it names head sha (it is written after the discussions)."""
    def note():
        notes = [n for n in gl.get(f"/api/v4/projects/{pid}/merge_requests/{iid}/notes").json()
                 if n["body"].startswith("<!-- mrgate:gate-note")]
        assert len(notes) <= 1, notes
        return notes[0]["body"] if notes and f"`{sha[:12]}`" in notes[0]["body"] else None
    return srv.wait_for(note, 20, f"the sticky note of {sha[:8]}")


def by_fingerprint(ts):
    return {t["notes"][0]["body"].split(" ")[2]: t for t in ts}


def test_one_positioned_discussion_per_finding_resolved_after_the_fix():
    files = [{"path": "cfg/a.py", "content": f"x = 1\ntoken = '{leak(1)}'\n"},
             {"path": "cfg/b.py", "content": f"y = 2\nz = 3\nkey = '{leak(2)}'\n"}]
    mr = sim.open_mr(APP, files, wait=True)
    assert final_status(APP, mr["sha"])["status"] == "failed"
    findings = newest_run(APP, mr["iid"], mr["sha"])["findings"]
    assert sorted((f["path"], f["line"]) for f in findings) == [("cfg/a.py", 2), ("cfg/b.py", 3)], findings
    sticky_note(APP, mr["iid"], mr["sha"])
    ts = threads(APP, mr["iid"])
    assert len(ts) == 2, ts
    refs = gl.get(f"/api/v4/projects/{APP}/merge_requests/{mr['iid']}").json()["diff_refs"]
    got = by_fingerprint(ts)
    for f in findings:
        t = got.get(f["fingerprint"])
        assert t is not None, (f, list(got))
        [note] = t["notes"]
        assert note["type"] == "DiffNote" and note["resolvable"] and not note["resolved"], note
        pos = note["position"]
        assert (pos["position_type"], pos["new_path"], pos["old_path"], pos["new_line"], pos["old_line"]) == (
            "text", f["path"], f["path"], f["line"], None), pos
        assert {k: pos[k] for k in ("base_sha", "start_sha", "head_sha")} == refs, (pos, refs)
        assert note["body"].startswith(f"<!-- mrgate:finding {f['fingerprint']} -->"), note["body"]
        assert leak(1) not in note["body"] and leak(2) not in note["body"], note["body"]  # never the secret
        # the full fingerprint, shown where a developer can copy it, with the command that uses it
        assert f"fingerprint `{f['fingerprint']}`" in note["body"], note["body"]
        assert f"To ignore it: comment `/mrgate ignore {f['fingerprint']} <reason>`" in note["body"].split("\n")
    note = sticky_note(APP, mr["iid"], mr["sha"])
    assert "2 findings commented on their lines" in note and "| Severity |" not in note, note
    posts = sim.count("POST", DISCUSSIONS)
    assert posts == 2, posts

    # the same delivery again, and a new head with both findings still there: nothing posted twice
    again = sim.redeliver(mr["deliveries"][0], wait=True)
    assert sim.delivery(again["id"])["response_status"] == 200
    pushed = sim.push_mr(APP, mr["iid"], [{"path": "docs/x.md", "content": "x\n"}], wait=True)
    assert final_status(APP, pushed["sha"])["status"] == "failed"
    sticky_note(APP, mr["iid"], pushed["sha"])
    assert sim.count("POST", DISCUSSIONS) == 2
    assert sorted(t["id"] for t in threads(APP, mr["iid"])) == sorted(t["id"] for t in ts)
    assert not any(t["notes"][0]["resolved"] for t in threads(APP, mr["iid"]))
    # a run that died between GitLab's answer and its table: the next one finds its discussions by their marker
    srv.sql(f"DELETE FROM gate_discussions WHERE project_id = {APP} AND mr_iid = {mr['iid']}")
    pushed = sim.push_mr(APP, mr["iid"], [{"path": "docs/x.md", "content": "x again\n"}], wait=True)
    assert final_status(APP, pushed["sha"])["status"] == "failed"
    sticky_note(APP, mr["iid"], pushed["sha"])
    assert sim.count("POST", DISCUSSIONS) == 2
    rows = srv.sql(f"SELECT discussion_id FROM gate_discussions WHERE project_id = {APP} AND mr_iid = {mr['iid']}")
    assert sorted(r[0] for r in rows) == sorted(t["id"] for t in ts), rows

    # the fix for a.py: its discussion is resolved (by mrgate's user), b.py's stays open, nothing new is posted
    fixed = sim.push_mr(APP, mr["iid"], [{"path": "cfg/a.py", "content": "x = 1\ntoken = os.environ['T']\n"}],
                        wait=True)
    assert final_status(APP, fixed["sha"])["status"] == "failed"
    fa = next(f for f in findings if f["path"] == "cfg/a.py")["fingerprint"]
    fb = next(f for f in findings if f["path"] == "cfg/b.py")["fingerprint"]

    def resolved():
        now = by_fingerprint(threads(APP, mr["iid"]))
        return now if now[fa]["notes"][0]["resolved"] else None
    now = srv.wait_for(resolved, 20, "the fixed finding's discussion resolved")
    assert now[fa]["notes"][0]["resolved_by"]["username"] == "gatebot", now[fa]
    assert not now[fb]["notes"][0]["resolved"], now[fb]
    assert len(now) == 2 and sim.count("POST", DISCUSSIONS) == 2
    note = sticky_note(APP, mr["iid"], fixed["sha"])
    assert "1 finding commented on its line" in note, note


def test_past_twenty_the_rest_is_in_the_sticky_note():
    content = "".join(f"k{i} = '{leak(100 + i)}'\n" for i in range(1, 23))  # 22 findings, lines 1..22
    mr = sim.open_mr(MANY, [{"path": "keys.py", "content": content}], wait=True)
    assert final_status(MANY, mr["sha"])["status"] == "failed"
    findings = newest_run(MANY, mr["iid"], mr["sha"])["findings"]
    assert len(findings) == 22, findings
    note = sticky_note(MANY, mr["iid"], mr["sha"])
    ts = threads(MANY, mr["iid"])
    assert len(ts) == 20, len(ts)
    on_line = {t["notes"][0]["position"]["new_line"] for t in ts}
    assert len(on_line) == 20 and on_line <= set(range(1, 23)), on_line
    rest = sorted(set(range(1, 23)) - on_line)
    assert "20 findings commented on their lines" in note, note
    table = [ln for ln in note.splitlines() if ln.startswith("| high") or ln.startswith("| critical")]
    assert len(table) == 2, note
    assert sorted(int(ln.split("`keys.py:")[1].split("`")[0]) for ln in table) == rest, (table, rest)


def test_an_ignored_finding_resolves_its_discussion():
    mr = sim.open_mr(APP, [{"path": "ign/c.py", "content": f"c = '{leak(3)}'\n"}], wait=True)
    assert final_status(APP, mr["sha"])["status"] == "failed"
    [finding] = newest_run(APP, mr["iid"], mr["sha"])["findings"]
    sticky_note(APP, mr["iid"], mr["sha"])
    [t] = threads(APP, mr["iid"])
    r = c.post("/api/ignores", {"fingerprint": finding["fingerprint"], "repo_id": APP, "reason": "a test fixture"})
    assert r.status == 201, r.body
    pushed = sim.push_mr(APP, mr["iid"], [{"path": "docs/y.md", "content": "y\n"}], wait=True)
    assert final_status(APP, pushed["sha"])["status"] == "success"
    note = sticky_note(APP, mr["iid"], pushed["sha"])
    assert "Ignored (1, not counted)" in note and "commented on" not in note, note
    [again] = threads(APP, mr["iid"])
    assert again["id"] == t["id"] and again["notes"][0]["resolved"], again


def test_a_line_gitlab_refuses_stays_in_the_note():
    """Past GitLab's diff limits mrgate reads a file from the trees; GitLab cannot place a comment on it (400)."""
    sim.settings(diff_max_patch_bytes=200)
    posts = sim.count("POST", DISCUSSIONS)
    try:
        content = "".join(f"line {i} padding padding padding\n" for i in range(12)) + f"t = '{leak(4)}'\n"
        mr = sim.open_mr(MANY, [{"path": "big/cfg.py", "content": content}], wait=True)
        assert final_status(MANY, mr["sha"])["status"] == "failed"
        [finding] = newest_run(MANY, mr["iid"], mr["sha"])["findings"]
        assert (finding["path"], finding["line"]) == ("big/cfg.py", 13), finding
        note = sticky_note(MANY, mr["iid"], mr["sha"])
    finally:
        sim.settings(diff_max_patch_bytes=204800)
    assert threads(MANY, mr["iid"]) == [] and sim.count("POST", DISCUSSIONS) == posts + 1  # tried, refused
    assert "`big/cfg.py:13`" in note and "commented on" not in note, note
    assert srv.sql(f"SELECT count(*) FROM gate_discussions WHERE mr_iid = {mr['iid']} AND project_id = {MANY}") == [
        ["0"]]


def test_a_marker_written_by_someone_else_is_not_mrgates():
    dev = "glpat-inlineDeveloperTok01"
    sim.add_token(dev, scopes=["api"], access={"acme": 30}, username="dev")
    mr = sim.open_mr(MANY, [{"path": "forged/k.py", "content": f"k = '{leak(5)}'\n"}], wait=True)
    assert final_status(MANY, mr["sha"])["status"] == "failed"
    [finding] = newest_run(MANY, mr["iid"], mr["sha"])["findings"]
    sticky_note(MANY, mr["iid"], mr["sha"])
    [t] = threads(MANY, mr["iid"])
    base = f"/api/v4/projects/{MANY}/merge_requests/{mr['iid']}"
    # mrgate's thread is gone (deleted, and the table forgot it); a developer writes one with the same marker
    assert gl.delete(f"{base}/notes/{t['notes'][0]['id']}").status == 204
    srv.sql(f"DELETE FROM gate_discussions WHERE project_id = {MANY} AND mr_iid = {mr['iid']}")
    forged = sim.client(dev).post(f"{base}/discussions",
                                  {"body": f"<!-- mrgate:finding {finding['fingerprint']} -->\nnothing to see"})
    assert forged.status == 201, forged.body
    pushed = sim.push_mr(MANY, mr["iid"], [{"path": "docs/z.md", "content": "z\n"}], wait=True)
    assert final_status(MANY, pushed["sha"])["status"] == "failed"
    sticky_note(MANY, mr["iid"], pushed["sha"])
    ours = [d for d in threads(MANY, mr["iid"]) if d["notes"][0]["author"]["username"] == "gatebot"]
    assert len(ours) == 1 and ours[0]["notes"][0]["position"]["new_path"] == "forged/k.py", ours


def test_threads_are_resolved_after_the_repo_leaves_the_inline_mode():
    mr = sim.open_mr(LEFT, [{"path": "l/a.py", "content": f"a = '{leak(6)}'\n"},
                            {"path": "l/b.py", "content": f"b = '{leak(7)}'\n"}], wait=True)
    assert final_status(LEFT, mr["sha"])["status"] == "failed"
    sticky_note(LEFT, mr["iid"], mr["sha"])
    assert len(threads(LEFT, mr["iid"])) == 2
    r = c.put(f"/api/repos/{LEFT}/config", {"enabled": True, "fail_on": "high", "scans": ["secrets"],
                                            "comment": "on_findings"})
    assert r.status == 200 and r.json()["config"]["comment"] == "on_findings", r.body
    posts = sim.count("POST", DISCUSSIONS)
    fixed = sim.push_mr(LEFT, mr["iid"], [{"path": "l/a.py", "content": "a = None\n"}], wait=True)
    assert final_status(LEFT, fixed["sha"])["status"] == "failed"
    note = sticky_note(LEFT, mr["iid"], fixed["sha"])
    assert "commented on" not in note and "`l/b.py:1`" in note, note  # the note lists every finding again
    ts = {t["notes"][0]["position"]["new_path"]: t["notes"][0]["resolved"] for t in threads(LEFT, mr["iid"])}
    assert ts == {"l/a.py": True, "l/b.py": False}, ts  # the fixed one resolved, nothing new posted
    assert sim.count("POST", DISCUSSIONS) == posts


setup()
run([test_one_positioned_discussion_per_finding_resolved_after_the_fix,
     test_past_twenty_the_rest_is_in_the_sticky_note, test_an_ignored_finding_resolves_its_discussion,
     test_a_line_gitlab_refuses_stays_in_the_note, test_a_marker_written_by_someone_else_is_not_mrgates,
     test_threads_are_resolved_after_the_repo_leaves_the_inline_mode])
