"""The simulator's REST API: GitLab's status codes, bodies, headers and entity shapes (GITLAB-API.md)."""
import datetime
import io
import tarfile
import time
import urllib.parse

from harness import run
from sim import Sim
from simtest import assert_shape, eq, first_project as first_of, fixture

sim = Sim("sim_api")
ADMIN = "glpat-admin-token-000000"
TOP = 10050


def setup_world():
    sim.reset()
    sim.add_token(ADMIN, admin=True, username="admin")
    sim.seed("acme", TOP, depth=3, fanout=4, tier="premium")


setup_world()
admin = sim.client(ADMIN)


def first_project():
    return first_of(admin)


# --- auth and scopes -----------------------------------------------------------------------------------------

def test_unknown_and_missing_token_401():
    for c in (sim.client(), sim.client("nope")):
        r = c.get("/api/v4/user")
        eq(r.status, 401, "status")
        eq(r.json(), {"message": "401 Unauthorized"}, "body")


def test_expired_and_revoked_tokens_invalid_token():
    yesterday = (datetime.date.today() - datetime.timedelta(days=1)).isoformat()
    sim.add_token("t-expired", expires_at=yesterday, access={"acme": 50})
    sim.add_token("t-revoked", revoked=True, access={"acme": 50})
    r = sim.client("t-expired").get("/api/v4/personal_access_tokens/self")
    eq(r.status, 401, "expired status")
    eq(r.json(), {"error": "invalid_token",
                  "error_description": "Token is expired. You can either do re-authorization or token refresh."},
       "expired body")
    assert 'error="invalid_token"' in (r.header("WWW-Authenticate") or ""), r.headers
    r = sim.client("t-revoked", bearer=True).get("/api/v4/user")
    eq(r.status, 401, "revoked status")
    eq(r.json()["error_description"], "Token was revoked. You have to re-authorize from the user.", "revoked")
    # A token expiring in the future still works and says so.
    later = (datetime.date.today() + datetime.timedelta(days=20)).isoformat()
    sim.add_token("t-soon", expires_at=later, access={"acme": 50})
    r = sim.client("t-soon").get("/api/v4/personal_access_tokens/self")
    eq(r.status, 200, "soon")
    eq(r.json()["expires_at"], later, "expires_at")
    eq(r.json()["active"], True, "active")


def test_read_api_token_cannot_write():
    sim.add_token("t-read", scopes=["read_api"], access={"acme": 50})
    c = sim.client("t-read")
    p = first_project()
    eq(c.get(f"/api/v4/projects/{p['id']}").status, 200, "read with read_api")
    r = c.post(f"/api/v4/projects/{p['id']}/hooks", {"url": "http://example.com/h"})
    eq(r.status, 403, "write with read_api")
    eq(r.json(), {"error": "insufficient_scope",
                  "error_description": "The request requires higher privileges than provided by the access token.",
                  "scope": "api"}, "body")
    eq(c.put(f"/api/v4/projects/{p['id']}", {"only_allow_merge_if_pipeline_succeeds": True}).status, 403, "PUT")
    # read_user only: GET /user yes, projects no; personal_access_tokens/self takes any scope.
    sim.add_token("t-user", scopes=["read_user"])
    cu = sim.client("t-user")
    eq(cu.get("/api/v4/user").status, 200, "read_user /user")
    eq(cu.get("/api/v4/personal_access_tokens/self").status, 200, "read_user pat self")
    r = cu.get("/api/v4/projects")
    eq(r.status, 403, "read_user /projects")
    eq(r.json()["error"], "insufficient_scope", "scope error")


def test_pat_self_and_user_shapes_and_bot():
    sim.add_token("t-group", kind="group_access", scopes=["api"], access={"acme": 40}, name="mrgate")
    sim.add_token("t-sa", kind="service_account", scopes=["api", "read_api"], access={"acme": 40})
    for tok, bot in (("t-group", True), ("t-sa", True), (ADMIN, False)):
        c = sim.client(tok)
        pat = c.get("/api/v4/personal_access_tokens/self").json()
        assert_shape("pat-self.json", pat, nullable={"$.last_used_at"})
        user = c.get("/api/v4/user").json()
        assert_shape("user-self.json", user,
                     nullable={"$.avatar_url", "$.public_email", "$.pronouns", "$.local_time",
                               "$.last_sign_in_at", "$.last_activity_on", "$.current_sign_in_at"})
        eq(user["bot"], bot, f"bot for {tok}")
        eq(pat["user_id"], user["id"], "user id")
    eq(sim.client("t-group").get("/api/v4/personal_access_tokens/self").json()["scopes"], ["api"], "scopes")
    assert sim.client("t-group").get("/api/v4/user").json()["username"].startswith("group_"), "bot username"


# --- groups and visibility ------------------------------------------------------------------------------------

def test_group_by_id_and_encoded_path():
    g = admin.get("/api/v4/groups/acme%2Fteam01?with_projects=false")
    eq(g.status, 200, "encoded path")
    assert_shape("group-get-with_projects-false.json", g.json(),
                 nullable={"$.avatar_url", "$.file_template_project_id"})
    eq(g.json()["full_path"], "acme/team01", "full_path")
    gid = g.json()["id"]
    eq(admin.get(f"/api/v4/groups/{gid}?with_projects=false").json()["full_path"], "acme/team01", "by id")
    r = admin.get("/api/v4/groups/acme/team01")
    eq(r.status, 404, "unencoded slash")
    r = admin.get("/api/v4/groups/nope%2Fnothing")
    eq(r.status, 404, "missing")
    eq(r.json(), {"message": "404 Group Not Found"}, "body")


