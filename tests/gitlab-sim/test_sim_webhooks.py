"""Webhook delivery: payload shapes, GitLab's headers, the 4/40 consecutive-failure rule, redelivery."""
import time

from harness import run
from sim import Sim
from simtest import Receiver, assert_shape, eq, first_project, fresh_world

sim = Sim("sim_webhooks")
ADMIN = "glpat-admin-hooks"


def fresh():
    return fresh_world(sim, ADMIN, 20, tier="premium")


def add_hook(c, pid, url, token="hook-secret", **flags):
    body = {"url": url, "token": token, "merge_requests_events": True, "push_events": False}
    body.update(flags)
    r = c.post(f"/api/v4/projects/{pid}/hooks", body)
    eq(r.status, 201, "hook create")
    return r.json()


def hooked(status=200):
    """A fresh world whose first project has a hook (add_hook) to a new Receiver answering status."""
    c = fresh()
    rx = Receiver(status=status)
    p = first_project(c)
    return c, rx, p, add_hook(c, p["id"], rx.url)


def test_mr_open_delivers_documented_payload_and_headers():
    c, rx, p, h = hooked()
    add_hook(c, p["id"], rx.url, token=None, merge_requests_events=False)  # must not receive MR events
    mr = sim.open_mr(p["id"], [{"path": "a.txt", "content": "hello\n"}], wait=True)
    eq(len(mr["deliveries"]), 1, "one matching hook")
    got = rx.received()
    eq(len(got), 1, "received")
    req = got[0]
    hd = {k.lower(): v for k, v in req["headers"].items()}
    eq(hd["x-gitlab-event"], "Merge Request Hook", "event header")
    eq(hd["x-gitlab-token"], "hook-secret", "token header")
    eq(hd["x-gitlab-instance"], sim.base, "instance header")
    eq(hd["content-type"], "application/json", "content type")
    for k in ("idempotency-key", "x-gitlab-event-uuid", "x-gitlab-webhook-uuid"):
        assert len(hd.get(k, "")) == 36, (k, hd.get(k))
    assert hd["user-agent"].startswith("GitLab/"), hd["user-agent"]
    body = req["body"]
    assert_shape("webhook-merge-request.json", body,
                 nullable={"$.object_attributes.assignee_id", "$.object_attributes.last_edited_at",
                           "$.object_attributes.last_edited_by_id", "$.object_attributes.human_total_time_spent",
                           "$.object_attributes.human_time_change", "$.object_attributes.human_time_estimate"},
                 absent={"$.changes.updated_by_id", "$.changes.draft", "$.changes.updated_at", "$.changes.labels",
                         "$.changes.last_edited_at", "$.changes.last_edited_by_id"})  # changes lists what changed
    oa = body["object_attributes"]
    eq((oa["action"], oa["iid"], oa["last_commit"]["id"], oa["target_project_id"]),
       ("open", mr["iid"], mr["sha"], p["id"]), "object_attributes")
    assert "oldrev" not in oa
    d = sim.delivery(mr["deliveries"][0])
    eq((d["hook_id"], d["response_status"], d["success"]), (h["id"], 200, True), "delivery record")
    eq(d["request_headers"]["Idempotency-Key"], hd["idempotency-key"], "recorded headers")


def test_push_and_reopen_actions():
    c, rx, p, _ = hooked()
    mr = sim.open_mr(p["id"], [{"path": "a.txt", "content": "1\n"}], wait=True)
    pushed = sim.push_mr(p["id"], mr["iid"], [{"path": "a.txt", "content": "2\n"}], wait=True)
    sim.close_mr(p["id"], mr["iid"], wait=True)
    sim.reopen_mr(p["id"], mr["iid"], wait=True)
    acts = [(r["body"]["object_attributes"]["action"], r["body"]["object_attributes"].get("oldrev"))
            for r in rx.received()]
    eq(acts, [("open", None), ("update", mr["sha"]), ("close", None), ("reopen", None)], "actions")
    eq(rx.received()[1]["body"]["object_attributes"]["last_commit"]["id"], pushed["sha"], "new head")
    keys = {r["headers"]["Idempotency-Key"] for r in rx.received()}
    eq(len(keys), 4, "one idempotency key per event")


def test_redeliver_keeps_idempotency_key():
    c, rx, p, _ = hooked()
    mr = sim.open_mr(p["id"], [{"path": "a.txt", "content": "x\n"}], wait=True)
    again = sim.redeliver(mr["deliveries"][0], wait=True)
    eq(again["redelivery_of"], mr["deliveries"][0], "redelivery_of")
    a, b = rx.received()
    eq(a["headers"]["Idempotency-Key"], b["headers"]["Idempotency-Key"], "same Idempotency-Key")
    assert a["headers"]["X-Gitlab-Webhook-UUID"] != b["headers"]["X-Gitlab-Webhook-UUID"], "new webhook uuid"
    eq(a["body"], b["body"], "same body")


