"""Commands in the merge request (issue 16): a comment `/mrgate ignore <fingerprint or rule> <reason>` or
`/mrgate bypass <reason>` by a GitLab user whose access level on the project is at least Maintainer (read from
GitLab's members API, never from the payload) does what the dashboard does and answers in a reply note; anyone else
gets a reply saying who may, and nothing changes.

Shows, on the simulator (which fires comment events as GitLab does, edits and internal notes included):
- mrgate's hook asks for note events and not for confidential ones;
- a Developer's `/mrgate ignore` is refused with a reply, nothing is ignored; further refusals for want of rights
  within a minute are recorded without a reply (one answered per commenter a minute);
- a Maintainer (by inheritance from the group) ignores a finding: the ignore exists (GET /api/ignores), audited with
  the GitLab username and "via merge request comment", and the next push passes with the finding listed as ignored;
- a Maintainer's `/mrgate bypass` posts `success` "bypassed by NAME: reason" on the head sha, audited the same way;
- a redelivered note event, or the same note under a new delivery key, does nothing more (one reply, one audit);
- replies cannot run quick actions: `/approve` and `/merge` in the commenter's text stay text;
- a bypass with nothing failed, a missing reason or an unknown rule are refused with a reply; an edited comment, an
  internal note and mrgate's own notes are no commands (no reply).
"""
import functools
import json
import uuid

import flows
from harness import Mrgate, run
from sim import Sim

USERS = {  # token: (username, access map) on GitLab
    "glpat-mrCommandsBotToken01": ("gatebot", {"acme": 50}),    # mrgate's own token user (Owner)
    "glpat-mrCommandsDeveloper1": ("dave", {"acme/app": 30}),   # a Developer of the project
    "glpat-mrCommandsMaintainr1": ("mia", {"acme": 40}),        # a Maintainer through the group
    "glpat-mrCommandsAdminUser1": ("admin", {"acme": 40}),      # a Maintainer named like mrgate's dashboard admin
    "glpat-mrCommandsDeveloper2": ("dan", {"acme/app": 30}),    # two more Developers (refusals for want of rights
    "glpat-mrCommandsDeveloper3": ("dora", {"acme/app": 30}),   # are answered once a minute per commenter)
}
TOKEN, DEV, MAINT, GLADMIN, DEV2, DEV3 = USERS
LEAK = "glpat-Xk9Pq2mZr7Lw4Tb8Nc3V"  # a GitLab token shape the secrets scanner catches

sim = Sim("mr_commands")
sim.add_group("acme", tier="premium")
APP = sim.add_project("acme", "app", files=[{"path": "README.md", "content": "# app\n"}])["id"]
for tok, (name, access) in USERS.items():
    sim.add_token(tok, scopes=["api"], access=access, username=name, bot=name == "gatebot")
srv = Mrgate("mr_commands", env={"MRGATE_GATE_WORKERS": "2"})
c = srv.login()
HOOK_URL = srv.base + "/hooks/gitlab"
final_status = functools.partial(flows.final_status, sim, logs=srv)


def failed_mr(path):
    """An MR adding a leaked token: its gate failed; the MR and its run's detail."""
    mr = sim.open_mr(APP, [{"path": path, "content": f"token = '{LEAK}'\n"}], wait=True)
    assert final_status(APP, mr["sha"])["status"] == "failed"
    return mr, flows.newest_run(c, APP, mr["iid"], mr["sha"], logs=srv)


def comment(token, iid, body, internal=False):
    """A note written through GitLab's API by the token's user; its comment event is delivered before we return."""
    payload = {"body": body}
    if internal:
        payload["internal"] = True
    r = sim.client(token).post(f"/api/v4/projects/{APP}/merge_requests/{iid}/notes", payload)
    assert r.status == 201, r.body
    sim.wait_deliveries()
    return r.json()


def command_row(note_id):
    rows = srv.sql(f"SELECT outcome, coalesce(reply_note_id, 0) FROM mr_commands WHERE note_id = {note_id}")
    return rows[0] if rows else None


def reply_to(note, iid):
    """The reply mrgate posted to a command note (as GitLab holds it, with the quick actions it ran)."""
    row = srv.wait_for(lambda: (lambda r: r if r and r[1] != "0" else None)(command_row(note["id"])), 30,
                       f"the reply to note {note['id']}")
    [rep] = [n for n in sim.notes(APP, iid) if n["id"] == int(row[1])]
    assert rep["author"]["username"] == "gatebot", rep
    return row[0], rep


