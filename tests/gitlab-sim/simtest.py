"""Helpers shared by the simulator's own tests (tests/gitlab-sim/test_*.py)."""
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Every simulator these tests start renders each listed project twice, as text and as a json-c tree, and aborts on
# a difference (sim_render_project_text in sim_render.c).
os.environ.setdefault("GITLAB_SIM_CHECK_RENDER", "1")

FIXTURES = os.environ.get("SIM_FIXTURES", os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures"))


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return json.load(f)


def _kind(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def shape_errors(expected, actual, path="$", nullable=(), absent=()):
    """Every key of the documented example must be in the simulator's answer with the same JSON type.
    `nullable`: paths where the simulator may answer null for a non-null example value (GitLab does for
    unset fields); `absent`: paths the simulator leaves out by design. Paths look like $.a.b[0].c."""
    errs = []
    ke, ka = _kind(expected), _kind(actual)
    if ke == "null":
        return errs
    if ka == "null":
        if path not in nullable:
            errs.append(f"{path}: null, example has {ke}")
        return errs
    if ke != ka:
        return [f"{path}: {ka}, example has {ke}"]
    if ke == "object":
        for k, v in expected.items():
            p = f"{path}.{k}"
            if p in absent:
                continue
            if k not in actual:
                errs.append(f"{p}: missing")
                continue
            errs += shape_errors(v, actual[k], p, nullable, absent)
    elif ke == "array" and expected and actual:
        errs += shape_errors(expected[0], actual[0], f"{path}[0]", nullable, absent)
    return errs


def assert_shape(fixture_name, actual, nullable=(), absent=()):
    errs = shape_errors(fixture(fixture_name), actual, "$", nullable, absent)
    assert not errs, f"{fixture_name}: " + "; ".join(errs)


def eq(a, b, what=""):
    assert a == b, f"{what}: {a!r} != {b!r}"


def fresh_world(sim, admin, projects, depth=1, fanout=2, tier=None, root="acme"):
    """Reset the simulator to an admin token (admin) and one seeded group; returns the admin's client."""
    sim.reset()
    sim.add_token(admin, admin=True)
    sim.seed(root, projects, depth=depth, fanout=fanout, tier=tier)
    return sim.client(admin)


def first_project(c, group="acme"):
    """The group's project with the lowest id, subgroups included (GET /groups/:id/projects, 200)."""
    r = c.get(f"/api/v4/groups/{group}/projects?include_subgroups=true&order_by=id&sort=asc&per_page=1")
    eq(r.status, 200, "list")
    return r.json()[0]


class Receiver:
    """A webhook receiver on a free port: records every POST; answers `status` (changeable)."""

    def __init__(self, status=200):
        self.status = status
        self.requests = []
        self.lock = threading.Lock()
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                with outer.lock:
                    outer.requests.append({"path": self.path, "headers": dict(self.headers.items()),
                                           "body": json.loads(body) if body else None})
                    status = outer.status
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks/gitlab"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def received(self):
        with self.lock:
            return list(self.requests)