def test_four_failures_temporarily_disable():
    c, rx, p, h = hooked(status=500)
    mr = sim.open_mr(p["id"], [{"path": "a.txt", "content": "0\n"}], wait=True)
    for i in range(1, 4):
        st = c.get(f"/api/v4/projects/{p['id']}/hooks/{h['id']}").json()["alert_status"]
        eq(st, "executable", f"after {i} failures")
        sim.push_mr(p["id"], mr["iid"], [{"path": "a.txt", "content": f"{i}\n"}], wait=True)
    hook = c.get(f"/api/v4/projects/{p['id']}/hooks/{h['id']}").json()
    eq(hook["alert_status"], "temporarily_disabled", "after 4 failures")
    assert hook["disabled_until"], hook
    # while temporarily disabled, events are not delivered
    sim.push_mr(p["id"], mr["iid"], [{"path": "a.txt", "content": "5\n"}], wait=True)
    eq(len(rx.received()), 4, "no delivery while disabled")
    # a success (after re-enabling) resets the counter
    sim.disable_hook(h["id"], alert_status="executable")
    rx.status = 200
    sim.push_mr(p["id"], mr["iid"], [{"path": "a.txt", "content": "6\n"}], wait=True)
    eq(c.get(f"/api/v4/projects/{p['id']}/hooks/{h['id']}").json()["alert_status"], "executable", "recovered")
    eq([x["failures"] for x in sim.hooks() if x["id"] == h["id"]], [0], "failures reset")


def test_forty_failures_disable_permanently():
    c = fresh()
    sim.set_faults(hook_backoff_s=0)  # no waiting between attempts
    rx = Receiver(status=404)
    p = first_project(c)
    h = add_hook(c, p["id"], rx.url)
    mr = sim.open_mr(p["id"], [{"path": "a.txt", "content": "0\n"}], wait=True)
    for i in range(1, 39):
        sim.push_mr(p["id"], mr["iid"], [{"path": "a.txt", "content": f"{i}\n"}], wait=True)
    eq(c.get(f"/api/v4/projects/{p['id']}/hooks/{h['id']}").json()["alert_status"], "temporarily_disabled", "39")
    sim.push_mr(p["id"], mr["iid"], [{"path": "a.txt", "content": "39\n"}], wait=True)
    hook = c.get(f"/api/v4/projects/{p['id']}/hooks/{h['id']}").json()
    eq((hook["alert_status"], hook["disabled_until"]), ("disabled", None), "after 40")
    eq(len(rx.received()), 40, "attempts")
    sim.push_mr(p["id"], mr["iid"], [{"path": "a.txt", "content": "40\n"}], wait=True)
    eq(len(rx.received()), 40, "disabled hooks get nothing")
    sim.set_faults()


def test_unreachable_hook_counts_as_failure():
    c = fresh()
    p = first_project(c)
    h = add_hook(c, p["id"], "http://127.0.0.1:9/unreachable")
    mr = sim.open_mr(p["id"], [{"path": "a.txt", "content": "0\n"}], wait=True)
    d = sim.delivery(mr["deliveries"][0])
    eq((d["success"], d["response_status"]), (False, None), "no answer")
    assert d["error"], d
    eq([x["failures"] for x in sim.hooks() if x["id"] == h["id"]], [1], "one failure")


def test_group_hook_gets_mr_and_project_events():
    c = fresh()
    rx = Receiver()
    r = c.post("/api/v4/groups/acme/hooks", {"url": rx.url, "token": "g", "merge_requests_events": True,
                                              "project_events": True})
    eq(r.status, 201, "group hook")
    made = sim.add_project("acme/team01", "brand-new", wait=True)
    eq(len(made["deliveries"]), 1, "project_create delivery")
    req = rx.received()[0]
    eq(req["headers"]["X-Gitlab-Event"], "Project Hook", "event")
    assert_shape("webhook-project-create.json", req["body"])
    eq((req["body"]["event_name"], req["body"]["project_id"]), ("project_create", made["id"]), "payload")
    sim.open_mr(made["id"], [{"path": "x", "content": "y\n"}], wait=True)
    eq(rx.received()[1]["headers"]["X-Gitlab-Event"], "Merge Request Hook", "MR via group hook")
    # a project outside the group is not delivered
    sim.add_group("other", tier="premium")
    sim.add_project("other", "elsewhere", wait=True)
    eq(len(rx.received()), 2, "outside the group")


def test_project_events_need_the_flag():
    c = fresh()
    rx = Receiver()
    r = c.post("/api/v4/groups/acme/hooks", {"url": rx.url, "token": "g", "merge_requests_events": True})
    eq((r.status, r.json()["project_events"]), (201, False), "group hook without project_events")
    made = sim.add_project("acme/team01", "quiet-one", wait=True)
    eq((made["deliveries"], rx.received()), ([], []), "no project_create without project_events")
    sim.open_mr(made["id"], [{"path": "x", "content": "y\n"}], wait=True)
    eq([x["headers"]["X-Gitlab-Event"] for x in rx.received()], ["Merge Request Hook"], "MR events still")