def gatebot_notes(iid):
    return [n for n in sim.notes(APP, iid) if n["author"]["username"] == "gatebot"]


def job_result(note_id):
    """The result its job item recorded for the command in note_id (waits for it)."""
    q = ("SELECT i.result FROM job_items i JOIN jobs j ON j.id = i.job_id WHERE j.kind = 'mrcommand'"
         f" AND j.params->>'note_id' = '{int(note_id)}' AND i.result IS NOT NULL")
    return srv.wait_for(lambda: srv.sql(q), 30, f"the job item of note {note_id} recorded")[0][0]


def test_the_hook_asks_for_note_events():
    [hook] = sim.hooks_by_project(HOOK_URL)[APP]
    assert hook["note_events"] is True and hook["confidential_note_events"] is False, hook
    assert hook["merge_requests_events"] is True and hook["pipeline_events"] is True, hook


def ignore_on_failed_mr(token, path, reason):
    """A failed MR on which the token's user comments `/mrgate ignore <its finding's fingerprint> <reason>`."""
    mr, gate = failed_mr(path)
    [finding] = gate["findings"]
    note = comment(token, mr["iid"], f"/mrgate ignore {finding['fingerprint']} {reason}")
    return mr, gate, finding, note, *reply_to(note, mr["iid"])


def test_a_developer_is_refused():
    mr, gate, _, _, outcome, rep = ignore_on_failed_mr(DEV, "dev.py", "it is only a test key")
    assert outcome == "refused", outcome
    assert rep["body"].startswith("@dave: only a Maintainer or Owner of this project may ignore findings"), rep
    assert "Developer" in rep["body"], rep
    assert c.get(f"/api/ignores?repo={APP}").json()["items"] == []
    assert c.get("/api/audit?action=ignore.").json()["items"] == []
    # the bypass is refused the same way (another Developer: one refusal a minute is answered per commenter), and
    # GitLab still shows the failed status
    note = comment(DEV2, mr["iid"], "/mrgate bypass please")
    outcome, rep = reply_to(note, mr["iid"])
    assert outcome == "refused" and "may bypass the gate" in rep["body"], rep
    # the jobs page and the repo's history say so: skipped, not "changed" as if carried out (a walk)
    assert job_result(note["id"]) == "skipped"
    assert final_status(APP, mr["sha"])["status"] == "failed"
    assert c.get(f"/api/gates/{gate['id']}").json()["verdict"] == "failed"


def test_refusals_for_want_of_rights_are_answered_once_a_minute():
    # anyone who may comment could otherwise spend the bot's note quota: the first refusal is answered, the next
    # ones within a minute are recorded without a reply
    mr, gate = failed_mr("flood.py")
    first = comment(DEV3, mr["iid"], "/mrgate bypass 1")
    outcome, _ = reply_to(first, mr["iid"])
    assert outcome == "refused", outcome
    replies = len(gatebot_notes(mr["iid"]))
    more = [comment(DEV3, mr["iid"], f"/mrgate bypass {i}") for i in range(2, 5)]
    for n in more:
        srv.wait_for(lambda n=n: command_row(n["id"]) == ["skipped", "0"], 30, f"note {n['id']} refused unanswered")
    assert len(gatebot_notes(mr["iid"])) == replies, gatebot_notes(mr["iid"])
    assert c.get(f"/api/gates/{gate['id']}").json()["verdict"] == "failed"
    # a Maintainer's refusals are always answered (a typo is corrected at once)
    outcome, rep = reply_to(comment(MAINT, mr["iid"], "/mrgate bypass"), mr["iid"])
    outcome2, rep2 = reply_to(comment(MAINT, mr["iid"], "/mrgate bypas typo"), mr["iid"])
    assert outcome == outcome2 == "refused" and rep["id"] != rep2["id"], (rep, rep2)


