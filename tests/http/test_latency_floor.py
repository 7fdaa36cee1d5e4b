"""HTTP: no response waits for a TCP acknowledgement (Nagle's algorithm meeting the client's delayed ACK).

A response written in two pieces without TCP_NODELAY holds its second piece until the client acknowledges the
first, which a client delays by up to 40 ms: 200 keep-alive requests would then take about 8 s. This is a bound on
a protocol floor, not a benchmark (bench/webhook measures throughput): 200 requests on loopback take a few tens of
milliseconds without the floor, so the bound of 4 s holds on a loaded machine and fails whenever the floor is back.
"""
import http.client
import time

from harness import Mrgate, run

srv = Mrgate("latency")


def keepalive_requests(path, n, headers=None, method="GET"):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    start = time.monotonic()
    for _ in range(n):
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        r.read()
        assert r.status in (200, 401), r.status
        assert not r.will_close, "the server closed a keep-alive connection"
    conn.close()
    return time.monotonic() - start


def session_headers():
    c = srv.login()
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in c.cookies.items())}


def test_json_responses_have_no_ack_floor():
    took = keepalive_requests("/healthz", 200)
    assert took < 4.0, f"200 keep-alive GET /healthz took {took:.2f}s: responses wait for delayed ACKs"


def test_error_responses_have_no_ack_floor():
    took = keepalive_requests("/api/repos", 200)
    assert took < 4.0, f"200 keep-alive 401 answers took {took:.2f}s: responses wait for delayed ACKs"


def test_api_json_responses_have_no_ack_floor():
    h = session_headers()
    took = keepalive_requests("/api/repos?limit=5", 200, h)
    assert took < 4.0, f"200 keep-alive GET /api/repos took {took:.2f}s: responses wait for delayed ACKs"


def test_head_says_the_length_and_keeps_the_connection_usable():
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    conn.request("GET", "/index.html")
    r = conn.getresponse()
    body = r.read()
    assert r.status == 200 and body
    conn.request("HEAD", "/index.html")
    r = conn.getresponse()
    assert r.status == 200 and r.read() == b""
    assert r.getheader("Content-Length") == str(len(body)), (r.getheader("Content-Length"), len(body))
    conn.request("GET", "/healthz")  # the same connection still reads one answer per request
    r = conn.getresponse()
    assert r.status == 200 and r.read()
    conn.close()


def test_an_idle_keepalive_connection_outlives_client_pools():
    """A client's pooled connection stays usable for as long as the client keeps it (Node's fetch 4 s, Apache's
    own timeout 5 s): a server that ends it first races the client's next request, which then fails with "fetch
    failed" or a reset instead of an answer. The server still ends it once idle for longer, so that an idle
    client does not hold one of its threads for good."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    conn.request("GET", "/healthz")
    r = conn.getresponse()
    r.read()
    assert r.status == 200 and not r.will_close
    time.sleep(4.5)
    try:
        conn.request("GET", "/healthz")
        r = conn.getresponse()
        r.read()
    except (ConnectionError, http.client.HTTPException) as e:
        raise AssertionError(f"a keep-alive connection idle for 4.5 s was ended by the server: {e!r}")
    assert r.status == 200
    sock = conn.sock
    sock.settimeout(10)
    start = time.monotonic()
    assert sock.recv(1) == b"", "the server answered nothing it was asked"
    waited = time.monotonic() - start
    assert waited < 9, f"an idle connection was kept {waited:.1f}s"
    conn.close()


def test_static_files_have_no_ack_floor():
    took = keepalive_requests("/", 100)
    assert took < 2.0, f"100 keep-alive GET / took {took:.2f}s: responses wait for delayed ACKs"


run([test_json_responses_have_no_ack_floor, test_error_responses_have_no_ack_floor,
     test_api_json_responses_have_no_ack_floor, test_head_says_the_length_and_keeps_the_connection_usable,
     test_static_files_have_no_ack_floor, test_an_idle_keepalive_connection_outlives_client_pools])
