"""HTTPS: with MRGATE_TLS_CERT mrgate serves TLS (CivetWeb + OpenSSL 3 through server/sslcompat) and the session
cookie is marked Secure."""
import ssl

import harness
from harness import ADMIN_PASSWORD, Client, Mrgate, run
from sim import make_self_signed

d = harness.workdir("tls")
pem, crt = make_self_signed(d)
port = harness.free_port()


def test_https_and_secure_cookie():
    srv = Mrgate.__new__(Mrgate)
    # started by hand: the harness waits on http://, this server speaks https only
    srv.bin = harness.env_required("MRGATE_BIN")
    srv.dir = d
    srv.db_url = harness.fresh_database("tls")
    srv.port = port
    srv.base = f"https://127.0.0.1:{port}"
    srv.env = {"MRGATE_DATABASE_URL": srv.db_url, "MRGATE_LISTEN": f"127.0.0.1:{port}",
               "MRGATE_PUBLIC_URL": srv.base, "MRGATE_SECRET_KEY_FILE": d + "/secret.key",
               "MRGATE_ADMIN_PASSWORD": ADMIN_PASSWORD, "MRGATE_TLS_CERT": pem}
    proc = harness.Proc([srv.bin, "serve"], d + "/mrgate.log", env=srv.env)
    ctx = ssl.create_default_context(cafile=crt)
    c = Client(srv.base, ssl_context=ctx)
    import time
    for _ in range(100):
        try:
            if c.get("/healthz").status == 200:
                break
        except Exception:
            time.sleep(0.1)
    else:
        raise AssertionError("mrgate did not serve https:\n" + proc.output()[-3000:])
    r = c.post("/api/session", {"username": "admin", "password": ADMIN_PASSWORD})
    assert r.status == 200, r.body
    cookie = r.header("Set-Cookie")
    assert "Secure" in cookie and "HttpOnly" in cookie, cookie
    # HSTS under TLS, on API, static and error responses alike
    for path in ["/api/session", "/", "/app.js", "/no-such-file.html", "/api/nothing", "/healthz"]:
        h = c.get(path).header("Strict-Transport-Security") or ""
        assert h.startswith("max-age=") and int(h.split("=")[1].split(";")[0]) >= 15552000, (path, h)
    # plain http on the TLS port is refused
    plain = Client(f"http://127.0.0.1:{port}")
    try:
        status = plain.get("/healthz").status
    except Exception:
        status = None
    assert status != 200
    proc.stop()


run([test_https_and_secure_cookie])
