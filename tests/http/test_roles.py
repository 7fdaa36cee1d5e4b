"""HTTP: roles, route by route. Every route of the route table (read from `mrgate routes`, the binary's own table) is
called with no authentication and as a viewer, an editor and an admin; each must answer 401 / 403 / served exactly
as its role says. A route added to the table without a role, or without a probe and an expected role here, fails
this test. Also: the migration that turned is_admin into roles (admins stay admins, other users become editors)."""
import os
import subprocess

import harness
from harness import ADMIN_PASSWORD, Mrgate, run

RANK = {"public": 0, "viewer": 1, "editor": 2, "admin": 3}

# The policy, stated independently of the server (issue #12 and DESIGN.md "Roles"): admin = connection, settings,
# hook mode, users, tokens; editor = configs, configure/apply, exceptions, sync, job retry/cancel; viewer = reads.
# Each probe is a request that the role allowed to make it may send without changing anything durable (unknown
# ids, invalid bodies): the answer is then 2xx or a validation error, never 401/403.
BOGUS = {"fail_on": "not-a-level"}
# The expected policy, one route a line as `mrgate routes` prints it: METHOD PATTERN ROLE.
POLICY = """
    GET /healthz                        public
    GET /readyz                         public
    GET /metrics                        public
    POST /api/session                   public
    POST /hooks/gitlab                  public
    GET /api/session                    viewer
    DELETE /api/session                 viewer
    PUT /api/session/password           viewer
    GET /api/connection                 viewer
    PUT /api/connection                 admin
    DELETE /api/connection              admin
    GET /api/connection/public-url      viewer
    POST /api/sync                      editor
    GET /api/sync                       viewer
    GET /api/repos                      viewer
    GET /api/repos/{id}                 viewer
    GET /api/repos/{id}/history         viewer
    GET /api/groups                     viewer
    GET /api/gates                      viewer
    GET /api/gates/{id}                 viewer
    POST /api/gates/{id}/bypass         editor
    GET /api/ignores                    viewer
    POST /api/ignores                   editor
    DELETE /api/ignores/{id}            editor
    GET /api/configs/default            viewer
    PUT /api/configs/default            editor
    GET /api/configs/groups             viewer
    GET /api/configs/groups/{path*}     viewer
    PUT /api/configs/groups/{path*}     editor
    DELETE /api/configs/groups/{path*}  editor
    GET /api/repos/{id}/config          viewer
    PUT /api/repos/{id}/config          editor
    DELETE /api/repos/{id}/config       editor
    POST /api/configure                 editor
    GET /api/audit                      viewer
    GET /api/jobs                       viewer
    GET /api/jobs/{id}                  viewer
    GET /api/jobs/{id}/plan             viewer
    POST /api/jobs/{id}/retry           editor
    POST /api/jobs/{id}/cancel          editor
    GET /api/settings                   viewer
    GET /api/scanners                   viewer
    PUT /api/settings                   admin
    GET /api/users                      admin
    POST /api/users                     admin
    PATCH /api/users/{id}               admin
    DELETE /api/users/{id}              admin
    GET /api/tokens                     admin
    DELETE /api/tokens/{id}             admin
"""
# The probe of a route: its pattern with {id} = 999999 and {path*} = no/such, and a body: none for GET and DELETE,
# {} for the other methods unless named here.
BODIES = {
    ("PUT", "/api/configs/default"): BOGUS,
    ("PUT", "/api/configs/groups/{path*}"): BOGUS,
    ("PUT", "/api/repos/{id}/config"): BOGUS,
    ("PUT", "/api/settings"): {"resync_interval": 1},
    ("POST", "/api/users"): {"username": "x"},
    ("PATCH", "/api/users/{id}"): {"role": "viewer"},
}


def probe(method, pattern):
    path = pattern.replace("{id}", "999999").replace("{path*}", "no/such")
    body = BODIES.get((method, pattern), None if method in ("GET", "DELETE") else {})
    return path, body


ROUTES = {(m, p): (role, *probe(m, p)) for m, p, role in (line.split() for line in POLICY.strip().splitlines())}

srv = Mrgate("roles")


def route_table():
    """The server's own route table: `mrgate routes` prints METHOD PATTERN ROLE per line."""
    out = srv.cli("routes")
    assert out.returncode == 0, out.stderr
    rows = [line.split() for line in out.stdout.splitlines() if line.strip()]
    assert rows and all(len(r) == 3 for r in rows), out.stdout
    return rows


def make_user(name, role):
    r = srv.cli("user", "add", name, "--role", role, stdin=f"{name}-passphrase\n")
    assert r.returncode == 0, r.stderr
    r = srv.cli("token", "create", name, "walk")
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


TOKENS = {}


def test_every_route_declares_a_known_role():
    rows = route_table()
    listed = {(m, p): role for m, p, role in rows}
    assert len(listed) == len(rows), "a method and pattern appear twice in the route table"
    for (m, p), role in listed.items():
        assert role in RANK, f"{m} {p} has no role ({role!r}): every route must declare one"
        assert (m, p) in ROUTES, f"{m} {p} is new: add its expected role and a probe to tests/http/test_roles.py"
        assert ROUTES[(m, p)][0] == role, f"{m} {p} declares {role}, the policy says {ROUTES[(m, p)][0]}"
    for key in ROUTES:
        assert key in listed, f"{key} is expected but not in the route table"