def test_descendant_groups_shape_and_count():
    r = admin.get("/api/v4/groups/acme/descendant_groups?per_page=100")
    eq(r.status, 200, "status")
    eq(r.header("X-Total"), str(4 + 16 + 64), "x-total")
    assert_shape("group-descendant-groups.json", r.json(),
                 nullable={"$[0].avatar_url", "$[0].file_template_project_id", "$[0].emails_disabled"})
    assert all(g["full_path"].startswith("acme/") for g in r.json())
    r = admin.get("/api/v4/groups/acme%2Fteam02/subgroups?per_page=100")
    eq(len(r.json()), 4, "direct subgroups")


def test_visibility_404_and_role_403():
    # A token with Developer on one subgroup only.
    sim.add_token("t-dev", access={"acme/team03": 30})
    c = sim.client("t-dev")
    inside = c.get("/api/v4/groups/acme%2Fteam03/projects?include_subgroups=true&per_page=1").json()[0]
    outside = first_project()
    assert not outside["path_with_namespace"].startswith("acme/team03/")
    r = c.get(f"/api/v4/projects/{outside['id']}")
    eq(r.status, 404, "invisible project")
    eq(r.json(), {"message": "404 Project Not Found"}, "body")
    eq(c.get(f"/api/v4/projects/{urllib.parse.quote(outside['path_with_namespace'], safe='')}").status, 404,
       "invisible by path")
    eq(c.get(f"/api/v4/projects/{inside['id']}").status, 200, "visible")
    r = c.get(f"/api/v4/projects/{inside['id']}/hooks")
    eq(r.status, 403, "developer on hooks")
    eq(r.json(), {"message": "403 Forbidden"}, "403 body")
    eq(c.put(f"/api/v4/projects/{inside['id']}", {"only_allow_merge_if_pipeline_succeeds": True}).status, 403,
       "developer on settings")
    # the parent group is visible (member below it), a sibling is not
    eq(c.get("/api/v4/groups/acme").status, 200, "ancestor visible")
    eq(c.get("/api/v4/groups/acme%2Fteam01").status, 404, "sibling invisible")
    # min_access_level=40 lists nothing for a developer
    r = c.get("/api/v4/groups/acme/projects?include_subgroups=true&min_access_level=40")
    eq(r.json(), [], "min_access_level")
    eq(r.header("X-Total"), "0", "x-total 0")
    # project-level access
    sim.add_token("t-proj", access={outside["path_with_namespace"]: 40})
    cp = sim.client("t-proj")
    eq(cp.get(f"/api/v4/projects/{outside['id']}/hooks").status, 200, "maintainer via project access")
    perm = cp.get(f"/api/v4/projects/{outside['id']}").json()["permissions"]
    eq(perm["project_access"]["access_level"], 40, "project_access")
    eq(perm["group_access"], None, "group_access")


# --- project listing and pagination ---------------------------------------------------------------------------

