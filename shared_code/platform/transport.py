"""The HTTP transport under the Azure SDK clients (Cosmos DB, Blob Storage).

azure-core's default transport is a ``requests.Session`` that trusts the environment: on every
call requests re-reads the proxy variables (``os.environ`` walked twice) and stats ``~/.netrc``,
about 0.2 ms of CPU per storage call, a fifth of a Cosmos point read's client cost. Each SDK
client here talks to one endpoint, so its session decides once, when the client is created,
whether that endpoint goes through a proxy (``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``NO_PROXY``, as
requests would), and then stops looking. Its connection pool keeps up to
:data:`POOL_CONNECTIONS` keep-alive connections to the endpoint, the most threads a Functions
Python worker runs (``PYTHON_THREADPOOL_THREAD_COUNT`` caps at 32), so concurrent invocations
never open and discard connections.
"""

from __future__ import annotations

import urllib.request
from urllib.parse import urlsplit

import requests
from azure.core.pipeline.transport import RequestsTransport
from requests.adapters import HTTPAdapter

POOL_CONNECTIONS = 32


def endpoint_proxies(endpoint: str) -> dict[str, str]:
    """The proxy mapping requests would use for ``endpoint`` (``{}`` when none applies or the
    host is in ``NO_PROXY``), read from the environment now."""
    parts = urlsplit(endpoint)
    environment = urllib.request.getproxies()
    proxy = environment.get(parts.scheme)
    if not proxy or (parts.hostname and urllib.request.proxy_bypass(parts.hostname)):
        return {}
    return {parts.scheme: proxy}


def sdk_transport(endpoint: str) -> RequestsTransport:
    """A transport for one SDK client of ``endpoint`` (e.g. ``https://acct.documents.azure.com``):
    its own session (the SDK closes it with the client), the environment's proxy decision for
    that endpoint fixed now, a keep-alive pool of :data:`POOL_CONNECTIONS`."""
    session = requests.Session()
    session.trust_env = False
    session.proxies.update(endpoint_proxies(endpoint))
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=POOL_CONNECTIONS)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return RequestsTransport(session=session, session_owner=True)
