"""The audit log over HTTP: the operator endpoints (``/audit/...``, function key in Azure) and a
device's own entries (``/api/device/audit``). Methods return parsed JSON and raise
:class:`client.device_api.ClientError` / :class:`client.device_api.TransportError`."""

from __future__ import annotations

import base64
from typing import Any, Iterator

from client.device_api import FunctionKeyClient


def _hashes(values: list[str]) -> list[bytes]:
    return [base64.b64decode(v) for v in values]


class AuditClient(FunctionKeyClient):
    """Reads one server's audit log. ``function_key`` is sent as ``x-functions-key`` (Azure
    ``AuthLevel.FUNCTION``; devhost and Core Tools do not check keys)."""

    def _get(self, route: str, **params: Any) -> dict[str, Any]:
        return self._call("GET", route, **params)

    def checkpoint_info(self) -> dict[str, Any]:
        """``GET /audit/checkpoint`` → ``{checkpoint, size, root, published_at, verifier_key}``."""
        return self._get("/audit/checkpoint")

    def checkpoint(self) -> str:
        return self.checkpoint_info()["checkpoint"]

    def entries(self, start: int, end: int) -> Iterator[tuple[int, str]]:
        """Entries ``[start, end)`` as ``(index, canonical JSON text)``, page by page."""
        while start < end:
            page = self._get("/audit/entries", start=start, end=end)
            items = page.get("entries") or []
            for item in items:
                yield item["index"], item["entry"]
            following = page.get("next")
            if not items or following is None or following <= start:
                return
            start = following

    def consistency(self, old_size: int, new_size: int) -> list[bytes]:
        if old_size == new_size:
            return []
        return _hashes(self._get("/audit/proof/consistency", **{"from": old_size, "to": new_size})["proof"])

    def inclusion(self, index: int, size: int) -> list[bytes]:
        return _hashes(self._get("/audit/proof/inclusion", index=index, size=size)["proof"])
