"""Discovery fanned out over the group tree while GitLab changes under it: projects moved between subgroups, moved
out of the group and removed while the subgroups are being listed one by one, concurrently. The stored result must
be exact: a moved project is kept, a removed or moved-out one is marked removed, nothing else; a project is counted
once however many listings saw it. A move between two groups that were both listed before it is seen by the next run
(each group's listing is a snapshot of that group: no walk of a changing tree sees every move in the same run).

The listing of subgroup acme/a is held back (a simulator stall) until the other groups' pages are stored; then
projects move and one is removed, and acme/a's listing answers with the world as it is after the changes."""
import functools

import flows
import harness
from harness import Mrgate, run
from sim import Sim

TOKEN = "glpat-discoveryMoves0001"
sim = Sim("discovery_moves")
sim.add_group("acme", tier="premium")
sim.add_group("elsewhere")
for g in ("acme/a", "acme/b", "acme/c", "acme/c/deep"):
    sim.add_group(g)
made = {g: [sim.add_project(g, f"{g.replace('/', '-')}-{i}", notify=False)["id"] for i in range(6)]
        for g in ("acme/a", "acme/b", "acme/c", "acme/c/deep")}
sim.add_token(TOKEN, kind="group_access", scopes=["api"], access={"acme": 50, "elsewhere": 50})
srv = Mrgate("discovery_moves", env={"MRGATE_GITLAB_CONCURRENCY": "8", "MRGATE_GITLAB_RATE_LIMIT": "0"})
c = srv.login()
flows.connect(c, sim, "acme", TOKEN)
sync_and_wait = functools.partial(flows.sync, c, expect=None, timeout=120)
TOTAL = sum(len(v) for v in made.values())


def group_id(path):
    return sim.client(TOKEN).get("/api/v4/groups/" + path.replace("/", "%2F")).json()["id"]


def repo(pid):
    r = c.get(f"/api/repos/{pid}")
    assert r.status == 200, r.body
    return r.json()


def test_first_sync_stores_every_repo():
    s = sync_and_wait()
    assert s["state"] == "done" and s["repos_seen"] == TOTAL and s["new_repos"] == TOTAL, s
    assert c.get("/api/repos?limit=1").json()["count"] == TOTAL


def test_moves_and_removal_during_a_fanned_out_sync():
    a_to_b = made["acme/a"][0]     # missed by both listings: acme/b was listed before it came, acme/a after it left
    a_to_deep = made["acme/a"][1]  # the same, into a deeper group listed before
    b_to_a = made["acme/b"][2]     # listed twice: by acme/b before it left and by acme/a after it came
    deep_to_b = made["acme/c/deep"][3]  # between two groups both listed before the move: seen where it was
    a_out = made["acme/a"][4]      # moved out of the connected group: gone for mrgate
    a_removed = made["acme/a"][5]  # deleted on GitLab
    # acme/a's first page waits until the test has changed the world (5 s is far more than the others need)
    sim.script("GET", f"/api/v4/groups/{group_id('acme/a')}/projects", [{"stall_ms": 5000}])
    sim.reset_counters()
    # every call takes 200 ms: the listers' pages overlap however the threads are scheduled (under CI's load, each
    # page answered in a millisecond was done before the next lister sent its own: peak_in_flight 1)
    sim.set_faults(latency_ms=200)
    r = flows.start_sync(c)
    run_id = r.json()["id"]
    # every group but acme/a has had its page stored: root (empty), b, c, c/deep
    harness.wait_for(lambda: c.get(f"/api/sync?id={run_id}").json()["pages"] >= 4, 30,
                     "the other groups' pages to be stored", interval=0.05)
    mid = c.get(f"/api/sync?id={run_id}").json()
    assert mid["state"] == "running", mid  # acme/a is still being listed: the changes land mid-run
    assert sim.counters().get("peak_in_flight", 0) >= 2, sim.counters()  # fanned out, not one group at a time
    sim.transfer_project(a_to_b, "acme/b")
    sim.transfer_project(a_to_deep, "acme/c/deep")
    sim.transfer_project(b_to_a, "acme/a")
    sim.transfer_project(deep_to_b, "acme/b")
    sim.transfer_project(a_out, "elsewhere")
    sim.remove_project(a_removed)
    s = harness.wait_for(lambda: (lambda x: x if x["state"] != "running" else None)(
        c.get(f"/api/sync?id={run_id}").json()), 60, "the sync to end")
    sim.set_faults()
    assert s["state"] == "done", s
    # what is stored: moved repos are present in their new group, the moved-out and deleted ones removed
    for pid, ns in ((a_to_b, "acme/b"), (a_to_deep, "acme/c/deep"), (b_to_a, "acme/a")):
        got = repo(pid)
        assert got["status"] != "removed" and got["namespace_full_path"] == ns, got
        assert got["path_with_namespace"] == sim.project(pid)["path_with_namespace"], got
    # present, as this run saw it (its new group is read by the next run)
    got = repo(deep_to_b)
    assert got["status"] != "removed" and got["namespace_full_path"] == "acme/c/deep", got
    for pid in (a_out, a_removed):
        assert repo(pid)["status"] == "removed", repo(pid)
    moved = (a_to_b, a_to_deep, b_to_a, deep_to_b, a_out, a_removed)
    for pid in [p for g in made.values() for p in g if p not in moved]:
        got = repo(pid)
        assert got["status"] != "removed" and got["path_with_namespace"] == sim.project(pid)["path_with_namespace"], got
    assert c.get("/api/repos?limit=1").json()["count"] == TOTAL - 2
    assert c.get("/api/repos?status=removed").json()["count"] == 2
    # counted once each, however many listings saw them
    assert s["removed"] == 2 and s["repos_seen"] == TOTAL - 2, s
    # the projects no listing saw were read one by one (two moved within, one moved out, one deleted), no others
    assert sim.count("GET", "/api/v4/projects/:id") == 4, sim.counters()


def test_next_sync_catches_up():
    # the next run stores the one move the last run saw before it happened, and changes nothing else
    deep_to_b = made["acme/c/deep"][3]
    sim.reset_counters()
    s = sync_and_wait()
    assert s["state"] == "done" and s["repos_seen"] == TOTAL - 2, s
    assert (s["new_repos"], s["updated"], s["removed"]) == (0, 1, 0), s
    assert repo(deep_to_b)["namespace_full_path"] == "acme/b", repo(deep_to_b)
    assert sim.count("GET", "/api/v4/projects/:id") == 0, sim.counters()
    s = sync_and_wait()
    assert (s["state"], s["repos_seen"], s["new_repos"], s["updated"], s["removed"]) == ("done", TOTAL - 2, 0, 0, 0), s


run([test_first_sync_stores_every_repo, test_moves_and_removal_during_a_fanned_out_sync, test_next_sync_catches_up])
