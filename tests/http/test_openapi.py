"""The OpenAPI file is served and documents every route of the route table, with the same methods, and every
answer's body: each operation says what its success answers carry (a JSON schema, or no body) and what its
errors carry. The other http tests check every answer they receive against it (tests/lib/openapi_check.py)."""
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


def test_every_answer_is_described():
    spec = yaml.safe_load(open(os.path.join(ROOT, "web", "openapi.yaml")))
    missing = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method not in ("get", "post", "put", "delete", "patch"):
                continue
            responses = op.get("responses", {})
            if not any(k.startswith("2") for k in responses):
                missing.append(f"{method.upper()} {path}: no success answer")
            if "default" not in responses and not any(k[0] in "45" for k in responses):
                missing.append(f"{method.upper()} {path}: no error answer")
            for code, resp in responses.items():
                if "$ref" in resp or code == "204":
                    continue
                content = resp.get("content")
                if path in ("/healthz", "/metrics") or (content and "text/plain" in content):
                    continue
                if not content or "schema" not in content.get("application/json", {}):
                    missing.append(f"{method.upper()} {path} {code}: no body schema")
    assert not missing, "\n".join(missing)


def test_checker_catches_a_wrong_answer():
    import openapi_check
    openapi_check.check_response("GET", "/api/audit", 200, "application/json", b'{"items": [], "next_cursor": null}')
    for body in (b'{"items": [], "next_before": 3}', b'{"items": [{"id": 1}], "next_cursor": null}'):
        try:
            openapi_check.check_response("GET", "/api/audit", 200, "application/json", body)
        except AssertionError as e:
            assert "does not match the spec" in str(e), e
        else:
            raise AssertionError(f"not caught: {body!r}")


def test_served_by_mrgate():
    srv = harness.Mrgate("openapi")
    r = srv.client().get("/openapi.yaml")
    assert r.status == 200 and b"openapi: 3" in r.body


run([test_every_route_is_documented, test_every_answer_is_described, test_checker_catches_a_wrong_answer,
     test_served_by_mrgate])
