"""The SDK transports against real local servers: what is sent, what comes back, how failures
map to azure-core errors (the SDK retry policies and the app's 503 depend on it), TLS
verification, and the proxy decision taken once per endpoint."""

from __future__ import annotations

import datetime
import http.server
import socket
import ssl
import threading
from typing import Iterator

import pytest
from azure.core.exceptions import (
    ServiceRequestError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.core.pipeline.transport import HttpRequest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shared_code.platform.transport import Urllib3Transport, endpoint_proxies, sdk_transport


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str, dict[str, str], bytes]] = []

    def log_message(self, *args) -> None:  # quiet
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.seen.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        if self.path == "/slow":
            threading.Event().wait(2)
        if self.path == "/hangup":
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        payload = b'{"id":"abc","n":1}'
        self.send_response(404 if self.path == "/missing" else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("x-ms-request-charge", "1.0")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        try:
            self.wfile.write(payload)
        except BrokenPipeError:  # the client gave up first (the timeout test)
            pass

    do_GET = do_POST = do_PATCH = _answer


@pytest.fixture
def server() -> Iterator[str]:
    _Handler.seen = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _self_signed(tmp_path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


@pytest.fixture
def tls_server(tmp_path) -> Iterator[tuple[str, str]]:
    cert, key = _self_signed(tmp_path)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}", cert
    httpd.shutdown()
    httpd.server_close()


def test_sends_the_request_as_given_and_reads_the_whole_response(server):
    transport = Urllib3Transport(server)
    request = HttpRequest("PATCH", f"{server}/dbs/x/docs/abc", headers={"x-ms-version": "2020-07-15", "Content-Type": "application/json"},
                          data=b'[{"op":"incr"}]')
    response = transport.send(request, connection_timeout=5, read_timeout=5, connection_verify=False)
    assert (response.status_code, response.body(), response.headers["X-MS-REQUEST-CHARGE"]) == (200, b'{"id":"abc","n":1}', "1.0")
    method, path, headers, body = _Handler.seen[-1]
    assert (method, path, headers["x-ms-version"], body) == ("PATCH", "/dbs/x/docs/abc", "2020-07-15", b'[{"op":"incr"}]')
    assert transport.send(HttpRequest("GET", f"{server}/missing")).status_code == 404  # statuses are the SDK's to judge


def test_keeps_connections_alive_across_calls(server):
    transport = Urllib3Transport(server)
    for _ in range(5):
        transport.send(HttpRequest("GET", f"{server}/a"))
    manager = next(iter(transport._managers.values()))
    pool = manager.connection_from_url(server)
    assert pool.num_connections == 1 and pool.num_requests == 5


def test_a_refused_connection_is_a_request_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ServiceRequestError):
        Urllib3Transport(f"http://127.0.0.1:{port}").send(HttpRequest("GET", f"http://127.0.0.1:{port}/x"), connection_timeout=1)


def test_a_silent_server_is_a_response_timeout(server):
    with pytest.raises(ServiceResponseTimeoutError):
        Urllib3Transport(server).send(HttpRequest("GET", f"{server}/slow"), read_timeout=0.3)


def test_a_connection_dropped_after_sending_is_a_response_error(server):
    with pytest.raises(ServiceResponseError) as raised:
        Urllib3Transport(server).send(HttpRequest("POST", f"{server}/hangup", data=b"{}"))
    assert not isinstance(raised.value, ServiceResponseTimeoutError)


def test_tls_is_verified_unless_turned_off(tls_server):
    url, ca = tls_server
    transport = Urllib3Transport(url)
    with pytest.raises(ServiceRequestError):
        transport.send(HttpRequest("GET", f"{url}/a"), connection_verify=True)  # not in the default bundle
    assert transport.send(HttpRequest("GET", f"{url}/a"), connection_verify=ca).status_code == 200
    assert transport.send(HttpRequest("GET", f"{url}/a"), connection_verify=False).status_code == 200


def test_refuses_what_it_does_not_implement(server):
    transport = Urllib3Transport(server)
    with pytest.raises(TypeError):
        transport.send(HttpRequest("GET", f"{server}/a"), allow_redirects=True)
    with pytest.raises(ValueError):
        transport.send(HttpRequest("GET", f"{server}/a"), stream=True)


def test_the_proxy_decision_follows_the_environment_once(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,.internal.example")
    assert endpoint_proxies("https://acct.documents.azure.com:443/") == {"https": "http://proxy.example:3128"}
    assert endpoint_proxies("https://db.internal.example/") == {}
    assert endpoint_proxies("http://127.0.0.1:8081/") == {}
    monkeypatch.delenv("HTTPS_PROXY")
    assert endpoint_proxies("https://acct.documents.azure.com:443/") == {}


def test_the_blob_transport_never_rereads_the_environment(server, monkeypatch):
    transport = sdk_transport(server)
    assert transport.session.trust_env is False
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # would break every call if it were read now
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert transport.send(HttpRequest("GET", f"{server}/a")).status_code == 200
