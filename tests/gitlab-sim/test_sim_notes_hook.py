"""Comment events and the project members API (issue 16), as GitLab documents them:
doc/user/project/integrations/webhook_events.md "Comment events" / "Comment on a merge request" (a note created or
edited fires X-Gitlab-Event: Note Hook, object_attributes.action create | update; internal notes go to
confidential_note_events hooks only) and doc/api/members.md "Get a member of a group or project, including inherited
members" (the effective level, inherited from groups; 404 for a user who is no member)."""
from harness import run
from sim import Sim
from simtest import Receiver, eq, first_project, fresh_world

sim = Sim("sim_notes_hook")
ADMIN = "glpat-admin-notes"
DEV = "glpat-notes-developer"
MAINT = "glpat-notes-maintainer"


def world():
    c = fresh_world(sim, ADMIN, 4, tier="premium")
    p = first_project(c)
    sim.add_token(DEV, access={p["path_with_namespace"]: 30}, username="dev1")
    sim.add_token(MAINT, access={"acme": 40}, username="maint1")
    return c, p


def hook(c, pid, url, **flags):
    body = {"url": url, "token": "t", "push_events": False}
    body.update(flags)
    r = c.post(f"/api/v4/projects/{pid}/hooks", body)
    eq(r.status, 201, "hook create")
    return r.json()


def note(token, pid, iid, body, internal=False, edit=None):
    gl = sim.client(token)
    base = f"/api/v4/projects/{pid}/merge_requests/{iid}/notes"
    payload = {"body": body, "internal": True} if internal else {"body": body}
    r = gl.put(f"{base}/{edit}", {"body": body}) if edit else gl.post(base, payload)
    eq(r.status, 200 if edit else 201, "note")
    sim.wait_deliveries()
    return r.json()


def test_a_note_on_a_merge_request_fires_a_comment_event():
    c, p = world()
    rx, other, conf = Receiver(), Receiver(), Receiver()
    hook(c, p["id"], rx.url, note_events=True)
    hook(c, p["id"], other.url, merge_requests_events=True)  # no note events: nothing
    hook(c, p["id"], conf.url, confidential_note_events=True)
    mr = sim.open_mr(p["id"], [{"path": "a.txt", "content": "a\n"}], notify=False)
    n = note(DEV, p["id"], mr["iid"], "/mrgate bypass because")
    [req] = rx.received()
    hd = {k.lower(): v for k, v in req["headers"].items()}
    eq(hd["x-gitlab-event"], "Note Hook", "event header")
    eq(hd["x-gitlab-token"], "t", "token header")
    b = req["body"]
    eq((b["object_kind"], b["event_type"], b["project_id"], b["project"]["id"]), ("note", "note", p["id"], p["id"]),
       "top level")
    eq((b["user"]["username"], b["user"]["email"]), ("dev1", "[REDACTED]"), "user")
    oa = b["object_attributes"]
    eq((oa["id"], oa["note"], oa["noteable_type"], oa["author_id"], oa["action"], oa["system"], oa["project_id"]),
       (n["id"], "/mrgate bypass because", "MergeRequest", b["user"]["id"], "create", False, p["id"]), "attributes")
    assert oa["url"].endswith(f"/-/merge_requests/{mr['iid']}#note_{n['id']}"), oa["url"]
    for k in ("created_at", "updated_at", "noteable_id", "line_code", "commit_id", "st_diff", "attachment"):
        assert k in oa, k
    m = b["merge_request"]
    eq((m["iid"], m["last_commit"]["id"], m["target_project_id"], m["state"]), (mr["iid"], mr["sha"], p["id"],
                                                                                 "opened"), "merge_request")
    assert "action" not in m, m
    eq(other.received(), [], "a hook without note events")
    eq(conf.received(), [], "a confidential-only hook gets no public note")
    # an edit fires again, action update (GitLab 16.11+)
    note(DEV, p["id"], mr["iid"], "edited", edit=n["id"])
    got = rx.received()
    eq([(r["body"]["object_attributes"]["action"], r["body"]["object_attributes"]["note"]) for r in got],
       [("create", "/mrgate bypass because"), ("update", "edited")], "edit")
    # an internal note goes to confidential_note_events hooks only
    note(MAINT, p["id"], mr["iid"], "internal", internal=True)
    eq(len(rx.received()), 2, "no public event for an internal note")
    [creq] = conf.received()
    eq({k.lower(): v for k, v in creq["headers"].items()}["x-gitlab-event"], "Confidential Note Hook", "header")
    eq((creq["body"]["event_type"], creq["body"]["object_attributes"]["internal"]), ("confidential_note", True),
       "confidential payload")


def test_members_all_answers_the_effective_level():
    c, p = world()
    users = {t["username"]: t["user_id"] for t in sim.tokens()}
    gl = sim.client(ADMIN)
    r = gl.get(f"/api/v4/projects/{p['id']}/members/all/{users['dev1']}")
    eq((r.status, r.json()["access_level"], r.json()["username"], r.json()["state"]), (200, 30, "dev1", "active"),
       "a direct member")
    r = sim.client(DEV).get(f"/api/v4/projects/{p['id']}/members/all/{users['maint1']}")
    eq((r.status, r.json()["access_level"]), (200, 40), "inherited from the group, read by a Developer")
    admin_user = [t["user_id"] for t in sim.tokens() if t["token"] == ADMIN][0]
    r = gl.get(f"/api/v4/projects/{p['id']}/members/all/{admin_user}")
    eq((r.status, r.json()), (404, {"message": "404 Not found"}), "an admin who is no member")
    eq(gl.get(f"/api/v4/projects/{p['id']}/members/all/999999").status, 404, "no such user")
    # another project of the group: dev1 is no member there, maint1 still is
    other = c.get("/api/v4/groups/acme/projects?include_subgroups=true&order_by=id&sort=desc&per_page=1").json()[0]
    eq(gl.get(f"/api/v4/projects/{other['id']}/members/all/{users['dev1']}").status, 404, "not a member there")
    eq(gl.get(f"/api/v4/projects/{other['id']}/members/all/{users['maint1']}").json()["access_level"], 40, "there")
    # a token that cannot see the project gets 404 Project Not Found
    r = sim.client(DEV).get(f"/api/v4/projects/{other['id']}/members/all/{users['maint1']}")
    eq((r.status, r.json()), (404, {"message": "404 Project Not Found"}), "invisible project")


run([test_a_note_on_a_merge_request_fires_a_comment_event, test_members_all_answers_the_effective_level])