def test_free_group_hooks_never_deliver():
    c = fresh()
    rx = Receiver()
    sim.add_group("freeco", tier="free")
    made = sim.add_project("freeco/sub", "app", wait=True)
    r = c.post("/api/v4/groups/freeco/hooks", {"url": rx.url, "token": "g", "merge_requests_events": True,
                                                "project_events": True})
    eq(r.status, 201, "the API accepts the hook")
    sim.add_project("freeco/sub", "later", wait=True)
    sim.open_mr(made["id"], [{"path": "x", "content": "y\n"}], wait=True)
    eq(rx.received(), [], "no event reaches a Free group's hook")


def test_group_hook_test_endpoint():
    c = fresh()
    rx = Receiver()
    h = c.post("/api/v4/groups/acme/hooks", {"url": rx.url, "token": "g", "merge_requests_events": True}).json()
    r = c.post(f"/api/v4/groups/acme/hooks/{h['id']}/test/push_events", {})
    eq((r.status, r.json()), (201, {"message": "201 Created"}), "push test")
    got = rx.received()
    eq(len(got), 1, "delivered before the answer (hook.execute runs in the request)")
    eq((got[0]["headers"]["X-Gitlab-Event"], got[0]["headers"]["X-Gitlab-Token"], got[0]["body"]["object_kind"]),
       ("Push Hook", "g", "push"), "push sample, although push_events is off")
    r = c.post(f"/api/v4/groups/acme/hooks/{h['id']}/test/merge_requests_events", {})
    eq((r.status, r.json()), (422, {"message": "Ensure the project has merge requests."}), "no MR yet")
    eq(c.post(f"/api/v4/groups/acme/hooks/{h['id']}/test/bogus", {}).status, 400, "unknown trigger")
    eq(c.post(f"/api/v4/groups/acme/hooks/999999/test/push_events", {}).status, 404, "unknown hook")
    # a receiver that refuses: 422 with why
    bad = Receiver(status=500)
    h2 = c.post("/api/v4/groups/acme/hooks", {"url": bad.url, "token": "g"}).json()
    r = c.post(f"/api/v4/groups/acme/hooks/{h2['id']}/test/push_events", {})
    eq(r.status, 422, "receiver answered 500")
    # TestHooks::GroupService calls hook.execute(force: true): no licence check, so a Free group's test delivers
    sim.add_group("freeco", tier="free")
    sim.add_project("freeco", "app", wait=True)
    rx2 = Receiver()
    h3 = c.post("/api/v4/groups/freeco/hooks", {"url": rx2.url, "token": "g"}).json()
    eq(c.post(f"/api/v4/groups/freeco/hooks/{h3['id']}/test/push_events", {}).status, 201, "free test")
    eq(len(rx2.received()), 1, "the test bypasses the licence")
    sim.add_group("emptyco", tier="premium")
    h4 = c.post("/api/v4/groups/emptyco/hooks", {"url": rx2.url}).json()
    r = c.post(f"/api/v4/groups/emptyco/hooks/{h4['id']}/test/push_events", {})
    eq((r.status, r.json()), (422, {"message": "Ensure the group has a project with commits."}), "no project")


def test_project_hook_test_endpoint():
    c, rx, p, h = hooked()
    r = c.post(f"/api/v4/projects/{p['id']}/hooks/{h['id']}/test/merge_requests_events", {})
    eq((r.status, r.json()), (422, {"message": "Ensure the project has merge requests."}), "no MR")
    mr = sim.open_mr(p["id"], [{"path": "t", "content": "1\n"}], notify=False)
    r = c.post(f"/api/v4/projects/{p['id']}/hooks/{h['id']}/test/merge_requests_events", {})
    eq(r.status, 201, "test")
    got = rx.received()
    eq(len(got), 1, "delivered in the request")
    oa = got[0]["body"]["object_attributes"]
    eq((oa["iid"], "action" in oa), (mr["iid"], False), "to_hook_data of the newest MR, without an action")


def test_namespace_plan_for_owners():
    sim.reset()
    sim.add_group("freeco", tier="free")
    sim.add_group("paid", tier="ultimate")
    sim.add_group("paid/sub")
    sim.add_token("t-owner", access={"freeco": 50, "paid": 50})
    sim.add_token("t-maint", access={"paid": 40})
    o = sim.client("t-owner")
    eq(o.get("/api/v4/namespaces/freeco").json()["plan"], "free", "free plan")
    eq(o.get("/api/v4/namespaces/paid%2Fsub").json()["plan"], "ultimate", "subgroup: the top group's plan")
    r = sim.client("t-maint").get("/api/v4/namespaces/paid")
    eq((r.status, "plan" in r.json()), (200, False), "plan for owners only")
    eq(o.get("/api/v4/namespaces/nope").status, 404, "unknown")


run([test_project_events_need_the_flag, test_free_group_hooks_never_deliver, test_group_hook_test_endpoint,
     test_project_hook_test_endpoint, test_namespace_plan_for_owners,
     test_mr_open_delivers_documented_payload_and_headers, test_push_and_reopen_actions,
     test_redeliver_keeps_idempotency_key, test_four_failures_temporarily_disable,
     test_forty_failures_disable_permanently, test_unreachable_hook_counts_as_failure,
     test_group_hook_gets_mr_and_project_events])
