"""The HTTP transports under the Azure SDK clients.

Measured on this project's hot paths (a Cosmos point read, client CPU per call, cProfile and
``time.process_time`` over 2000 calls against cosmosdb-server on loopback): azure-core's default
``RequestsTransport`` costs about 1.0 ms, of which requests itself is about 0.45 ms and its
``trust_env`` lookups (the proxy variables walked twice, ``~/.netrc`` stat'ed, per call) about
0.2 ms. Two transports cut that while the SDKs stay in charge of everything else (auth, headers,
retries, parsing):

- :class:`Urllib3Transport`: the SDK's request sent by urllib3 directly, the layer requests
  itself sends through, with the same timeouts, TLS verification and error mapping as
  ``RequestsTransport``, for requests whose body is whole in memory and whose response is read
  whole (every Cosmos DB call; Blob calls such as append, create, delete, properties, small
  puts): a Cosmos point read about 0.55 ms, a Blob append about 0.8 ms instead of 1.15 ms;
- :func:`sdk_transport`: requests, with the proxy decision for the client's one endpoint taken
  once at creation (``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``NO_PROXY`` as requests reads them)
  instead of per call. The Blob client's :class:`Urllib3Transport` hands it what urllib3 should
  not do here: streamed downloads and uploads from streams or generators.

Both keep up to :data:`POOL_CONNECTIONS` keep-alive connections to the endpoint, the most threads
a Functions Python worker runs (``PYTHON_THREADPOOL_THREAD_COUNT`` caps at 32), so concurrent
invocations never open and discard connections.
"""

from __future__ import annotations

import os
import threading
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import certifi
import requests
import urllib3
from azure.core.exceptions import (
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.core.pipeline.transport import HttpRequest, HttpResponse, HttpTransport, RequestsTransport
from requests.adapters import HTTPAdapter

POOL_CONNECTIONS = 32
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 30.0


def endpoint_proxies(endpoint: str) -> dict[str, str]:
    """The proxy mapping requests would use for ``endpoint`` (``{}`` when none applies or the
    host is in ``NO_PROXY``), read from the environment now."""
    parts = urlsplit(endpoint)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if not proxy or (parts.hostname and urllib.request.proxy_bypass(parts.hostname)):
        return {}
    return {parts.scheme: proxy}


def sdk_transport(endpoint: str, **connection: Any) -> RequestsTransport:
    """A requests-based transport for one SDK client of ``endpoint`` (e.g.
    ``https://acct.blob.core.windows.net``): its own session (the SDK closes it with the client),
    the environment's proxy decision for that endpoint fixed now, a keep-alive pool of
    :data:`POOL_CONNECTIONS`. ``connection`` is azure-core's connection configuration
    (``connection_timeout``, ``read_timeout``, ``connection_data_block_size``, seconds / bytes):
    an SDK client given a transport no longer passes its own, so the transport must carry them."""
    session = requests.Session()
    session.trust_env = False
    session.proxies.update(endpoint_proxies(endpoint))
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=POOL_CONNECTIONS)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return RequestsTransport(session=session, session_owner=True, **connection)


def default_ca_bundle() -> str:
    """The CA bundle requests would verify against: ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE``
    when set, else certifi's."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()


class _Urllib3Response(HttpResponse):
    """A fully read urllib3 response in azure-core's shape (status, case-insensitive headers, body)."""

    def __init__(self, request: HttpRequest, raw: urllib3.BaseHTTPResponse) -> None:
        super().__init__(request, raw)
        self.status_code = raw.status
        self.headers = raw.headers
        self.reason = raw.reason
        self.content_type = raw.headers.get("Content-Type")
        self._body = raw.data

    def body(self) -> bytes:
        return self._body


