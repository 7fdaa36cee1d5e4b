"""HTTP server start-up failures say why, in CivetWeb's own words (its log_message callback feeds mrgate's log):
a port already taken, and a TLS certificate file that is not a certificate. mrgate exits non-zero and never blames
the port for a certificate problem."""
import os
import socket
import subprocess

import harness
from harness import ADMIN_PASSWORD, run

d = harness.workdir("civetweb_errors")
db_url = harness.fresh_database("civetweb_errors")


def serve(port, extra=None, timeout=30):
    env = dict(os.environ)
    env.update({"MRGATE_DATABASE_URL": db_url, "MRGATE_LISTEN": f"127.0.0.1:{port}",
                "MRGATE_PUBLIC_URL": f"http://127.0.0.1:{port}", "MRGATE_SECRET_KEY_FILE": d + "/secret.key",
                "MRGATE_ADMIN_PASSWORD": ADMIN_PASSWORD, "MRGATE_LOG_FORMAT": "text"})
    env.update(extra or {})
    return subprocess.run([harness.env_required("MRGATE_BIN"), "serve"], env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_port_in_use_is_said_by_civetweb():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    r = serve(port)
    s.close()
    assert r.returncode != 0, r
    assert "civetweb:" in r.stderr and str(port) in r.stderr, r.stderr[-3000:]


def test_bad_certificate_is_said_by_civetweb():
    bad = os.path.join(d, "bad.pem")
    with open(bad, "w") as f:
        f.write("this is not a certificate\n")
    r = serve(harness.free_port(), {"MRGATE_TLS_CERT": bad})
    assert r.returncode != 0, r
    assert "civetweb:" in r.stderr, r.stderr[-3000:]
    assert "port in use" not in r.stderr, r.stderr[-3000:]


run([test_port_in_use_is_said_by_civetweb, test_bad_certificate_is_said_by_civetweb])
