"""Where GitLab is strict (issue 19; sources in tests/gitlab-sim/README.md "Strictness"): diff limits, per-endpoint
429s, local hook URLs, addressable target URLs, quick actions, the per-commit status lock, the asynchronous merge
check, members/all for an admin, integer paging parameters, notes on archived projects."""
import threading
import time

from harness import run
from sim import Sim
from simtest import eq

sim = Sim("sim_strict", local_hooks=False)
ADMIN = "glpat-admin-strict-0001"
BOT = "glpat-bot-strict-0001"
LIMIT_BODY = {"message": {"error": "This endpoint has been requested too many times. Try again later."}}


def fresh():
    sim.reset()
    sim.add_token(ADMIN, admin=True, username="admin")
    sim.add_token(BOT, access={"acme": 40}, username="bot", bot=True)
    sim.add_group("acme", tier="premium")
    p = sim.add_project("acme", "app", files=[{"path": "README.md", "content": "# app\n"}])
    return p["id"]


# --- 1. diff limits ------------------------------------------------------------------------------------------------

def all_diffs(c, pid, iid):
    out, page = [], 1
    while True:
        r = c.get(f"/api/v4/projects/{pid}/merge_requests/{iid}/diffs?per_page=100&page={page}")
        eq(r.status, 200, "diffs page")
        out += r.json()
        if not r.header("X-Next-Page"):
            return out
        page = int(r.header("X-Next-Page"))


def test_defaults_are_gitlabs():
    fresh()
    st = sim.settings()
    eq((st["diff_max_files"], st["diff_max_lines"], st["diff_max_patch_bytes"]), (1000, 50000, 204800), "diff limits")
    eq(st["allow_local_requests_from_web_hooks_and_services"], False, "local requests")
    eq((st["archive_per_minute"], st["project_get_per_minute"], st["group_get_per_minute"],
        st["group_projects_per_minute"], st["notes_create_per_minute"]), (5, 400, 400, 600, 60), "rate limits")
    r = sim.client().post("/__sim/settings", {"diff_max_files": "many"})
    eq(r.status, 400, "bad setting")
    r = sim.client().post("/__sim/settings", {"nonsense": 1})
    eq(r.status, 400, "unknown setting")


def test_mr_over_1000_files_overflows():
    pid = fresh()
    files = [{"path": f"f/{i:04d}.txt", "content": f"line {i}\n"} for i in range(1001)]
    mr = sim.open_mr(pid, files)
    c = sim.client(BOT)
    m = c.get(f"/api/v4/projects/{pid}/merge_requests/{mr['iid']}").json()
    eq(m["changes_count"], "1000+", "changes_count says the diff overflowed")
    diffs = all_diffs(c, pid, mr["iid"])
    eq(len(diffs), 1000, "the 1,001st file is not in the diffs")
    eq(diffs[-1]["new_path"], "f/0999.txt", "last kept file")
    ch = c.get(f"/api/v4/projects/{pid}/merge_requests/{mr['iid']}/changes").json()
    eq((ch["overflow"], len(ch["changes"])), (True, 1000), "changes overflow")
    # the repository compare has the same limits: compare_timeout is the overflow
    cmp = c.get(f"/api/v4/projects/{pid}/repository/compare?from={mr['base_sha']}&to={mr['sha']}").json()
    eq((cmp["compare_timeout"], len(cmp["diffs"])), (True, 1000), "compare overflow")
    # a smaller MR is whole
    mr2 = sim.open_mr(pid, files[:3])
    m2 = c.get(f"/api/v4/projects/{pid}/merge_requests/{mr2['iid']}").json()
    eq(m2["changes_count"], "3", "no overflow")


