"""Discovery against a GitLab whose list page lies: an entry with a NUL character in its name or path (read as a C
string it would be stored cut short: "acme/p\\u0000x" as "acme/p", another repo's path), the same project twice on
one page (PostgreSQL refuses to write one row twice in one statement: the sync failed with "the database failed"),
an entry outside the connected group, and a page longer than the page size asked for. The bad entries are skipped
and counted, and each of those projects stored before is then read on its own and kept as GitLab has it (a project
first listed by such a page is added by the next sync); a page that breaks the page size
fails the sync with a message that says so, and nothing stored changes."""
import functools

import flows
from harness import Mrgate, run
from sim import Sim

N = 12
TOKEN = "glpat-discoveryHostile01"
sim = Sim("discovery_hostile")
sim.seed("acme", projects=N, depth=0)
sim.add_token(TOKEN, kind="group_access", scopes=["api"], access={"acme": 50})
srv = Mrgate("discovery_hostile", env={"MRGATE_GITLAB_RATE_LIMIT": "0"})
c = srv.login()
flows.connect(c, sim, "acme", TOKEN)
sync_and_wait = functools.partial(flows.sync, c, expect=None, timeout=120)
GROUP = sim.client(TOKEN).get("/api/v4/groups/acme").json()["id"]
LIST = f"/api/v4/groups/{GROUP}/projects"


def real_page():
    r = sim.client(TOKEN).get(LIST + "?include_subgroups=false&with_shared=false&per_page=100&order_by=id&sort=asc")
    assert r.status == 200, r.body
    page = r.json()
    assert len(page) == N
    return page


def stored():
    """{id: (name, path_with_namespace, namespace_full_path, status)} of every repo mrgate lists."""
    items = c.get("/api/repos?limit=200").json()["items"]
    return {i["id"]: (i["name"], i["path_with_namespace"], i["namespace_full_path"], i["status"]) for i in items}


def truth():
    return {p["id"]: (p["name"], p["path_with_namespace"], p["namespace"]["full_path"]) for p in real_page()}


def test_first_sync():
    s = sync_and_wait()
    assert s["state"] == "done" and s["repos_seen"] == N and s["new_repos"] == N and s["skipped"] == 0, s
    assert {k: v[:3] for k, v in stored().items()} == truth()


def test_lying_entries_are_skipped_and_each_project_read_on_its_own():
    page = real_page()
    page[0]["name"] = "Short\x00Hidden"                                  # a NUL in a name
    page[1]["path_with_namespace"] = page[2]["path_with_namespace"] + "\x00x"  # would read as another repo's path
    page[3]["namespace"] = dict(page[3]["namespace"], full_path="elsewhere")  # outside the connected group
    page[3]["path_with_namespace"] = "elsewhere/" + page[3]["path"]
    page[4]["path_with_namespace"] = "acme/someone-else"                # not its namespace's path and its path
    page.insert(6, dict(page[5], name="second copy"))                   # the same project twice on one page
    sim.script("GET", LIST, [{"status": 200, "body": page}])
    sim.reset_counters()
    s = sync_and_wait()
    assert s["state"] == "done", s
    assert s["skipped"] == 5, s
    assert s["repos_seen"] == N and (s["new_repos"], s["updated"], s["removed"]) == (0, 0, 0), s
    # the four projects the page lied about, not listed by this run, were read one by one and kept as GitLab has them
    assert sim.count("GET", "/api/v4/projects/:id") == 4, sim.counters()
    got = stored()
    assert {k: v[:3] for k, v in got.items()} == truth(), got
    assert all(v[3] != "removed" for v in got.values()), got
    assert "second copy" not in {v[0] for v in got.values()}


def test_a_page_longer_than_asked_fails_the_sync_and_changes_nothing():
    before = stored()
    page = real_page()
    phantoms = [dict(page[i % N], id=900000 + i, path=f"phantom-{i}", path_with_namespace=f"acme/phantom-{i}")
                for i in range(101 - N)]
    sim.script("GET", LIST, [{"status": 200, "body": page + phantoms}])
    s = sync_and_wait()
    assert s["state"] == "failed", s
    assert "101 projects on a page of 100" in (s["error"] or ""), s
    assert stored() == before


def test_the_next_honest_sync_changes_nothing():
    before = stored()
    s = sync_and_wait()
    assert s["state"] == "done" and s["skipped"] == 0 and s["repos_seen"] == N, s
    assert (s["new_repos"], s["updated"], s["removed"]) == (0, 0, 0), s
    assert stored() == before


def test_names_with_json_metacharacters_are_listed_as_gitlab_sent_them():
    # mrgate writes each repo object's JSON itself: quotes, backslashes, control characters and non-ASCII text from
    # GitLab come back exactly, in the list and in GET /api/repos/{id}
    page = real_page()
    odd = 'Quote " back \\ nl\n tab\t ctl\x01\x1f del\x7f \u00e9 \u2713 \U0001f600 </script><b>'
    page[0]["name"] = odd
    page[0]["default_branch"] = 'feat/"q"\\x'
    sim.script("GET", LIST, [{"status": 200, "body": page}])
    s = sync_and_wait()
    assert s["state"] == "done" and s["skipped"] == 0, s
    pid = page[0]["id"]
    listed = {i["id"]: i for i in c.get("/api/repos?limit=200").json()["items"]}
    one = c.get(f"/api/repos/{pid}").json()
    for row in (listed[pid], one):
        assert row["name"] == odd and row["default_branch"] == 'feat/"q"\\x', row
        assert row["path_with_namespace"] == page[0]["path_with_namespace"], row
    assert listed[pid] == one
    # and the search finds it by its odd name's path, as before
    r = c.get("/api/repos?q=" + page[0]["path"])
    assert pid in [i["id"] for i in r.json()["items"]], r.body


run([test_first_sync, test_lying_entries_are_skipped_and_each_project_read_on_its_own,
     test_a_page_longer_than_asked_fails_the_sync_and_changes_nothing, test_the_next_honest_sync_changes_nothing,
     test_names_with_json_metacharacters_are_listed_as_gitlab_sent_them])