def test_walk_every_route_as_every_role():
    for role in ("viewer", "editor", "admin"):
        TOKENS[role] = make_user(f"walk-{role}", role)
    failures = []
    for m, p, declared in route_table():
        _, path, body = ROUTES[(m, p)]
        for who in ("none", "viewer", "editor", "admin"):
            c = srv.client()
            hdrs = {} if who == "none" else {"Authorization": "Bearer " + TOKENS[who]}
            r = c.request(m, path, body, headers=hdrs)
            need = RANK[declared]
            have = 0 if who == "none" else RANK[who]
            if need == 0:
                ok = r.status < 500 and r.status != 403
                want = "served"
            elif who == "none":
                ok = r.status == 401 and r.json()["error"] == "unauthorized"
                want = "401"
            elif have < need:
                ok = r.status == 403 and r.json()["error"] == "forbidden"
                want = "403"
            else:
                ok = r.status < 500 and r.status not in (401, 403)
                want = "2xx or a validation error"
            if not ok:
                failures.append(f"{m} {path} as {who}: {r.status} {r.body[:160]!r}, want {want}")
    assert not failures, "\n".join(failures)


def test_forbidden_says_which_role_is_needed():
    c = srv.client()
    r = c.put("/api/settings", {"resync_interval": 900}, headers={"Authorization": "Bearer " + TOKENS["editor"]})
    assert r.status == 403, r.body
    msg = r.json()["message"]
    assert "admin" in msg and "editor" in msg, msg


def test_cookie_sessions_get_the_same_checks():
    v = srv.login("walk-viewer", "walk-viewer-passphrase")
    me = v.get("/api/session").json()
    assert me["role"] == "viewer" and me["is_admin"] is False, me
    assert v.put("/api/configs/default", {"fail_on": "high"}).status == 403
    assert v.get("/api/configs/default").status == 200
    e = srv.login("walk-editor", "walk-editor-passphrase")
    r = e.put("/api/configs/default", {"enabled": False, "fail_on": "critical"})
    assert r.status == 200, r.body
    assert e.get("/api/configs/default").json()["config"]["fail_on"] == "critical"
    assert e.put("/api/settings", {"resync_interval": 600}).status == 403
    a = srv.login()
    assert a.get("/api/session").json()["role"] == "admin"
    assert a.put("/api/settings", {"resync_interval": 600}).status == 200


def test_a_route_without_a_role_does_not_start():
    """The role is a mandatory field: the server refuses to start with a route that lacks one. The table lives in
    the binary, so this checks the guard through `mrgate routes --check`, which runs the same validation."""
    out = srv.cli("routes", "--check")
    assert out.returncode == 0 and "every route declares a role" in out.stdout, (out.stdout, out.stderr)
    # (that a table entry without a role does not even compile is the ctest unit_route_role_mandatory)


def test_migration_keeps_admins_and_makes_others_editors():
    """A database at the schema before roles (every migration before sql/NNNN_roles.sql) with an admin and a plain
    user, then migrated by the server."""
    url = harness.fresh_database("roles_mig")
    sqldir = os.path.join(harness.SOURCE_DIR, "sql")
    files = sorted(f for f in os.listdir(sqldir) if f.endswith(".sql"))
    roles_file = [f for f in files if f.endswith("_roles.sql")]
    assert len(roles_file) == 1, files
    harness.sql(url, "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
                     " applied_at timestamptz NOT NULL DEFAULT now())")
    for f in files:
        v = int(f.split("_", 1)[0])
        if f >= roles_file[0]:
            continue
        r = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-1", "-f",
                            os.path.join(sqldir, f)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        harness.sql(url, f"INSERT INTO schema_migrations (version, name) VALUES ({v}, '{f}')")
    # hashes of real passwords, copied from the running server's database
    h_admin = harness.sql(srv.db_url, "SELECT password_hash FROM users WHERE username = 'admin'")[0][0]
    harness.sql(url, f"INSERT INTO users (username, password_hash, is_admin) VALUES "
                     f"('boss', '{h_admin}', true), ('worker', '{h_admin}', false)")
    m = Mrgate("roles_mig2", db_url=url, env={"MRGATE_ADMIN_PASSWORD": ""})
    rows = dict(harness.sql(url, "SELECT username, role FROM users"))
    assert rows == {"boss": "admin", "worker": "editor"}, rows
    boss = m.login("boss", ADMIN_PASSWORD)
    assert boss.get("/api/session").json()["role"] == "admin"
    worker = m.login("worker", ADMIN_PASSWORD)
    assert worker.get("/api/session").json()["role"] == "editor"
    assert worker.put("/api/settings", {"resync_interval": 600}).status == 403
    assert worker.put("/api/configs/default", {"enabled": False, "fail_on": "low"}).status == 200
    m.stop()


def test_cli_user_add_roles():
    r = srv.cli("user", "add", "zed", "--role", "owner", stdin="zed-passphrase\n")
    assert r.returncode == 2 and "admin, editor or viewer" in r.stderr, r.stderr
    r = srv.cli("user", "add", "zed", stdin="zed-passphrase\n")
    assert r.returncode == 0 and "(editor)" in r.stdout, r.stdout
    r = srv.cli("user", "add", "zed-admin", "--admin", stdin="zed-passphrase\n")
    assert r.returncode == 0 and "(admin)" in r.stdout, r.stdout


if __name__ == "__main__":
    run([test_every_route_declares_a_known_role, test_walk_every_route_as_every_role,
         test_forbidden_says_which_role_is_needed, test_cookie_sessions_get_the_same_checks,
         test_a_route_without_a_role_does_not_start, test_migration_keeps_admins_and_makes_others_editors,
         test_cli_user_add_roles])