def test_line_limit_and_too_large_file():
    pid = fresh()
    sim.settings(diff_max_lines=50)
    files = [{"path": f"a{i}.txt", "content": "x\n" * 20} for i in range(4)]
    mr = sim.open_mr(pid, files)
    c = sim.client(BOT)
    diffs = all_diffs(c, pid, mr["iid"])
    # each diff is 21 lines (hunk header + 20): 21, 42, then 63 >= 50 discards the third and stops
    eq([d["new_path"] for d in diffs], ["a0.txt", "a1.txt"], "line limit")
    eq(c.get(f"/api/v4/projects/{pid}/merge_requests/{mr['iid']}").json()["changes_count"], "2+", "count")
    sim.settings(diff_max_lines=50000)
    big = "k" * 300 + "\n"
    mr = sim.open_mr(pid, [{"path": "small.txt", "content": "ok\n"},
                           {"path": "big.txt", "content": big * 800}])  # ~240 KB patch >= 200 KiB
    diffs = {d["new_path"]: d for d in all_diffs(c, pid, mr["iid"])}
    eq((diffs["big.txt"]["too_large"], diffs["big.txt"]["diff"]), (True, ""), "too large: empty diff")
    eq(diffs["small.txt"]["too_large"], False, "small file whole")
    assert diffs["small.txt"]["diff"].startswith("@@"), diffs["small.txt"]


# --- 2. per-endpoint limits ---------------------------------------------------------------------------------------

def test_archive_limit_is_per_project_and_json_without_headers():
    pid = fresh()
    other = sim.add_project("acme", "other", files=[{"path": "a", "content": "b\n"}])["id"]
    c = sim.client(BOT)
    for i in range(5):
        eq(c.get(f"/api/v4/projects/{pid}/repository/archive.tar.gz").status, 200, f"archive {i + 1}")
    r = c.get(f"/api/v4/projects/{pid}/repository/archive.tar.gz")
    eq((r.status, r.json()), (429, LIMIT_BODY), "6th archive of one project in a minute")
    for h in ("Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Name"):
        eq(r.header(h), None, f"no {h} on a per-endpoint 429")
    eq(c.get(f"/api/v4/projects/{other}/repository/archive.tar.gz").status, 200, "another project is not limited")
    eq(c.get(f"/api/v4/projects/{pid}").status, 200, "other endpoints of the project flow")
    eq(sim.client(ADMIN).get(f"/api/v4/projects/{pid}/repository/archive.tar.gz").status, 200, "another user")


def test_project_group_and_note_limits():
    pid = fresh()
    sim.settings(project_get_per_minute=3, group_get_per_minute=2, group_projects_per_minute=2,
                 notes_create_per_minute=1)
    c = sim.client(BOT)
    eq([c.get(f"/api/v4/projects/{pid}").status for _ in range(4)], [200, 200, 200, 429], "GET /projects/:id")
    eq([c.get("/api/v4/groups/acme").status for _ in range(3)], [200, 200, 429], "GET /groups/:id")
    eq([c.get("/api/v4/groups/acme/projects").status for _ in range(3)], [200, 200, 429], "GET /groups/:id/projects")
    mr = sim.open_mr(pid, [{"path": "x", "content": "y\n"}])
    url = f"/api/v4/projects/{pid}/merge_requests/{mr['iid']}/notes"
    eq([c.post(url, {"body": "hi"}).status for _ in range(2)], [201, 429], "note creation")
    r = c.get(f"/api/v4/projects/{pid}")
    eq(r.json(), LIMIT_BODY, "JSON body")


# --- 3. local hook URLs ---------------------------------------------------------------------------------------------

def test_local_hook_urls_refused_unless_allowed():
    pid = fresh()
    c = sim.client(BOT)
    for url in ("http://127.0.0.1:8080/hooks/gitlab", "http://localhost/h", "http://10.1.2.3/h",
                "http://192.168.0.5/h", "http://172.20.0.1/h", "http://169.254.169.254/h", "http://[::1]:80/h",
                "http://0.0.0.0/h"):
        r = c.post(f"/api/v4/projects/{pid}/hooks", {"url": url, "merge_requests_events": True})
        eq((r.status, r.json()), (422, {"error": "Invalid url given"}), url)
    r = c.post(f"/api/v4/projects/{pid}/hooks", {"url": "https://mrgate.example.com/hooks/gitlab"})
    eq(r.status, 201, "public URL")
    hook = r.json()["id"]
    r = c.put(f"/api/v4/projects/{pid}/hooks/{hook}", {"url": "http://127.0.0.1/x"})
    eq(r.status, 422, "edit to a local URL")
    r = sim.client(ADMIN).post("/api/v4/groups/acme/hooks", {"url": "http://127.0.0.1/x"})
    eq(r.status, 422, "group hook")
    sim.settings(allow_local_requests_from_web_hooks_and_services=True)
    eq(c.post(f"/api/v4/projects/{pid}/hooks", {"url": "http://127.0.0.1:8080/h"}).status, 201, "allowed")
    # reset returns to GitLab's default; the command-line flag turns it on at start
    sim.reset()
    eq(sim.settings()["allow_local_requests_from_web_hooks_and_services"], False, "reset")
    lax = Sim("sim_strict_lax")  # local_hooks=True: --allow-local-hooks
    eq(lax.settings()["allow_local_requests_from_web_hooks_and_services"], True, "flag")
    lax.reset()
    eq(lax.settings()["allow_local_requests_from_web_hooks_and_services"], True, "flag survives reset")
    lax.stop()


