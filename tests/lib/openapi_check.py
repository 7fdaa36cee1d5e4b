"""Check mrgate's answers against web/openapi.yaml (the one contract between the dashboard, scripts and the API).

    check_response(method, path, status, content_type, body)   # raises AssertionError when the answer is not
                                                                # what the spec says

For a request to a path the spec documents, the answer's status must be documented (or covered by `default`),
and a JSON body must validate against the documented schema (OpenAPI 3.0 schemas, with `nullable`, turned into
JSON Schema and checked with Debian's python3-jsonschema). A JSON body where the spec documents none fails too.
Paths the spec does not know (the dashboard's static files) are not checked.
"""
import json
import os
import re
import threading
import urllib.parse

import jsonschema
import yaml

_spec = None
_routes = None
_load_lock = threading.Lock()  # tests check answers from many threads at once (login bursts)


def _load():
    global _spec, _routes
    with _load_lock:
        if _routes is not None:
            return _spec
        root = os.environ.get("MRGATE_SOURCE_DIR", os.path.abspath("."))
        with open(os.path.join(root, "web", "openapi.yaml")) as f:
            spec = yaml.safe_load(f)
        routes = []
        for template in spec["paths"]:
            if not template.startswith("/"):
                continue
            literal = len(re.sub(r"\{[^}]+\}", "", template))
            rx = "^" + re.sub(r"\\\{(\w+)\\\}", lambda m: "(.+)" if m.group(1) == "path" else "([^/]+)",
                              re.escape(template)) + "/?$"
            routes.append((literal, re.compile(rx), template))
        routes.sort(key=lambda r: -r[0])  # the most literal template first: /api/repos/{id}/config before {id}
        _spec = spec
        _routes = routes  # published last: a thread that sees _routes sees _spec too
    return _spec


def _pointer(ref):
    node = _spec
    for part in ref.lstrip("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _json_schema(s, depth=0):
    """An OpenAPI 3.0 schema as JSON Schema: $ref inlined, nullable turned into a null alternative."""
    if depth > 40:
        raise AssertionError("web/openapi.yaml: schema nesting too deep (a $ref cycle?)")
    if isinstance(s, list):
        return [_json_schema(x, depth + 1) for x in s]
    if not isinstance(s, dict):
        return s
    if "$ref" in s:
        return _json_schema(_pointer(s["$ref"]), depth + 1)
    out = {}
    for k, v in s.items():
        if k in ("nullable", "example", "description", "format", "x-removed"):
            continue
        if k in ("properties",):
            out[k] = {name: _json_schema(sub, depth + 1) for name, sub in v.items()}
        elif k in ("items", "additionalProperties", "not"):
            out[k] = _json_schema(v, depth + 1) if isinstance(v, dict) else v
        elif k in ("allOf", "anyOf", "oneOf"):
            out[k] = [_json_schema(x, depth + 1) for x in v]
        else:
            out[k] = v
    if s.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


def _operation(method, path):
    _load()
    for _, rx, template in _routes:
        if rx.match(path):
            op = _spec["paths"][template].get(method.lower())
            return template, op
    return None, None


def check_response(method, url_or_path, status, content_type, body):
    path = urllib.parse.urlsplit(url_or_path).path
    template, op = _operation(method, path)
    if template is None:
        return  # not an API path (a static file of the dashboard)
    where = f"{method} {path} -> {status} (web/openapi.yaml {template})"
    if op is None:
        if status in (404, 405):
            return  # no such method here: the router's own error answer
        raise AssertionError(f"{where}: the method is not documented")
    responses = op.get("responses", {})
    resp = responses.get(str(status)) or responses.get("default")
    if resp is None:
        raise AssertionError(f"{where}: this status is not documented")
    if "$ref" in resp:
        resp = _pointer(resp["$ref"])
    content = resp.get("content") or {}
    is_json = (content_type or "").split(";")[0].strip() == "application/json"
    if not body:
        return
    if not is_json:
        if content and not any(k != "application/json" for k in content):
            raise AssertionError(f"{where}: a {content_type} body where the spec documents JSON")
        return
    if "application/json" not in content:
        raise AssertionError(f"{where}: a JSON body the spec does not describe: {body[:200]!r}")
    schema = content["application/json"].get("schema")
    if schema is None:
        raise AssertionError(f"{where}: the JSON body has no schema in the spec")
    try:
        doc = json.loads(body)
    except ValueError as e:
        raise AssertionError(f"{where}: the body is not JSON ({e}): {body[:200]!r}")
    try:
        jsonschema.validate(doc, _json_schema(schema), cls=jsonschema.Draft202012Validator)
    except jsonschema.ValidationError as e:
        at = "/".join(str(p) for p in e.absolute_path) or "(the body)"
        raise AssertionError(f"{where}: the body does not match the spec at {at}: {e.message}") from None