def test_pagination_headers_small():
    r = admin.get("/api/v4/groups/acme%2Fteam01%2Fsub01/projects?per_page=3&page=2&order_by=id&sort=asc")
    eq(r.status, 200, "status")
    total = int(r.header("X-Total"))
    assert 3 < total < 10000, total
    eq(r.header("X-Page"), "2", "x-page")
    eq(r.header("X-Per-Page"), "3", "x-per-page")
    eq(r.header("X-Prev-Page"), "1", "x-prev-page")
    eq(r.header("X-Next-Page"), "3", "x-next-page")
    eq(r.header("X-Total-Pages"), str((total + 2) // 3), "x-total-pages")
    link = r.header("Link")
    for rel in ("prev", "next", "first", "last"):
        assert f'rel="{rel}"' in link, (rel, link)
    # last page: empty x-next-page, no rel=next
    last = int(r.header("X-Total-Pages"))
    r = admin.get(f"/api/v4/groups/acme%2Fteam01%2Fsub01/projects?per_page=3&page={last}")
    eq(r.header("X-Next-Page"), "", "x-next-page on last")
    assert 'rel="next"' not in r.header("Link")
    # per_page is capped at 100
    r = admin.get("/api/v4/groups/acme/projects?include_subgroups=true&per_page=500")
    eq(r.header("X-Per-Page"), "100", "per_page cap")
    eq(len(r.json()), 100, "page size")


def test_pagination_over_10050_projects_omits_totals():
    seen = set()
    page = "1"
    pages = 0
    start = time.time()
    while page:
        r = admin.get(f"/api/v4/groups/acme/projects?include_subgroups=true&archived=false&with_shared=false"
                      f"&simple=true&order_by=id&sort=asc&per_page=100&page={page}")
        eq(r.status, 200, "status")
        eq(r.header("X-Total"), None, "x-total omitted above 10,000")
        eq(r.header("X-Total-Pages"), None, "x-total-pages omitted")
        assert 'rel="last"' not in r.header("Link"), r.header("Link")
        ids = [p["id"] for p in r.json()]
        assert ids == sorted(ids), "order_by=id asc"
        seen.update(ids)
        page = r.header("X-Next-Page")
        pages += 1
    elapsed = time.time() - start
    eq(len(seen), TOP, "projects seen")
    eq(pages, 101, "pages")
    assert elapsed < 10, f"listing took {elapsed:.1f}s"
    # simple entity shape
    r = admin.get("/api/v4/groups/acme/projects?include_subgroups=true&simple=true&per_page=1")
    assert_shape("projects-list-simple.json", r.json(), nullable={"$[0].avatar_url", "$[0].namespace.avatar_url"})
    # full entity shape (Entities::Project: no permissions)
    r = admin.get("/api/v4/groups/acme/projects?include_subgroups=true&per_page=1")
    assert_shape("group-projects-list.json", r.json(), nullable={"$[0].avatar_url"})
    assert "permissions" not in r.json()[0]


def test_group_projects_filters():
    base = "/api/v4/groups/acme/projects?include_subgroups=true&per_page=100"
    r = admin.get(base + "&search=acme-00042")
    eq([p["path"] for p in r.json()], ["acme-00042"], "search")
    direct = admin.get("/api/v4/groups/acme/projects?per_page=100").json()
    assert direct and all(p["namespace"]["full_path"] == "acme" for p in direct), "without include_subgroups"
    p = admin.get(base + "&search=acme-00007").json()[0]
    sim.archive_project(p["id"])
    try:
        eq(admin.get(base + "&search=acme-00007&archived=false").json(), [], "archived=false hides")
        eq([x["id"] for x in admin.get(base + "&search=acme-00007&archived=true").json()], [p["id"]], "archived=true")
        eq(admin.get(f"/api/v4/projects/{p['id']}").json()["archived"], True, "archived flag")
    finally:
        sim.archive_project(p["id"], archived=False)
    names = [x["name"] for x in admin.get(base + "&order_by=name&sort=asc&search=acme-0001").json()]
    eq(names, sorted(names, key=str.lower), "order_by=name")
    eq(admin.get(base + "&order_by=bogus").status, 400, "bad order_by")


def test_projects_keyset_pagination():
    url = "/api/v4/projects?pagination=keyset&order_by=id&sort=asc&per_page=100&simple=true"
    seen = []
    nxt = url
    while nxt:
        r = admin.get(nxt)
        eq(r.status, 200, "status")
        eq(r.header("X-Total"), None, "no x-total")
        seen += [p["id"] for p in r.json()]
        link = r.header("Link")
        nxt = None
        if link and 'rel="next"' in link:
            nxt = link.split(">")[0].lstrip("<")
    eq(len(seen), TOP, "keyset saw all")
    eq(seen, sorted(seen), "ascending")
    eq(admin.get("/api/v4/projects?pagination=keyset&order_by=name").status, 405, "keyset needs order_by=id")


def test_group_projects_are_offset_paginated_only():
    # GET /groups/:id/projects calls paginate(), not paginate_with_strategies: offset pages whatever the client asks
    # (GITLAB-API.md 2.2 and 2.4; doc/api/rest/_index.md lists no keyset for this resource)
    url = "/api/v4/groups/acme/projects?include_subgroups=true&pagination=keyset&order_by=id&sort=asc&per_page=100"
    r = admin.get(url)
    eq(r.status, 200, "keyset asked: still 200")
    eq(r.header("X-Page"), "1", "offset headers")
    eq(r.header("X-Next-Page"), "2", "next page by number")
    link = r.header("Link") or ""
    assert "page=2" in link and "id_after" not in link, link


def test_project_get_put_settings():
    p = first_project()
    r = admin.get(f"/api/v4/projects/{p['id']}?license=true&statistics=true")
    eq(r.status, 200, "get")
    assert_shape("project-get.json", r.json(),
                 nullable={"$.avatar_url", "$.license_url", "$.license", "$.mirror_user_id",
                           "$.allow_merge_on_skipped_pipeline", "$.marked_for_deletion_at",
                           "$.marked_for_deletion_on", "$.namespace.avatar_url",
                           "$.permissions.project_access"},
                 absent={"$.owner"})  # owner is only shown for projects in a user namespace
    eq(r.json()["allow_merge_on_skipped_pipeline"], None, "never-set skipped setting reads null")
    lst = admin.get("/api/v4/projects?per_page=1").json()
    assert_shape("projects-list.json", lst, nullable={"$[0].avatar_url", "$[0].namespace.avatar_url"})
    r = admin.put(f"/api/v4/projects/{p['id']}", {"only_allow_merge_if_pipeline_succeeds": True,
                                                  "allow_merge_on_skipped_pipeline": False})
    eq(r.status, 200, "put")
    eq(r.json()["only_allow_merge_if_pipeline_succeeds"], True, "put result")
    g = admin.get(f"/api/v4/projects/{p['id']}").json()
    eq(g["only_allow_merge_if_pipeline_succeeds"], True, "read back")
    eq(g["allow_merge_on_skipped_pipeline"], False, "read back skipped")
    eq(admin.put(f"/api/v4/projects/{p['id']}", {"merge_method": "bogus"}).status, 400, "bad enum")
    eq(admin.put(f"/api/v4/projects/{p['id']}", {}).status, 400, "no params")
    eq(sim.counters()["writes"] >= 3, True, "writes counted")
    pend = sim.pending_delete(p["id"], on="2030-01-01")
    eq(pend["marked_for_deletion_on"], "2030-01-01", "control")
    eq(admin.get(f"/api/v4/projects/{p['id']}").json()["marked_for_deletion_on"], "2030-01-01", "api")
    eq(admin.get(f"/api/v4/projects/{p['id']}".replace(str(p["id"]), "999999")).json(),
       {"message": "404 Project Not Found"}, "unknown id")


# --- hooks ----------------------------------------------------------------------------------------------------

def test_project_hooks_crud():
    p = first_project()
    base = f"/api/v4/projects/{p['id']}/hooks"
    r = admin.post(base, {"url": "https://mrgate.example.com/hooks/gitlab", "token": "s3cret", "name": "mrgate",
                          "description": "gate", "merge_requests_events": True, "push_events": False,
                          "custom_headers": [{"key": "X-Extra", "value": "v"}]})
    eq(r.status, 201, "create")
    h = r.json()
    assert "token" not in h, "token never returned"
    assert_shape("project-hook.json", h, nullable={"$.custom_webhook_template"})
    eq((h["merge_requests_events"], h["push_events"], h["alert_status"], h["disabled_until"]),
       (True, False, "executable", None), "fields")
    eq(h["custom_headers"], [{"key": "X-Extra"}], "custom header keys only")
    # duplicate URLs are allowed
    eq(admin.post(base, {"url": "https://mrgate.example.com/hooks/gitlab"}).status, 201, "duplicate")
    eq(len(admin.get(base).json()), 2, "list")
    eq(admin.post(base, {"url": "not a url"}).status, 422, "invalid url")
    eq(admin.post(base, {"url": "not a url"}).json(), {"error": "Invalid url given"}, "422 body")
    eq(admin.post(base, {"push_events": True}).status, 400, "url missing")
    r = admin.put(f"{base}/{h['id']}", {"url": "https://mrgate.example.com/hooks/gitlab", "note_events": True})
    eq((r.status, r.json()["note_events"]), (200, True), "edit")
    internal = [x for x in sim.hooks() if x["id"] == h["id"]][0]
    eq(internal["token"], "s3cret", "token kept when url unchanged")
    admin.put(f"{base}/{h['id']}", {"url": "https://other.example.com/h"})
    internal = [x for x in sim.hooks() if x["id"] == h["id"]][0]
    eq(internal["token"], None, "token reset on url change")
    eq(admin.delete(f"{base}/{h['id']}").status, 204, "delete")
    r = admin.get(f"{base}/{h['id']}")
    eq((r.status, r.json()), (404, {"message": "404 Not found"}), "deleted")


def test_group_hooks_api_has_no_licence_check():
    # EE GroupPolicy: can?(:admin_group) enables admin_web_hook, no licence condition; only delivery is licensed
    sim.add_group("freeco", tier="free")
    sim.add_project("freeco", "app")
    r = admin.post("/api/v4/groups/freeco/hooks", {"url": "https://h.example.com/x"})
    eq(r.status, 201, "free tier accepts the call")
    eq(r.json()["project_events"], False, "project_events defaults to false")
    eq(admin.delete(f"/api/v4/groups/freeco/hooks/{r.json()['id']}").status, 204, "delete on free")
    r = admin.post("/api/v4/groups/acme/hooks", {"url": "https://h.example.com/x", "merge_requests_events": True})
    eq(r.status, 201, "premium")
    assert_shape("group-hook.json", r.json(), nullable={"$.custom_webhook_template", "$.name", "$.description"})
    lst = admin.get("/api/v4/groups/acme/hooks").json()
    assert_shape("group-hooks-list.json", lst, nullable={"$[0].custom_webhook_template", "$[0].name",
                                                         "$[0].description"})
    eq(admin.delete(f"/api/v4/groups/acme/hooks/{r.json()['id']}").status, 204, "delete")
    sim.add_token("t-maint", access={"acme": 40})
    eq(sim.client("t-maint").get("/api/v4/groups/acme/hooks").status, 403, "owner only")


# --- statuses ---------------------------------------------------------------------------------------------

def test_commit_statuses():
    p = first_project()
    head = sim.project(p["id"])["head_sha"]
    url = f"/api/v4/projects/{p['id']}/statuses/{head}"
    r = admin.post(url, {"state": "pending", "name": "mrgate", "description": "scanning"})
    eq(r.status, 201, "pending")
    st = r.json()
    eq((st["status"], st["ref"], st["description"]), ("pending", "main", "scanning"), "fields")
    pipeline_id = st["pipeline_id"]
    # pending -> pending is not a transition
    r = admin.post(url, {"state": "pending", "name": "mrgate"})
    eq(r.status, 400, "pending twice")
    assert r.json()["message"].startswith("Cannot transition status via :enqueue from :pending"), r.json()
    r = admin.post(url, {"state": "success", "name": "mrgate", "description": "0 new findings"})
    eq((r.status, r.json()["id"], r.json()["status"]), (201, st["id"], "success"), "same job updated")
    assert_shape("commit-status.json", r.json(), nullable={"$.coverage", "$.author.avatar_url"})
    eq(r.json()["pipeline_id"], pipeline_id, "same pipeline")
    # a finished job is not reused: a new one in the same pipeline
    r = admin.post(url, {"state": "failed", "name": "mrgate"})
    assert r.json()["id"] != st["id"]
    eq(r.json()["pipeline_id"], pipeline_id, "pipeline reused")
    lst = admin.get(f"/api/v4/projects/{p['id']}/repository/commits/{head}/statuses").json()
    eq([s["status"] for s in lst], ["failed"], "latest per name")
    assert_shape("commit-statuses-list.json", lst, nullable={"$[0].target_url", "$[0].author.avatar_url"})
    eq(len(admin.get(f"/api/v4/projects/{p['id']}/repository/commits/{head}/statuses?all=true").json()), 2, "all")
    eq(admin.post(url, {"state": "bogus"}).json(), {"error": "state does not have a valid value"}, "bad state")
    eq(admin.post(url, {}).json(), {"error": "state is missing"}, "no state")
    r = admin.post(f"/api/v4/projects/{p['id']}/statuses/{'0' * 40}", {"state": "pending"})
    eq((r.status, r.json()), (404, {"message": "404 Commit Not Found"}), "unknown sha")
    r = admin.post(url, {"state": "pending", "pipeline_id": 999999})
    eq(r.status, 404, "unknown pipeline")
    sim.add_token("t-reporter", access={p["path_with_namespace"]: 20})
    eq(sim.client("t-reporter").post(url, {"state": "pending"}).status, 403, "reporter cannot post")


# --- merge requests ---------------------------------------------------------------------------------------

def test_merge_request_diffs_notes_archive():
    p = first_project()
    old = "line 1\nline 2\nline 3\nline 4\nline 5\nline 6\nline 7\nline 8\n"
    new = "line 1\nline 2\nline 3\nline 4 changed\nline 5\nline 6\nline 7\nline 8\nline 9 added\n"
    mr = sim.open_mr(p["id"], [{"path": "app/config.py", "content": new, "old_content": old},
                               {"path": "secrets.txt", "content": "AKIA0000000000000000\n"},
                               {"path": "README.md", "content": None}], source_branch="feature-x")
    r = admin.get(f"/api/v4/projects/{p['id']}/merge_requests/{mr['iid']}")
    eq(r.status, 200, "mr get")
    m = r.json()
    assert_shape("mr-get.json", m,
                 nullable={"$.merge_after", "$.prepared_at", "$.approvals_before_merge", "$.pipeline",
                           "$.head_pipeline", "$.latest_build_started_at", "$.author.avatar_url"})
    eq((m["sha"], m["source_branch"], m["state"], m["diff_refs"]["head_sha"]),
       (mr["sha"], "feature-x", "opened", mr["sha"]), "mr fields")
    r = admin.get(f"/api/v4/projects/{p['id']}/merge_requests/{mr['iid']}/diffs?per_page=2")
    eq((r.status, r.header("X-Total"), len(r.json())), (200, "3", 2), "diffs paginated")
    diffs = r.json() + admin.get(f"/api/v4/projects/{p['id']}/merge_requests/{mr['iid']}/diffs?per_page=2&page=2").json()
    assert_shape("mr-diffs.json", diffs)
    by = {d["new_path"]: d for d in diffs}
    eq(by["app/config.py"]["diff"],
       "@@ -1,8 +1,9 @@\n line 1\n line 2\n line 3\n-line 4\n+line 4 changed\n line 5\n line 6\n line 7\n"
       " line 8\n+line 9 added\n", "unified diff")
    eq((by["secrets.txt"]["new_file"], by["secrets.txt"]["diff"]), (True, "@@ -0,0 +1 @@\n+AKIA0000000000000000\n"),
       "new file")
    eq(by["README.md"]["deleted_file"], True, "deleted")
    assert by["README.md"]["diff"].startswith("@@ -1,3 +0,0 @@\n-# "), by["README.md"]["diff"]
    # push: update with oldrev, diff follows
    pushed = sim.push_mr(p["id"], mr["iid"], [{"path": "secrets.txt", "content": "clean\n"}])
    eq(pushed["oldrev"], mr["sha"], "oldrev")
    assert pushed["sha"] != mr["sha"]
    d2 = admin.get(f"/api/v4/projects/{p['id']}/merge_requests/{mr['iid']}/diffs").json()
    eq({d["new_path"]: d["diff"] for d in d2}["secrets.txt"], "@@ -0,0 +1 @@\n+clean\n", "diff after push")
    # notes
    notes = f"/api/v4/projects/{p['id']}/merge_requests/{mr['iid']}/notes"
    r = admin.post(notes, {"body": "mrgate: 1 finding"})
    eq(r.status, 201, "note create")
    assert_shape("mr-note.json", r.json(), nullable={"$.author.avatar_url"})
    nid = r.json()["id"]
    r = admin.put(f"{notes}/{nid}", {"body": "mrgate: 0 findings"})
    eq((r.status, r.json()["body"]), (200, "mrgate: 0 findings"), "note edit")
    eq([n["body"] for n in admin.get(notes).json()], ["mrgate: 0 findings"], "note list")
    sim.add_token("t-other", access={"acme": 40})
    eq(sim.client("t-other").put(f"{notes}/{nid}", {"body": "x"}).status, 403, "edit someone else's note")
    eq(admin.post(notes, {}).json(), {"error": "body is missing"}, "note without body")
    # archive of the head sha
    r = admin.get(f"/api/v4/projects/{p['id']}/repository/archive.tar.gz?sha={pushed['sha']}")
    eq(r.status, 200, "archive")
    with tarfile.open(fileobj=io.BytesIO(r.body), mode="r:gz") as tf:
        files = {m.name.split("/", 1)[1]: tf.extractfile(m).read().decode() for m in tf.getmembers() if m.isfile()}
    eq(files, {"app/config.py": new, "secrets.txt": "clean\n"}, "archive contents")
    # as git archive makes it (GitLab runs git archive): a pax global header with the commit id, every directory,
    # modes after tar.umask 002 (0664, 0775 executable), symlinks as links
    pushed2 = sim.push_mr(p["id"], mr["iid"], [{"path": "bin/run.sh", "content": "#!/bin/sh\n", "mode": "100755"},
                                               {"path": "passwd", "content": "/etc/passwd", "mode": "120000"}])
    r = admin.get(f"/api/v4/projects/{p['id']}/repository/archive.tar.gz?sha={pushed2['sha']}")
    with tarfile.open(fileobj=io.BytesIO(r.body), mode="r:gz") as tf:
        eq(tf.pax_headers, {"comment": pushed2["sha"]}, "pax global header")
        ms = tf.getmembers()
        top = f"{p['path']}-{pushed2['sha']}-{pushed2['sha']}"
        eq((ms[0].name, ms[0].isdir(), ms[0].mode), (top, True, 0o775), "top directory first")
        by_name = {m.name.split("/", 1)[1]: m for m in ms[1:]}
        eq({n for n, m in by_name.items() if m.isdir()}, {"app", "bin"}, "directories")
        eq((by_name["bin/run.sh"].mode, by_name["app/config.py"].mode), (0o775, 0o664), "modes")
        eq((by_name["passwd"].issym(), by_name["passwd"].linkname), (True, "/etc/passwd"), "symlink")
        eq((by_name["app/config.py"].uname, by_name["app/config.py"].uid), ("root", 0), "owner")
    # unknown MR
    eq(admin.get(f"/api/v4/projects/{p['id']}/merge_requests/999").json(), {"message": "404 Not found"}, "404 mr")
    # reopen needs closed
    sim.close_mr(p["id"], mr["iid"])
    eq(admin.get(f"/api/v4/projects/{p['id']}/merge_requests?state=closed").json()[0]["iid"], mr["iid"], "closed")
    sim.reopen_mr(p["id"], mr["iid"])
    eq(admin.get(f"/api/v4/projects/{p['id']}/merge_requests/{mr['iid']}").json()["state"], "opened", "reopened")


def test_group_merge_requests():
    # doc/api/merge_requests.md "List group merge requests": subgroups' projects included, state filter,
    # non_archived (default true) leaves archived projects out, counted under its own route
    sim.add_group("gmr")
    sim.add_group("gmr/sub")
    a = sim.add_project("gmr", "a", notify=False)
    b = sim.add_project("gmr/sub", "b", notify=False)
    ma = sim.open_mr(a["id"], [{"path": "x.py", "content": "x = 1\n"}], notify=False)
    mb = sim.open_mr(b["id"], [{"path": "y.py", "content": "y = 1\n"}], notify=False)
    sim.close_mr(a["id"], ma["iid"])
    sim.reset_counters()
    r = admin.get("/api/v4/groups/gmr/merge_requests?state=opened&per_page=100")
    eq(r.status, 200, "status")
    eq([(m["project_id"], m["iid"], m["sha"]) for m in r.json()], [(b["id"], mb["iid"], mb["sha"])], "opened only")
    eq(sim.counters()["by_route"].get("GET /api/v4/groups/:id/merge_requests"), 1, "counted by route")
    eq(len(admin.get("/api/v4/groups/gmr/merge_requests?state=all").json()), 2, "state=all")
    sim.archive_project(b["id"])
    eq(admin.get("/api/v4/groups/gmr/merge_requests?state=opened").json(), [], "archived left out")
    eq(len(admin.get("/api/v4/groups/gmr/merge_requests?state=opened&non_archived=false").json()), 1, "non_archived")
    eq(admin.get("/api/v4/groups/gmr/merge_requests?state=open").status, 400, "bad state")


def test_counters_by_template():
    sim.reset_counters()
    p = first_project()
    admin.get(f"/api/v4/projects/{p['id']}")
    admin.get(f"/api/v4/projects/{urllib.parse.quote(p['path_with_namespace'], safe='')}")
    c = sim.counters()
    eq(c["by_route"].get("GET /api/v4/projects/:id"), 2, "by template")
    eq(c["by_route"].get("GET /api/v4/groups/:id/projects"), 1, "first_project call")
    eq((c["total"], c["writes"]), (3, 0), "totals")


# --- listings follow every change ---------------------------------------------------------------------------

def listed(client, url):
    """Every page of an offset listing: the ids in order and the first page's X-Total."""
    ids, total, page = [], None, 1
    while page:
        r = client.get(f"{url}&page={page}")
        eq(r.status, 200, f"{url} page {page}")
        total = total if total is not None else r.header("X-Total")
        ids += [p["id"] for p in r.json()]
        page = int(r.header("X-Next-Page") or 0)
    return ids, int(total)


def test_listings_follow_every_change():
    # A listing's result is cached per token, filter, order and model version, and its projects are written as text
    # rather than json-c trees (sim_api.c, sim_render.c): every change, through the API or the control plane, must
    # show on the very next page, totals included. Every listing below is read before each change too, so a stale
    # cache entry would be there to be (wrongly) used. (simtest.py runs the simulator with GITLAB_SIM_CHECK_RENDER=1:
    # every listed project is also rendered the slow way and compared byte for byte.)
    sim.add_group("lc/a")
    sim.add_group("lc/b")
    ids = [sim.add_project("lc/a", f"p{i}", notify=False)["id"] for i in range(5)]
    a = "/api/v4/groups/lc%2Fa/projects?per_page=2&order_by="
    urls = {"a": a + "id&sort=asc", "b": "/api/v4/groups/lc%2Fb/projects?order_by=id&sort=asc&per_page=2",
            "lc": "/api/v4/groups/lc/projects?include_subgroups=true&order_by=id&sort=asc&per_page=100",
            "simple": a + "id&sort=asc&simple=true", "name": a + "name&sort=asc", "activity": a + "last_activity_at",
            "unarchived": a + "id&sort=asc&archived=false", "archived": a + "id&sort=asc&archived=true",
            "active": a + "id&sort=asc&active=true", "search": "/api/v4/projects?search=renamed&order_by=id&per_page=2"}

    def lists(client=admin):
        return {k: listed(client, u) for k, u in urls.items()}

    before = lists()
    eq((before["a"], before["b"], before["search"]), ((ids, 5), ([], 0), ([], 0)), "before")
    # the API: a rename, settings and a description json-c must escape
    weird = 'Renamed "quoted" \\ back/slash é\n\t\x01 😀'
    r = admin.put(f"/api/v4/projects/{ids[3]}", {"name": weird, "description": weird,
                                                 "only_allow_merge_if_pipeline_succeeds": True,
                                                 "merge_requests_enabled": False})
    eq(r.status, 200, "put")
    now = lists()
    eq((now["search"], now["name"]), (([ids[3]], 1), (ids[:3] + [ids[4], ids[3]], 5)), "found and ordered by name")
    for url in (urls["a"] + "&page=2", urls["simple"] + "&page=2", urls["search"]):
        p = admin.get(url).json()[-1]
        eq((p["id"], p["name"], p["description"]), (ids[3], weird, weird), f"renamed in {url}")
        eq(p["name_with_namespace"], f"Lc / A / {weird}", "name_with_namespace")
    p = admin.get(urls["a"] + "&page=2").json()[-1]
    eq((p["only_allow_merge_if_pipeline_succeeds"], p["merge_requests_enabled"]), (True, False), "settings")
    eq(p["description_html"], f'<p dir="auto">{weird}</p>', "description_html")
    # the API: a status post is activity
    head = sim.project(ids[4])["head_sha"]
    eq(admin.post(f"/api/v4/projects/{ids[4]}/statuses/{head}", {"state": "success", "name": "lc"}).status, 201, "st")
    eq(lists()["activity"][0][:2], [ids[4], ids[3]], "most recent activity first")
    # the control plane: archive, pending deletion, transfer, deletion, creation
    sim.archive_project(ids[1])
    now = lists()
    eq((now["unarchived"], now["archived"]), (([ids[0]] + ids[2:], 4), ([ids[1]], 1)), "archived")
    eq([p["archived"] for p in admin.get(urls["lc"]).json()], [False, True, False, False, False], "archived flag")
    sim.pending_delete(ids[2], on="2031-01-01")
    eq(lists()["active"], ([ids[0], ids[3], ids[4]], 3), "active=true")
    eq(admin.get(urls["lc"]).json()[2]["marked_for_deletion_on"], "2031-01-01", "marked_for_deletion_on")
    sim.transfer_project(ids[3], "lc/b")
    now = lists()
    eq((now["a"], now["b"], now["lc"]), (([ids[0], ids[1], ids[2], ids[4]], 4), ([ids[3]], 1), (ids, 5)), "moved")
    moved = admin.get(urls["b"]).json()[0]
    eq((moved["path_with_namespace"], moved["namespace"]["full_path"]), ("lc/b/p3", "lc/b"), "moved paths")
    sim.remove_project(ids[4])
    eq(lists()["a"], (ids[:3], 3), "deleted")
    new = sim.add_project("lc/a", "p9", notify=False)["id"]
    now = lists()
    eq((now["a"], now["lc"]), ((ids[:3] + [new], 4), (ids[:4] + [new], 5)), "created")
    # a change between two pages of one listing
    r = admin.get(urls["a"] + "&page=1")
    eq((r.header("X-Total"), r.header("X-Total-Pages")), ("4", "2"), "page 1 totals")
    sim.remove_project(ids[0])
    r = admin.get(urls["a"] + "&page=2")
    eq((r.header("X-Total"), r.header("X-Total-Pages"), r.header("X-Next-Page")), ("3", "2", ""), "page 2 totals")
    eq([p["id"] for p in r.json()], [new], "page 2 of the new world")
    # a token's access, changed through the control plane (the token keeps its value, and its place in memory)
    sim.add_token("t-lc", access={"lc/b": 30})
    member = sim.client("t-lc")
    eq(listed(member, urls["lc"]), ([ids[3]], 1), "member of lc/b")
    eq(listed(member, urls["lc"] + "&min_access_level=30"), ([ids[3]], 1), "min_access_level")
    eq(member.get(urls["a"]).status, 404, "lc/a hidden")
    sim.add_token("t-lc", access={"lc/b": 30, "lc/a": 20})
    eq(listed(member, urls["lc"]), ([ids[1], ids[2], ids[3], new], 4), "member of both")
    eq(listed(member, urls["lc"] + "&min_access_level=30"), ([ids[3]], 1), "min_access_level still")
    # a reset: nothing of the old world is listed again, even to a token with the same value
    eq(listed(admin, urls["search"]), ([ids[3]], 1), "before reset")
    try:
        sim.reset()
        sim.add_token(ADMIN, admin=True, username="admin")
        eq(listed(admin, urls["search"]), ([], 0), "after reset")
        eq(admin.get(urls["a"]).status, 404, "group gone")
        sim.add_group("lc/a")
        eq(listed(admin, urls["a"]), ([], 0), "a new lc/a is empty")
    finally:
        setup_world()

def test_pages_written_side_by_side_with_changes():
    # A page of 20 or more projects is written without the model's lock, beside other requests, as GitLab answers
    # them side by side; whatever changes projects, groups or tokens waits until no page is being written
    # (sim_api.c, reply_projects_page). Readers page through acme while writers rename projects and change their
    # settings through the API and a token's access through the control plane. GITLAB_SIM_CHECK_RENDER (simtest.py)
    # renders every listed project again as a tree once the lock is held again and aborts on a difference, so a page
    # that read a project in the middle of a change would take the simulator down.
    import threading
    base = "/api/v4/groups/acme/projects?include_subgroups=true&order_by=id&sort=asc&per_page=100"
    ids = [p["id"] for p in admin.get(base + "&page=1").json()[:40]]
    sim.reset_counters()
    errors, done = [], threading.Event()
    pages = [0] * 3

    def reader(k):
        c, page = sim.client(ADMIN), 1 + k
        while not done.is_set():
            r = c.get(f"{base}&page={page}")
            if r.status != 200 or len(r.json()) != 100:
                errors.append(f"page {page}: {r.status} {r.body[:200]!r}")
                return
            pages[k] += 1
            page = page % 12 + 1

    def writer(k):
        c = sim.client(ADMIN)
        for rnd in range(4):
            for pid in ids[k * 10:(k + 1) * 10]:
                r = c.put(f"/api/v4/projects/{pid}", {"name": f"side-{k}-{rnd}", "description": f'd "{rnd}"\n',
                                                      "only_allow_merge_if_pipeline_succeeds": rnd % 2 == 0})
                if r.status != 200:
                    errors.append(f"put {pid}: {r.status} {r.body[:200]!r}")

    def access():
        for rnd in range(20):
            sim.add_token("t-side", access={"acme": 30 if rnd % 2 else 40})

    readers = [threading.Thread(target=reader, args=(k,)) for k in range(3)]
    writers = [threading.Thread(target=writer, args=(k,)) for k in range(4)] + [threading.Thread(target=access)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join(120)
    done.set()
    for t in readers:
        t.join(60)
    eq(errors, [], "every page and write answered")
    eq(min(pages) > 0, True, f"each reader read pages: {pages}")
    c = sim.counters()
    # every page of 100 was written without the lock (none of these projects has a value json-c must write)
    eq(c["pages_unlocked"], c["by_route"]["GET /api/v4/groups/:id/projects"], "pages written without the lock")
    eq(c["peak_renders"] >= 1, True, "renders counted")
    # what the writers left is what the next page shows
    got = {p["id"]: p for p in admin.get(base + "&page=1").json()}
    for k in range(4):
        for pid in ids[k * 10:(k + 1) * 10]:
            eq((got[pid]["name"], got[pid]["description"], got[pid]["only_allow_merge_if_pipeline_succeeds"]),
               (f"side-{k}-3", 'd "3"\n', False), f"project {pid}")
    member = sim.client("t-side")
    eq((len(member.get(base + "&page=1&min_access_level=30").json()),
        len(member.get(base + "&page=1&min_access_level=40").json())), (100, 0), "the token's last access")


run([test_unknown_and_missing_token_401, test_expired_and_revoked_tokens_invalid_token,
     test_read_api_token_cannot_write, test_pat_self_and_user_shapes_and_bot, test_group_by_id_and_encoded_path,
     test_descendant_groups_shape_and_count, test_visibility_404_and_role_403, test_pagination_headers_small,
     test_pagination_over_10050_projects_omits_totals, test_group_projects_filters, test_projects_keyset_pagination, test_group_projects_are_offset_paginated_only,
     test_project_get_put_settings, test_project_hooks_crud, test_group_hooks_api_has_no_licence_check, test_commit_statuses,
     test_merge_request_diffs_notes_archive, test_group_merge_requests, test_counters_by_template,
     test_listings_follow_every_change, test_pages_written_side_by_side_with_changes])
