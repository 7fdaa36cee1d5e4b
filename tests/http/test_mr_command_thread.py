"""A `/mrgate` command written as a reply inside one of mrgate's inline threads (issue 16). GitLab sends a reply's
Note Hook as it does for any comment (the simulator's POST .../discussions/:discussion_id/notes fires it:
tests/gitlab-sim/README.md, Discussions), so a Maintainer's `/mrgate ignore <rule id> <reason>` written there is
applied as one written on the merge request: the ignore exists, audited with the GitLab username, and mrgate answers
in a reply note."""
import flows
from harness import Mrgate, run

TOKEN = "glpat-threadCmdBotToken0001"  # mrgate's own token user, gatebot (Owner)
MAINT = "glpat-threadCmdMaintainer01"  # mia, a Maintainer through the group
LEAK = "glpat-Xk9Pq2mZr7Lw4Tb8Nc3V"  # a GitLab token shape the secrets scanner catches

sim = flows.acme_sim("mr_command_thread", TOKEN)
sim.add_token(MAINT, scopes=["api"], access={"acme": 40}, username="mia")
APP = sim.add_project("acme", "app", files=[{"path": "README.md", "content": "# app\n"}])["id"]
srv = Mrgate("mr_command_thread", env={"MRGATE_GATE_WORKERS": "2"})
c = srv.login()


def test_an_ignore_written_in_an_inline_thread_is_applied():
    flows.gate_repo(c, sim, "acme", TOKEN, APP, srv.base + "/hooks/gitlab", logs=srv, fail_on="high",
                    scans=["secrets"], comment="inline")
    mr = sim.open_mr(APP, [{"path": "cfg/app.py", "content": f"token = '{LEAK}'\n"}], wait=True)
    assert flows.final_status(sim, APP, mr["sha"], logs=srv)["status"] == "failed"
    [finding] = flows.gate_run_of(c, APP, mr["iid"], mr["sha"], logs=srv)["findings"]
    gl = sim.client(TOKEN)
    base = f"/api/v4/projects/{APP}/merge_requests/{mr['iid']}"

    def inline_thread():
        return next((d for d in gl.get(base + "/discussions").json() if not d["individual_note"]), None)
    thread = srv.wait_for(inline_thread, 20, "mrgate's thread on the finding's line")
    first = thread["notes"][0]
    assert first["author"]["username"] == "gatebot" and first["position"]["new_path"] == "cfg/app.py", first

    reason = "a revoked token kept as a fixture"
    r = sim.client(MAINT).post(base + f"/discussions/{thread['id']}/notes",
                               {"body": f"/mrgate ignore {finding['rule_id']} {reason}"})
    assert r.status == 201, r.body
    note = r.json()
    sim.wait_deliveries()

    # applied: the ignore exists, made by the commenter, audited as a merge request comment
    def ignore():
        items = c.get(f"/api/ignores?repo={APP}&rule={finding['rule_id']}").json()["items"]
        return items or None
    [ign] = srv.wait_for(ignore, 30, "the ignore made by the reply")
    assert (ign["rule_id"], ign["fingerprint"], ign["repo_id"], ign["reason"], ign["created_by"]) == \
        (finding["rule_id"], None, APP, reason, "gitlab:mia"), ign
    [entry] = [a for a in c.get("/api/audit?action=ignore.create").json()["items"]
               if a["target"] == f"ignore {ign['id']}"]
    assert entry["actor"] == "gitlab:mia" and entry["details"]["via"] == "merge request comment", entry
    assert entry["details"]["command"]["note_id"] == note["id"], entry

    # the bot answered the command, as GitLab holds its reply
    def reply():
        rows = srv.sql(f"SELECT outcome, coalesce(reply_note_id, 0) FROM mr_commands WHERE note_id = {note['id']}")
        return rows[0] if rows and rows[0][1] != "0" else None
    outcome, reply_id = srv.wait_for(reply, 30, f"the reply to note {note['id']}")
    assert outcome == "applied", outcome
    [rep] = [n for n in sim.notes(APP, mr["iid"]) if n["id"] == int(reply_id)]
    assert rep["author"]["username"] == "gatebot" and rep["body"].startswith("@mia: ignored"), rep


run([test_an_ignore_written_in_an_inline_thread_is_applied])