def test_a_maintainer_ignores_a_finding():
    mr, _, finding, note, outcome, rep = ignore_on_failed_mr(MAINT, "maint.py", "a revoked token kept as a fixture")
    assert outcome == "applied", rep
    assert job_result(note["id"]) == "changed"
    assert rep["body"].startswith("@mia: ignored for this repository"), rep
    [ign] = [i for i in c.get(f"/api/ignores?repo={APP}").json()["items"]
             if i["fingerprint"] == finding["fingerprint"]]
    assert ign["created_by"] == "gitlab:mia" and ign["reason"] == "a revoked token kept as a fixture", ign
    assert ign["repo_id"] == APP and ign["expires_at"] is None, ign
    [entry] = [a for a in c.get("/api/audit?action=ignore.create").json()["items"]
               if a["target"] == f"ignore {ign['id']}"]
    assert entry["actor"] == "gitlab:mia" and entry["details"]["via"] == "merge request comment", entry
    assert entry["details"]["command"]["note_id"] == note["id"] and entry["details"]["access_level"] == 40, entry
    # the next push passes, the finding listed as ignored
    pushed = sim.push_mr(APP, mr["iid"], [{"path": "later.md", "content": "later\n"}], wait=True)
    assert final_status(APP, pushed["sha"])["status"] == "success"
    again = flows.newest_run(c, APP, mr["iid"], pushed["sha"], logs=srv)
    [f2] = again["findings"]
    assert f2["fingerprint"] == finding["fingerprint"], f2
    assert f2["ignored"] == {"id": ign["id"], "reason": "a revoked token kept as a fixture"}, f2


def test_ignore_by_a_fingerprint_prefix_in_any_case():
    """The fingerprint as a developer can copy it: any case, or a unique prefix of 12 or more characters."""
    mr, gate = failed_mr("prefix.py")
    [finding] = gate["findings"]
    fp = finding["fingerprint"]
    # a second fingerprint sharing the first 12 characters (a witness row: real fingerprints rarely collide)
    srv.sql(f"INSERT INTO gate_findings (run_id, scan_type, rule_id, title, severity, path, line, fingerprint)"
            f" SELECT run_id, scan_type, rule_id, title, severity, path, line, '{fp[:12]}' || repeat('0', 52)"
            f" FROM gate_findings WHERE run_id = {gate['id']}")
    outcome, rep = reply_to(comment(MAINT, mr["iid"], f"/mrgate ignore {fp[:12].upper()} too short"), mr["iid"])
    assert outcome == "refused" and "is ambiguous" in rep["body"], rep
    assert [i for i in c.get(f"/api/ignores?repo={APP}").json()["items"] if i["fingerprint"] == fp] == []
    outcome, rep = reply_to(comment(MAINT, mr["iid"], f"/mrgate ignore {fp[:20].upper()} a fixture"), mr["iid"])
    assert outcome == "applied" and f"` {fp} `" in rep["body"], rep
    [ign] = [i for i in c.get(f"/api/ignores?repo={APP}").json()["items"] if i["fingerprint"] == fp]
    assert ign["reason"] == "a fixture" and ign["created_by"] == "gitlab:mia", ign


def test_a_maintainer_bypasses_the_gate():
    mr, gate = failed_mr("bypass.py")
    note = comment(MAINT, mr["iid"], "/mrgate bypass the key was rotated yesterday")
    outcome, rep = reply_to(note, mr["iid"])
    assert outcome == "applied", rep
    assert rep["body"].startswith("@mia: gate bypassed"), rep
    last = flows.statuses(sim, APP, mr["sha"])[-1]
    assert last["status"] == "success", last
    assert last["description"] == "bypassed by gitlab:mia: the key was rotated yesterday", last
    got = c.get(f"/api/gates/{gate['id']}").json()
    assert got["verdict"] == "bypassed" and got["bypass"]["by"] == "gitlab:mia", got
    [entry] = [a for a in c.get("/api/audit?action=gate.bypass").json()["items"]
               if a["target"].startswith(f"gate run {gate['id']} ")]
    assert entry["actor"] == "gitlab:mia" and entry["details"]["via"] == "merge request comment", entry


