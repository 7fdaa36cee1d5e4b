"""MRGATE_PUBLIC_URL's length (issue 13): the webhook URL is {public_url}/hooks/gitlab, and a hook URL cut to fit a
buffer would never match its hook again (every resync would see a foreign hook and make another). A public URL over
500 characters stops mrgate at start with a clear message; one of exactly 500 gives its whole hook URL."""
import os
import subprocess

import harness
from harness import Mrgate, run

BIN = harness.env_required("MRGATE_BIN")


def long_url(base, length):
    """base + "/" + path segments of x, exactly length characters."""
    pad = length - len(base) - 1
    return base + "/" + "x" * pad


def test_too_long_public_url_is_refused_at_start():
    url = harness.fresh_database("public_url_long")
    env = dict(os.environ, MRGATE_DATABASE_URL=url, MRGATE_PUBLIC_URL=long_url("https://mrgate.example.com", 501),
               MRGATE_LISTEN="127.0.0.1:0")
    out = subprocess.run([BIN, "serve"], capture_output=True, text=True, env=env, timeout=30)
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    assert "invalid MRGATE_PUBLIC_URL" in out.stderr and "longer than 500 characters" in out.stderr, out.stderr


def test_longest_public_url_gives_its_whole_hook_url():
    port = harness.free_port()
    public = long_url(f"http://127.0.0.1:{port}", 500)
    srv = Mrgate("public_url_longest", port=port, env={"MRGATE_PUBLIC_URL": public})
    r = srv.login().get("/api/connection/public-url")
    assert r.status == 200, r.body
    assert r.json()["hook_url"] == public + "/hooks/gitlab", r.json()
    srv.stop()


run([test_too_long_public_url_is_refused_at_start, test_longest_public_url_gives_its_whole_hook_url])
