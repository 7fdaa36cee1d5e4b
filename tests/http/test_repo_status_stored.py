"""HTTP: the stored status and effective config of every repo (repo_status_stored, sql/0011) equal what the old
computation (the view repo_status_computed) gives, after every kind of change that feeds them.

Shows, over a seeded premium group with an Owner group access token, checking every repo after each step: the first
sync; a default config change; a group config that gates a subgroup (applied); a repo exception; an unmanaged repo;
an apply that fails (GitLab answers 403); a gate run on a merge request; group-hook mode and back; a second sync that
lists a new project, an archived one and a removed one (the `new` status reads the last done sync) and a third sync
that ends their newness; every repo marked for an apply, whatever its status; a group config deleted; a repo deleted by hand; every column of repo_gitlab_state changed by hand alone. The API's list agrees with the stored rows (the status filter
counts what the old computation counts).
"""
import collections

import flows
from harness import Mrgate, run, wait_for
from sim import Sim

TOKEN = "glpat-status-stored-owner"
ROOT = "rss"
SUB = "rss/team01"
sim = Sim("repo_status_stored_sim")
sim.seed(ROOT, projects=30, depth=2, fanout=2, tier="premium")
sim.add_token(TOKEN, kind="group_access", access={ROOT: 50})
srv = Mrgate("repo_status_stored", env={"MRGATE_GITLAB_RATE_LIMIT": "0"})
c = srv.login()
HOOK = srv.base + "/hooks/gitlab"
GATED = {"enabled": True, "block_merge": True, "fail_on": "high", "scans": ["secrets"]}

# Every column of the two, compared as text: rows the old computation gives that are not stored, and the reverse.
DIFF = """
SELECT 'computed' AS side, id, status, effective_config::text FROM
  (SELECT * FROM repo_status_computed EXCEPT SELECT * FROM repo_status_stored) a
UNION ALL
SELECT 'stored', id, status, effective_config::text FROM
  (SELECT * FROM repo_status_stored EXCEPT SELECT * FROM repo_status_computed) b
ORDER BY 2, 1
"""


def consistent(step):
    """Every repo's stored row equals the old computation; the API's status counts agree. Returns the statuses."""
    diff = srv.sql(DIFF)
    assert diff == [], f"after {step}: stored rows differ from the computation: {diff[:10]}"
    n_repos = int(srv.sql("SELECT count(*) FROM repos")[0][0])
    n_stored = int(srv.sql("SELECT count(*) FROM repo_status_stored")[0][0])
    assert n_repos == n_stored, (step, n_repos, n_stored)
    counts = collections.Counter(row[0] for row in srv.sql("SELECT status FROM repo_status_computed"))
    for status, n in counts.items():
        page = c.get(f"/api/repos?status={status}&limit=1").json()
        assert page["count"] == n and page["count_capped"] is False, (step, status, n, page["count"])
    print(f"  after {step}: {dict(sorted(counts.items()))}")
    return counts


def repos():
    return flows.all_repos(c)


def in_sub():
    return [r for r in repos() if r["path_with_namespace"].startswith(SUB + "/")]


def test_first_sync():
    flows.connect_and_sync(c, sim, ROOT, TOKEN)
    counts = consistent("the first sync")
    assert set(counts) == {"ungated"}, counts


def test_default_config():
    assert c.put("/api/configs/default", {"enabled": False, "fail_on": "critical"}).status == 200
    consistent("a default config change")
    assert all(r["config"]["fail_on"] == "critical" for r in repos())


def test_group_config_gates_a_subgroup():
    assert c.put(f"/api/configs/groups/{SUB}", GATED).status == 200
    consistent("a group config (before its apply ends)")
    flows.wait_applied(c, 60)
    counts = consistent("the group config's apply")
    assert counts["gated"] == len(in_sub()) > 0, counts


def test_repo_exception_and_unmanaged():
    sub = in_sub()
    assert c.put(f"/api/repos/{sub[0]['id']}/config", {"fail_on": "low"}).status == 200
    consistent("a repo exception")
    assert c.put(f"/api/repos/{sub[1]['id']}/config", {"unmanaged": True}).status == 200
    flows.wait_applied(c, 60)
    counts = consistent("an unmanaged repo")
    assert counts["exception"] == 1 and counts["unmanaged"] == 1, counts


def test_apply_error():
    other = [r for r in repos() if not r["path_with_namespace"].startswith(SUB + "/")][0]
    sim.script("GET", f"/api/v4/projects/{other['id']}/hooks", [{"status": 403, "body": {"message": "403 Forbidden"}}])
    r = c.post("/api/configure", {"selection": {"ids": [other["id"]]}, "config": {"enabled": True}})
    assert r.status in (200, 202), r.body
    flows.wait_applied(c, 60)
    counts = consistent("an apply that failed")
    assert counts["error"] == 1, counts