def test_a_gitlab_user_named_admin_is_not_mrgates_admin():
    """MR-comment actors are recorded as gitlab:<username>, a form no dashboard user name can take."""
    mr, gate = failed_mr("named_admin.py")
    note = comment(GLADMIN, mr["iid"], "/mrgate bypass rotated")
    outcome, rep = reply_to(note, mr["iid"])
    assert outcome == "applied" and rep["body"].startswith("@admin: gate bypassed"), rep
    assert flows.statuses(sim, APP, mr["sha"])[-1]["description"] == "bypassed by gitlab:admin: rotated"
    assert c.get(f"/api/gates/{gate['id']}").json()["bypass"]["by"] == "gitlab:admin"
    [listed] = [g for g in c.get(f"/api/gates?repo={APP}&mr={mr['iid']}").json()["items"] if g["id"] == gate["id"]]
    assert listed["bypass"]["by"] == "gitlab:admin", listed
    [entry] = [a for a in c.get("/api/audit?action=gate.bypass").json()["items"]
               if a["target"].startswith(f"gate run {gate['id']} ")]
    assert entry["actor"] == "gitlab:admin", entry
    # and the name cannot be a dashboard user's
    r = c.post("/api/users", {"username": "gitlab:admin", "password": "some-password-12", "role": "viewer"})
    assert r.status == 400, r.body


def test_a_note_is_acted_on_once():
    mr, gate = failed_mr("once.py")
    note = comment(MAINT, mr["iid"], "/mrgate bypass accepted for the release")
    reply_to(note, mr["iid"])
    replies, audits = len(gatebot_notes(mr["iid"])), len(c.get("/api/audit?action=gate.bypass").json()["items"])
    statuses = len(flows.statuses(sim, APP, mr["sha"]))
    # GitLab redelivers the same delivery (same Idempotency-Key)
    [d] = [d for d in sim.deliveries(event="Note Hook") if d["body"]["object_attributes"]["id"] == note["id"]]
    sim.redeliver(d["id"], wait=True)
    # and the same note arrives under a new key (a second hook, a replayed request)
    secret = srv.cli("webhook-secret").stdout.strip()
    r = srv.client().post("/hooks/gitlab", raw=json.dumps(d["body"]).encode(), headers={
        "Content-Type": "application/json", "X-Gitlab-Event": "Note Hook", "X-Gitlab-Token": secret,
        "Idempotency-Key": str(uuid.uuid4())})
    assert r.status in (200, 202) and r.json()["outcome"] == "duplicate", r.body
    assert srv.sql(f"SELECT count(*) FROM jobs WHERE kind = 'mrcommand' AND params->>'note_id' = '{note['id']}'") \
        == [["1"]]
    flows.wait_job(c, int(srv.sql(f"SELECT job_id FROM mr_commands WHERE note_id = {note['id']}")[0][0]), 30)
    assert len(gatebot_notes(mr["iid"])) == replies
    assert len(c.get("/api/audit?action=gate.bypass").json()["items"]) == audits
    assert len(flows.statuses(sim, APP, mr["sha"])) == statuses


def test_a_reply_runs_no_quick_action():
    mr, gate = failed_mr("quick.py")
    note = comment(MAINT, mr["iid"], "/mrgate bypass /approve /merge")
    outcome, rep = reply_to(note, mr["iid"])
    assert outcome == "applied" and "` /approve /merge `" in rep["body"], rep
    assert all(not line.startswith("/") for line in rep["body"].split("\n")), rep
    assert not rep.get("quick_actions"), rep
    got = sim.mr(APP, mr["iid"])
    assert got["state"] == "opened" and got["auto_merge"] is False and got["approved_by"] == [], got
    # backticks in the commenter's text do not end the code span early
    note = comment(MAINT, mr["iid"], "/mrgate ignore `/approve` `x`")
    outcome, rep = reply_to(note, mr["iid"])
    assert outcome == "refused" and "`` `/approve` ``" in rep["body"], rep
    assert not rep.get("quick_actions"), rep
    assert sim.mr(APP, mr["iid"])["approved_by"] == []


def test_nothing_failed_to_bypass():
    ok = sim.open_mr(APP, [{"path": "clean.py", "content": "print('hello')\n"}], wait=True)
    assert final_status(APP, ok["sha"])["status"] == "success"
    outcome, rep = reply_to(comment(MAINT, ok["iid"], "/mrgate bypass just in case"), ok["iid"])
    assert outcome == "refused" and "only a failed gate can be bypassed" in rep["body"], rep
    assert flows.statuses(sim, APP, ok["sha"])[-1]["description"] != "bypassed by gitlab:mia: just in case"
    assert c.get("/api/audit?action=gate.bypass").json()["items"] == [] or all(
        not a["target"].endswith(f"!{ok['iid']})") for a in c.get("/api/audit?action=gate.bypass").json()["items"])


