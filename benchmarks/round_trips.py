"""Storage round trips per request, counted from the SDKs.

The workloads' handlers are called in this process (``func.HttpRequest`` objects, the same bodies
and headers the load clients send) while every HTTP request the Azure SDK transports send is
counted (the ``send`` of both transports, :class:`~shared_code.platform.transport.Urllib3Transport`
for Cosmos DB and ``RequestsTransport`` for Blob Storage, wrapped, then restored), retries included. Averaged over :data:`CALLS` calls, so amortised costs (a leased
rate-limit block, a session touched once a minute) show as fractions.
"""

from __future__ import annotations

import contextlib
import json
import threading
from typing import Any, Callable, Iterator

import azure.functions as func
from azure.core.pipeline.transport import RequestsTransport

from shared_code.platform.transport import Urllib3Transport

CALLS = 64


@contextlib.contextmanager
def counting_transport() -> Iterator[list[int]]:
    """Count every request an SDK client sends while the block runs; yields ``[count]``."""
    counter = [0]
    lock = threading.Lock()
    originals = {cls: cls.send for cls in (RequestsTransport, Urllib3Transport)}

    def counted(original: Callable[..., Any]) -> Callable[..., Any]:
        def send(self: Any, request: Any, **kwargs: Any) -> Any:
            with lock:
                counter[0] += 1
            return original(self, request, **kwargs)
        return send
    for cls, original in originals.items():
        cls.send = counted(original)  # type: ignore[method-assign]
    try:
        yield counter
    finally:
        for cls, original in originals.items():
            cls.send = original  # type: ignore[method-assign]


def _request(method: str, path: str, body: dict | None = None, **headers: str) -> func.HttpRequest:
    data = json.dumps(body).encode() if body is not None else b""
    all_headers = {"x-forwarded-for": "10.90.0.1, 127.0.0.1:1", **{k.replace("_", "-"): v for k, v in headers.items()}}
    if body is not None:
        all_headers["content-type"] = "application/json"
    return func.HttpRequest(method, f"http://localhost/{path}", headers=all_headers, body=data)


def count_round_trips(fixtures: Any) -> dict[str, float]:
    """Average storage round trips per call of each workload (see the module docstring)."""
    from functions import datastore, kms, messages, tokens

    calls: dict[str, Callable[[int], Any]] = {
        "verify_token": lambda i: tokens.verify_token(_request("GET", "verify_token", authorization=f"Bearer {fixtures.token}")),
        "generate_token": lambda i: tokens.generate_token(_request("POST", "generate_token", {"ttl_seconds": 60})),
        "message": lambda i: messages.gather_message(_request(
            "POST", "message", {"message_type": "MESSAGE", "message": "m" * 200},
            authorization=f"Bearer {fixtures.gatherer_tokens[0]}")),
        "get_private_key": lambda i: kms.get_private_key(_request(
            "POST", "get_private_key", {"file_name": fixtures.file_name}, sid=fixtures.sid)),
    }
    fixtures.prepare_uploads(8)
    names = list(fixtures._upload_names[-8:])
    del fixtures._upload_names[-8:]
    upload_calls: Callable[[int], Any] = lambda i: datastore.upload(_request(  # noqa: E731
        "POST", "upload", {"file_name": names[i], **fixtures.envelope}, sid=fixtures.sid))
    results: dict[str, float] = {}
    for name, call in [*calls.items(), ("upload_1mib", upload_calls)]:
        runs = CALLS if name != "upload_1mib" else len(names)
        call(0) if name != "upload_1mib" else None  # warm: first-use costs (a counter's create) not counted
        with counting_transport() as counter:
            for index in range(runs):
                response = call(index)
                if response.status_code >= 400:
                    raise RuntimeError(f"{name} answered {response.status_code}: {response.get_body()[:200]!r}")
        results[name] = counter[0] / runs
    return results