def test_gate_run():
    pid = next(r["id"] for r in in_sub() if r["status"] == "gated")
    mr = sim.open_mr(pid, [{"path": "app.py", "content": "print('hello')\n"}])
    assert flows.wait_verdicts(sim, pid, mr["sha"])[0]["status"] == "success"
    consistent("a gate run")


def test_group_hook_mode_and_back():
    gated = sorted(r["id"] for r in repos() if r["status"] == "gated")
    flows.switch_hook_mode(c, "group")
    wait_for(lambda: not [h for h in sim.hooks() if h["url"] == HOOK and not h.get("group_hook")], 30,
             "project hooks removed")
    flows.wait_applied(c, 30)
    consistent("the switch to group-hook mode")
    assert sorted(r["id"] for r in repos() if r["status"] == "gated") == gated
    flows.switch_hook_mode(c, "project")
    wait_for(lambda: not [h for h in sim.hooks() if h["url"] == HOOK and h.get("group_hook")], 30,
             "group hook removed")
    flows.wait_applied(c, 30)
    consistent("the switch back to project mode")
    assert sorted(r["id"] for r in repos() if r["status"] == "gated") == gated


# Every column of repo_gitlab_state but its key, and a new value for it (sql/0019 refreshes a repo on an UPDATE only
# when a column the status reads changed: one it misses leaves the stored row stale here).
GITLAB_STATE_CHANGES = {
    "hook_id": "coalesce(hook_id, 0) + 1000",
    "hook_url": "'https://elsewhere.example/hooks/gitlab'",
    "hook_token_sha256": "repeat('a', 64)",
    "hook_alert_status": "CASE WHEN hook_alert_status = 'disabled' THEN 'executable' ELSE 'disabled' END",
    "merge_setting_prior": "NOT coalesce(merge_setting_prior, false)",
    "merge_setting_changed": "NOT merge_setting_changed",
    "applied_state": "CASE applied_state WHEN 'off' THEN 'hook+merge' ELSE 'off' END",
    "last_result": "CASE WHEN last_result = 'error' THEN 'changed' ELSE 'error' END",
    "last_message": "coalesce(last_message, '') || ' (edited by hand)'",
    "last_applied_at": "coalesce(last_applied_at, now()) - interval '3 days'",
    "applying": "NOT applying",
    "applying_since": "coalesce(applying_since, now()) - interval '1 hour'",
    "apply_run": "coalesce(apply_run, 0) + 1",
}


def test_each_gitlab_state_column_changed_by_hand():
    columns = {r[0] for r in srv.sql("SELECT attname FROM pg_attribute WHERE attrelid = 'repo_gitlab_state'::regclass"
                                     " AND attnum > 0 AND NOT attisdropped")}
    assert columns == set(GITLAB_STATE_CHANGES) | {"repo_id"}, \
        f"repo_gitlab_state's columns changed: add {columns - set(GITLAB_STATE_CHANGES) - {'repo_id'}} here"
    # a repo of every status that has a GitLab state row (sql/0031 sets the stored row from that state and the
    # row's own columns: each input of the status is changed once under every status above and below it)
    by_status = {}
    for status, rid in srv.sql("SELECT s.status, s.id FROM repo_status_stored s"
                               " JOIN repo_gitlab_state g ON g.repo_id = s.id ORDER BY s.id"):
        by_status.setdefault(status, rid)
    assert {"gated", "exception", "unmanaged", "error"} <= set(by_status), by_status
    for status, rid in sorted(by_status.items()):
        srv.sql(f"CREATE TABLE saved_gitlab_state AS SELECT * FROM repo_gitlab_state WHERE repo_id = {rid}")
        for col, value in GITLAB_STATE_CHANGES.items():
            srv.sql(f"UPDATE repo_gitlab_state SET {col} = {value} WHERE repo_id = {rid}")
            # only this repo's row can change: compared alone (the whole comparison takes a second or two)
            diff = srv.sql(f"SELECT * FROM repo_status_computed WHERE id = {rid} EXCEPT"
                           f" SELECT * FROM repo_status_stored WHERE id = {rid}")
            assert diff == [], f"after {col} of a repo {status} changed by hand: stored row differs: {diff}"
            srv.sql(f"UPDATE repo_gitlab_state g SET {col} = s.{col} FROM saved_gitlab_state s"
                    f" WHERE g.repo_id = {rid}")
        srv.sql("DROP TABLE saved_gitlab_state")
        consistent(f"the state of a repo {status} restored")
    pid = by_status["gated"]
    # the key: the row moves to a repo that had none, and back
    other = srv.sql("SELECT id FROM repos WHERE id NOT IN (SELECT repo_id FROM repo_gitlab_state) LIMIT 1")[0][0]
    srv.sql(f"UPDATE repo_gitlab_state SET repo_id = {other} WHERE repo_id = {pid}")
    consistent("repo_id changed by hand")
    srv.sql(f"UPDATE repo_gitlab_state SET repo_id = {pid} WHERE repo_id = {other}")
    assert consistent("every column restored")["gated"] >= 1


