"""The OpenAPI file is served and documents every route of the route table, with the same methods."""
import os
import re

import yaml

import harness
from harness import run

ROOT = harness.SOURCE_DIR


def routes_in_code():
    text = open(os.path.join(ROOT, "server", "routes.c")).read()
    return re.findall(r'\{"(GET|POST|PUT|DELETE|PATCH)", "([^"]+)", h_', text)


def test_every_route_is_documented():
    spec = yaml.safe_load(open(os.path.join(ROOT, "web", "openapi.yaml")))
    routes = routes_in_code()
    assert len(routes) >= 10, routes
    for method, pattern in routes:
        path = re.sub(r"\{(\w+)\*?\}", r"{\1}", pattern)
        assert path in spec["paths"], f"{pattern} is not in web/openapi.yaml"
        assert method.lower() in spec["paths"][path], f"{method} {pattern} is not in web/openapi.yaml"
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops if m in
                  ("get", "post", "put", "delete", "patch")}
    code = {(m, re.sub(r"\{(\w+)\*?\}", r"{\1}", p)) for m, p in routes}
    assert documented <= code, f"documented but not routed: {documented - code}"


def test_served_by_mrgate():
    srv = harness.Mrgate("openapi")
    r = srv.client().get("/openapi.yaml")
    assert r.status == 200 and b"openapi: 3" in r.body


run([test_every_route_is_documented, test_served_by_mrgate])