class Urllib3Transport(HttpTransport):
    """An azure-core transport on a urllib3 pool, for one endpoint's in-memory requests.

    Send semantics are those of ``RequestsTransport``: no redirects, no transport retries (the
    SDK's retry policy decides), ``connection_timeout`` / ``read_timeout`` in seconds per call
    (else the transport's own, given at construction: an SDK client given a transport does not
    pass its client-level timeouts), ``connection_verify`` (bool or a CA bundle path) and
    ``connection_cert`` per call. urllib3
    errors map to the same azure-core errors: a refused or failed connect →
    :class:`ServiceRequestError` (nothing was sent), a connect timeout →
    :class:`ServiceRequestTimeoutError`, a read timeout → :class:`ServiceResponseTimeoutError`, a
    connection broken after sending → :class:`ServiceResponseError` (the request may have landed).

    It sends bodies that are ``bytes``/``str``/absent and reads responses whole. Anything else (a
    streamed download, a body from a stream or generator, multipart, per-call proxies) goes to
    ``fallback`` when one is given, else raises ``ValueError``.
    """

    _KNOWN_OPTIONS = frozenset({"connection_timeout", "read_timeout", "connection_verify", "connection_cert",
                                "stream", "proxies"})

    def __init__(self, endpoint: str, pool_size: int = POOL_CONNECTIONS, fallback: HttpTransport | None = None,
                 connection_timeout: float = DEFAULT_CONNECT_TIMEOUT, read_timeout: float = DEFAULT_READ_TIMEOUT) -> None:
        self._proxy = endpoint_proxies(endpoint).get(urlsplit(endpoint).scheme)
        self._timeouts = (connection_timeout, read_timeout)  # unless a call passes its own
        self._pool_size = pool_size
        self._managers: dict[tuple[Any, Any], urllib3.PoolManager] = {}
        self._lock = threading.Lock()
        self._fallback = fallback

    def __enter__(self) -> "Urllib3Transport":
        return self

    def __exit__(self, *exc_details: Any) -> None:
        self.close()

    def open(self) -> None:
        """Nothing to open: pools are made on first use."""

    def close(self) -> None:
        """Close every pooled connection (and the fallback's)."""
        with self._lock:
            for manager in self._managers.values():
                manager.clear()
            self._managers.clear()
        if self._fallback is not None:
            self._fallback.close()

    def _manager(self, verify: Any, cert: Any) -> urllib3.PoolManager:
        key = (verify, cert if not isinstance(cert, list) else tuple(cert))
        with self._lock:
            manager = self._managers.get(key)
            if manager is None:
                tls: dict[str, Any] = {"cert_reqs": "CERT_REQUIRED" if verify else "CERT_NONE"}
                if verify:
                    tls["ca_certs"] = verify if isinstance(verify, str) else default_ca_bundle()
                if cert:
                    tls["cert_file"], tls["key_file"] = (cert, None) if isinstance(cert, str) else tuple(cert)
                options = {"maxsize": self._pool_size, "block": False, **tls}
                manager = urllib3.ProxyManager(self._proxy, **options) if self._proxy else urllib3.PoolManager(**options)
                self._managers[key] = manager
            return manager

    def send(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        """Send ``request`` and read the whole response (or pass it to the fallback, see the class
        docstring). Raises the azure-core errors listed there, ``ValueError`` for what it does not
        send and has no fallback for, ``TypeError`` for an option it does not know."""
        in_memory = request.data is None or isinstance(request.data, (bytes, bytearray, str))
        if request.files or kwargs.get("stream") or kwargs.get("proxies") or not in_memory:
            if self._fallback is not None:
                return self._fallback.send(request, **kwargs)
            raise ValueError("Urllib3Transport sends in-memory bodies only (no files, streams or per-call proxies)")
        unknown = set(kwargs) - self._KNOWN_OPTIONS
        if unknown:
            raise TypeError(f"Urllib3Transport.send got unexpected options {sorted(unknown)}")
        timeout = urllib3.Timeout(connect=kwargs.get("connection_timeout") or self._timeouts[0],
                                  read=kwargs.get("read_timeout") or self._timeouts[1])
        manager = self._manager(kwargs.get("connection_verify", True), kwargs.get("connection_cert"))
        try:
            raw = manager.urlopen(request.method, request.url, body=request.data, headers=request.headers,
                                  retries=False, redirect=False, timeout=timeout, preload_content=True)
        except urllib3.exceptions.ConnectTimeoutError as err:
            raise ServiceRequestTimeoutError(err, error=err) from err
        except urllib3.exceptions.ReadTimeoutError as err:
            raise ServiceResponseTimeoutError(err, error=err) from err
        except (urllib3.exceptions.NewConnectionError, urllib3.exceptions.SSLError,
                urllib3.exceptions.ProxyError, urllib3.exceptions.LocationParseError) as err:
            raise ServiceRequestError(err, error=err) from err
        except (urllib3.exceptions.ProtocolError, urllib3.exceptions.DecodeError) as err:
            raise ServiceResponseError(err, error=err) from err
        except urllib3.exceptions.HTTPError as err:
            raise ServiceRequestError(err, error=err) from err
        return _Urllib3Response(request, raw)
