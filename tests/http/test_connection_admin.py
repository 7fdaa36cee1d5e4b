"""An administrator's token that is not a member of the group (issue 19): GitLab answers GET
/groups/:id/members/all/:user_id with 404 for it, yet the administrator may change every project. mrgate must not
tell the user that such a token "can only change projects it is a member of"."""
from harness import Mrgate, run
from sim import Sim

ADMIN = "glpat-instanceAdmin000001"

sim = Sim("connection_admin_sim")
sim.add_group("acme", tier="premium")
sim.add_token(ADMIN, admin=True, username="root-admin")  # no membership anywhere
sim.add_project("acme", "app")
srv = Mrgate("connection_admin")
c = srv.login()


def test_admin_non_member_is_not_called_a_non_member():
    gid = sim.client(ADMIN).get("/api/v4/groups/acme").json()["id"]
    uid = sim.client(ADMIN).get("/api/v4/user").json()["id"]
    assert sim.client(ADMIN).get(f"/api/v4/groups/{gid}/members/all/{uid}").status == 404  # GitLab's answer
    r = c.put("/api/connection", {"gitlab_url": sim.base, "group": "acme", "token": ADMIN})
    assert r.status == 200, r.body
    conn = r.json()
    assert conn["capability"] == "gate", conn
    assert not [w for w in conn["warnings"] if "not a member of the group: it can only change" in w], conn["warnings"]
    assert [w for w in conn["warnings"] if "administrator" in w], conn["warnings"]
    assert conn["group_access_level"] == 50, conn
    again = c.get("/api/connection").json()
    assert again["warnings"] == conn["warnings"] and again["group_access_level"] == 50, again


run([test_admin_non_member_is_not_called_a_non_member])