# --- 4. target_url ---------------------------------------------------------------------------------------------------

def test_status_target_url_must_be_addressable():
    pid = fresh()
    head = sim.project(pid)["head_sha"]
    c = sim.client(BOT)
    url = f"/api/v4/projects/{pid}/statuses/{head}"
    for bad in ("127.0.0.1:8080/#/gates/1", "mrgate/#/gates/1", "ftp://x/y", "http:///nohost", "http://a b/"):
        r = c.post(url, {"state": "pending", "name": "t", "target_url": bad})
        eq((r.status, r.json()), (400, {"message": {"target_url": ["must be a valid URL"]}}), bad)
    eq(sim.statuses(project_id=pid), [], "nothing stored")
    r = c.post(url, {"state": "pending", "name": "t", "target_url": "http://127.0.0.1:8080/#/gates/1"})
    eq(r.status, 201, "addressable")


# --- 5. quick actions ----------------------------------------------------------------------------------------------

def test_quick_actions_in_notes():
    pid = fresh()
    c = sim.client(BOT)
    mr = sim.open_mr(pid, [{"path": "x", "content": "y\n"}])
    notes = f"/api/v4/projects/{pid}/merge_requests/{mr['iid']}/notes"
    time.sleep(0.4)  # past the mergeability check
    c.get(f"/api/v4/projects/{pid}/merge_requests/{mr['iid']}")
    time.sleep(0.4)
    eq(c.post(notes, {"body": "looks good\n/approve"}).status, 201, "approve note")
    eq(len(sim.mr(pid, mr["iid"])["approved_by"]), 1, "approved by the note's author")
    eq(c.post(notes, {"body": "text\n```\n/merge\n```"}).status, 201, "fenced")
    eq(sim.mr(pid, mr["iid"])["state"], "opened", "a fenced /merge is text")
    eq(c.post(notes, {"body": "a /merge in a line is text"}).status, 201, "mid-line")
    eq(c.post(notes, {"body": "/merge"}).status, 201, "merge without the head sha")
    eq(sim.mr(pid, mr["iid"])["state"], "opened", "/merge through the API needs merge_request_diff_head_sha")
    r = c.post(notes, {"body": "ship it\n/merge", "merge_request_diff_head_sha": mr["sha"]})
    eq(r.status, 201, "merge note")
    eq(sim.mr(pid, mr["iid"])["state"], "merged", "merged by a quick action")
    got = [n["quick_actions"] for n in sim.notes(project_id=pid, iid=mr["iid"])]
    eq(got, [["approve"], [], [], [], ["merge"]], "recorded")
    # an edit runs them too (Notes::UpdateService)
    mr = sim.open_mr(pid, [{"path": "z", "content": "y\n"}])
    n = c.post(f"/api/v4/projects/{pid}/merge_requests/{mr['iid']}/notes", {"body": "plain"}).json()
    c.put(f"/api/v4/projects/{pid}/merge_requests/{mr['iid']}/notes/{n['id']}", {"body": "edited\n/approve"})
    eq(len(sim.mr(pid, mr["iid"])["approved_by"]), 1, "approved by an edit")


# --- 7. status lock, merge check, members/all, per_page, archived notes ----------------------------------------------