def test_second_and_third_sync():
    outside = [r for r in repos() if r["status"] == "ungated"]
    sim.archive_project(outside[0]["id"])
    sim.remove_project(outside[1]["id"], wait=True)
    made = sim.add_project(f"{ROOT}/team02", "brand-new", notify=False)
    flows.sync(c)
    counts = consistent("a second sync")
    assert counts["new"] == 1 and counts["archived"] == 1 and counts["removed"] == 1, counts
    assert c.get(f"/api/repos/{made['id']}").json()["status"] == "new"
    flows.sync(c)
    counts = consistent("a third sync")
    assert counts["new"] == 0, counts


def test_marked_for_apply_in_every_status():
    """Marking repos for an apply (sql/0023 sets their status without recomputing their rows) gives what the
    computation gives, whatever their status: a row inserted for repos with no GitLab state, `applying` set on
    rows that have one; then the marks taken back."""
    pending = next(r["id"] for r in repos() if r["status"] == "ungated")
    srv.sql(f"UPDATE repos SET marked_for_deletion = true WHERE id = {pending}")
    statuses = set(consistent("a repo marked for deletion on GitLab"))
    assert {"removed", "archived", "pending_deletion", "gated", "ungated"} <= statuses, statuses
    srv.sql("CREATE TABLE unmarked AS SELECT repo_id FROM repo_gitlab_state WHERE NOT applying")
    srv.sql("INSERT INTO repo_gitlab_state (repo_id, applying, applying_since, apply_run)"
            " SELECT id, true, now(), 999999 FROM repos WHERE id NOT IN (SELECT repo_id FROM repo_gitlab_state)")
    srv.sql("UPDATE repo_gitlab_state SET applying = true, applying_since = now(), apply_run = 999999"
            " WHERE repo_id IN (SELECT repo_id FROM unmarked)")
    counts = consistent("every repo marked for an apply")
    assert set(counts) == {"removed", "archived", "pending_deletion", "applying"}, counts
    srv.sql("DELETE FROM repo_gitlab_state WHERE apply_run = 999999 AND repo_id NOT IN (SELECT repo_id FROM unmarked)")
    srv.sql("UPDATE repo_gitlab_state SET applying = false WHERE repo_id IN (SELECT repo_id FROM unmarked)")
    srv.sql(f"UPDATE repos SET marked_for_deletion = false WHERE id = {pending}")
    srv.sql("DROP TABLE unmarked")
    assert set(consistent("the marks taken back")) == statuses - {"pending_deletion"}


def test_group_config_deleted():
    # its repos were gated by it alone: the removal says so and needs confirming (nothing stored until then)
    r = c.delete(f"/api/configs/groups/{SUB}")
    assert r.status == 409 and r.json()["error"] == "would_ungate" and r.json()["ungated"] > 0, r.body
    consistent("a group config's removal refused")
    r = c.delete(f"/api/configs/groups/{SUB}?confirm_ungate=true")
    assert r.status == 200 and r.json()["ungated"] > 0, r.body
    consistent("a group config deleted (before its apply ends)")
    flows.wait_applied(c, 60)
    counts = consistent("its apply")
    assert counts["gated"] == 0, counts


def test_repo_deleted_by_hand():
    """repos are never deleted by mrgate; one deleted by hand takes its stored row with it (a trigger, sql/0024)."""
    gone = srv.sql("SELECT id FROM repos WHERE id NOT IN (SELECT repo_id FROM repo_gitlab_state)"
                   " AND id NOT IN (SELECT repo_id FROM config_repos) ORDER BY id LIMIT 1")[0][0]
    srv.sql(f"DELETE FROM repos WHERE id = {gone}")
    consistent("a repo deleted by hand")
    assert srv.sql(f"SELECT count(*) FROM repo_status_stored WHERE id = {gone}") == [["0"]]


if __name__ == "__main__":
    run([test_first_sync, test_default_config, test_group_config_gates_a_subgroup, test_repo_exception_and_unmanaged,
         test_apply_error, test_gate_run, test_group_hook_mode_and_back,
         test_each_gitlab_state_column_changed_by_hand, test_second_and_third_sync,
         test_marked_for_apply_in_every_status, test_group_config_deleted, test_repo_deleted_by_hand])