def test_refusals_and_non_commands():
    mr, gate = failed_mr("misc.py")
    # no reason: refused with a reply that says how
    outcome, rep = reply_to(comment(MAINT, mr["iid"], "/mrgate bypass"), mr["iid"])
    assert outcome == "refused" and "give a reason" in rep["body"], rep
    # an ignore with a blank reason says why an ignore needs one (not the bypass's wording)
    [finding] = gate["findings"]
    outcome, rep = reply_to(comment(MAINT, mr["iid"], f"/mrgate ignore {finding['fingerprint']} \u00a0"), mr["iid"])
    assert outcome == "refused" and "must not be empty: say why this finding may be ignored" in rep["body"], rep
    r = c.post("/api/ignores", {"fingerprint": finding["fingerprint"], "repo_id": APP, "reason": " "})
    assert r.status == 400 and "say why this finding may be ignored" in r.json()["message"], r.body
    assert "merge request may merge" not in r.json()["message"], r.body
    # an unknown rule id
    outcome, rep = reply_to(comment(MAINT, mr["iid"], "/mrgate ignore no-such-rule false positive"), mr["iid"])
    assert outcome == "refused" and "no gate run of this repository found" in rep["body"], rep
    # an unknown verb
    outcome, rep = reply_to(comment(MAINT, mr["iid"], "/mrgate approve now"), mr["iid"])
    assert outcome == "refused" and "unknown command" in rep["body"], rep
    # a reason with a bidi override (the dashboard's rule)
    outcome, rep = reply_to(comment(MAINT, mr["iid"], "/mrgate bypass ok\u202eevil"), mr["iid"])
    assert outcome == "refused" and "U+202E" in rep["body"], rep
    assert c.get(f"/api/gates/{gate['id']}").json()["verdict"] == "failed"
    before = len(gatebot_notes(mr["iid"]))
    # an ordinary comment edited into a command (GitLab sends action "update"): not a command
    plain = comment(MAINT, mr["iid"], "looks fine")
    r = sim.client(MAINT).put(f"/api/v4/projects/{APP}/merge_requests/{mr['iid']}/notes/{plain['id']}",
                              {"body": "/mrgate bypass edited in"})
    assert r.status == 200, r.body
    sim.wait_deliveries()
    # an internal note: GitLab sends it only to confidential_note_events hooks, which mrgate's hook is not
    internal = comment(MAINT, mr["iid"], "/mrgate bypass in private", internal=True)
    # mrgate's own user writing a command: never acted on (no loops)
    own = comment(TOKEN, mr["iid"], "/mrgate bypass from the bot")
    srv.wait_for(lambda: command_row(own["id"]) and command_row(own["id"])[0] == "skipped", 30,
                 "mrgate's own note skipped")
    assert command_row(plain["id"]) is None and command_row(internal["id"]) is None
    edits = [d for d in sim.deliveries(event="Note Hook") if d["body"]["object_attributes"]["id"] == plain["id"]]
    assert [d["body"]["object_attributes"]["action"] for d in edits] == ["create", "update"], edits
    assert not sim.deliveries(event="Confidential Note Hook")
    assert len(gatebot_notes(mr["iid"])) == before + 1  # only the bot's own comment, no reply
    assert c.get(f"/api/gates/{gate['id']}").json()["verdict"] == "failed"


flows.gate_repo(c, sim, "acme", TOKEN, APP, HOOK_URL, logs=srv, fail_on="high", scans=["secrets"], comment="off")
run([test_the_hook_asks_for_note_events, test_a_developer_is_refused,
     test_refusals_for_want_of_rights_are_answered_once_a_minute, test_a_maintainer_ignores_a_finding,
     test_ignore_by_a_fingerprint_prefix_in_any_case, test_a_maintainer_bypasses_the_gate,
     test_a_gitlab_user_named_admin_is_not_mrgates_admin,
     test_a_note_is_acted_on_once, test_a_reply_runs_no_quick_action,
     test_nothing_failed_to_bypass, test_refusals_and_non_commands])