def test_concurrent_status_posts_on_one_commit_conflict():
    pid = fresh()
    head = sim.project(pid)["head_sha"]
    sim.settings(status_lock_ms=1500, status_lock_wait_ms=500)
    results = []

    def post(name):
        r = sim.client(BOT).post(f"/api/v4/projects/{pid}/statuses/{head}", {"state": "pending", "name": name})
        results.append((r.status, r.json()))
    threads = [threading.Thread(target=post, args=(f"s{i}",)) for i in range(3)]
    for t in threads:
        t.start()
        time.sleep(0.05)
    for t in threads:
        t.join()
    codes = sorted(s for s, _ in results)
    eq(codes, [201, 409, 409], "one post holds the per-commit lock, the others give up")
    eq([b for s, b in results if s == 409][0], {"message": "Another update to this commit status is in progress"},
       "409 body")
    eq(len(sim.statuses(project_id=pid)), 1, "only the winner is stored")
    # one after the other there is no conflict
    for name in ("a", "b"):
        eq(sim.client(BOT).post(f"/api/v4/projects/{pid}/statuses/{head}",
                                {"state": "pending", "name": name}).status, 201, name)


def test_merge_status_is_asynchronous():
    pid = fresh()
    sim.settings(merge_check_ms=500)
    c = sim.client(BOT)
    mr = sim.open_mr(pid, [{"path": "x", "content": "y\n"}])
    url = f"/api/v4/projects/{pid}/merge_requests/{mr['iid']}"
    eq(c.get(url).json()["detailed_merge_status"], "unchecked", "right after the push")
    eq(c.get(url).json()["detailed_merge_status"], "checking", "the GET started the check")
    time.sleep(0.6)
    eq(c.get(url).json()["detailed_merge_status"], "mergeable", "checked")
    sim.push_mr(pid, mr["iid"], [{"path": "x", "content": "z\n"}])
    eq(c.get(url).json()["detailed_merge_status"], "unchecked", "a push starts over")


def test_members_all_404_for_admin_non_member():
    fresh()
    c = sim.client(ADMIN)
    me = c.get("/api/v4/user").json()
    eq(me.get("is_admin"), True, "admins see is_admin")
    gid = c.get("/api/v4/groups/acme").json()["id"]
    r = c.get(f"/api/v4/groups/{gid}/members/all/{me['id']}")
    eq((r.status, r.json()), (404, {"message": "404 Not found"}), "an admin is not a member")
    bot = sim.client(BOT)
    bid = bot.get("/api/v4/user").json()["id"]
    eq(bot.get(f"/api/v4/groups/{gid}/members/all/{bid}").json()["access_level"], 40, "a member")
    eq("is_admin" in bot.get("/api/v4/user").json(), False, "no is_admin for others")


def test_garbage_per_page_is_400():
    fresh()
    c = sim.client(BOT)
    for q, err in (("per_page=abc", "per_page is invalid"), ("page=x", "page is invalid"),
                   ("per_page=1.5", "per_page is invalid")):
        r = c.get(f"/api/v4/groups/acme/projects?{q}")
        eq((r.status, r.json()), (400, {"error": err}), q)
    eq(c.get("/api/v4/groups/acme/projects?per_page=5").status, 200, "an integer")


def test_notes_on_archived_projects_refused():
    pid = fresh()
    c = sim.client(BOT)
    mr = sim.open_mr(pid, [{"path": "x", "content": "y\n"}])
    url = f"/api/v4/projects/{pid}/merge_requests/{mr['iid']}/notes"
    n = c.post(url, {"body": "before"}).json()
    sim.archive_project(pid)
    eq(c.post(url, {"body": "after"}).status, 403, "create")
    eq(c.put(f"{url}/{n['id']}", {"body": "edit"}).status, 403, "edit")
    head = sim.project(pid)["head_sha"]
    eq(c.post(f"/api/v4/projects/{pid}/statuses/{head}", {"state": "pending"}).status, 403, "status")


if __name__ == "__main__":
    run([test_defaults_are_gitlabs, test_mr_over_1000_files_overflows, test_line_limit_and_too_large_file,
         test_archive_limit_is_per_project_and_json_without_headers, test_project_group_and_note_limits,
         test_local_hook_urls_refused_unless_allowed, test_status_target_url_must_be_addressable,
         test_quick_actions_in_notes, test_concurrent_status_posts_on_one_commit_conflict,
         test_merge_status_is_asynchronous, test_members_all_404_for_admin_non_member,
         test_garbage_per_page_is_400, test_notes_on_archived_projects_refused])
