"""A :class:`requests.Session` that records how long each request took, seen from the client.

The time runs from just before ``Session.request`` to its return: connection reuse (keep-alive),
sending the body, the server's work and reading the whole response body (``stream=False``).
Used so the real :class:`client.device_api.DeviceClient` code path can be timed call by call
(e.g. the ``POST /upload-file`` inside ``DeviceClient.upload`` apart from its challenge fetch).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests


@dataclass(frozen=True)
class Timing:
    method: str
    path: str
    status: int | None
    ms: float


class TimedSession(requests.Session):
    """Keeps a :class:`Timing` for every request in :attr:`timings` (errors included, status ``None``)."""

    def __init__(self) -> None:
        super().__init__()
        self.timings: list[Timing] = []

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        status = None
        start = time.perf_counter()
        try:
            response = super().request(method, url, *args, **kwargs)
            status = response.status_code
            return response
        finally:
            elapsed = (time.perf_counter() - start) * 1000
            self.timings.append(Timing(str(method).upper(), urlsplit(str(url)).path, status, elapsed))

    def last(self, method: str, path: str) -> Timing:
        """The most recent timing of ``method path``; raises :class:`LookupError` if there is none."""
        for timing in reversed(self.timings):
            if timing.method == method and timing.path == path:
                return timing
        raise LookupError(f"no {method} {path} was timed")
