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


def test_a_member_the_connection_does_not_know_is_refused():
    # a walk misspelled ca_bundle ("ca_bundel"): 200, the connection stored and audited, the CA silently dropped
    before = c.get("/api/connection").json()
    audits = len(c.get("/api/audit?action=connection.update&limit=50").json()["items"])
    for extra in ({"ca_bundel": "-----BEGIN CERTIFICATE-----"}, {"bogus": 1}):
        r = c.put("/api/connection", {"gitlab_url": sim.base, "group": "acme", "token": ADMIN, **extra})
        assert r.status == 400 and r.json()["message"] == f'unknown field "{next(iter(extra))}"', r.body
    assert c.get("/api/connection").json() == before
    assert len(c.get("/api/audit?action=connection.update&limit=50").json()["items"]) == audits


run([test_admin_non_member_is_not_called_a_non_member, test_a_member_the_connection_does_not_know_is_refused])
