"""The operator API over HTTP (``/operator/...``, a function key in Azure): the lifecycle of devices
and accounts. Methods return the server's parsed JSON and raise
:class:`client.device_api.ClientError` / :class:`client.device_api.TransportError`.

Example::

    ops = OperatorClient("https://trustgate.azurewebsites.net", function_key=key)
    ops.revoke_device("sensor-0042", "stolen", dry_run=True)["summary"]   # what a revoke would touch
    ops.revoke_device("sensor-0042", "stolen")
"""

from __future__ import annotations

from typing import Any, Iterator
from urllib.parse import quote

from client.device_api import FunctionKeyClient, iter_pages


class OperatorClient(FunctionKeyClient):
    """Calls one server's operator API. ``function_key`` is sent as ``x-functions-key`` (Azure
    ``AuthLevel.FUNCTION``; devhost and Core Tools do not check keys)."""

    @staticmethod
    def _dry_run(dry_run: bool) -> str | None:
        return "true" if dry_run else None

    def list_devices(self, trust_level: str | None = None, status: str | None = None, page_size: int | None = None,
                     continuation: str | None = None) -> dict[str, Any]:
        """``GET /operator/devices`` → ``{devices, continuation}``."""
        return self._call("GET", "/operator/devices", trust_level=trust_level, status=status, page_size=page_size,
                          continuation=continuation)

    def iter_devices(self, trust_level: str | None = None, status: str | None = None,
                     page_size: int | None = None) -> Iterator[dict[str, Any]]:
        """Every device matching the filters, page by page."""
        return iter_pages(lambda token: self.list_devices(trust_level, status, page_size, token), "devices")

    def suspend_device(self, deviceid: str, reason: str) -> dict[str, Any]:
        """``POST /operator/devices/{id}/suspend`` → ``{device, changed}``."""
        return self._call("POST", f"/operator/devices/{quote(deviceid, safe='')}/suspend", {"reason": reason})

    def resume_device(self, deviceid: str, reason: str | None = None) -> dict[str, Any]:
        """``POST /operator/devices/{id}/resume`` → ``{device, changed, uploads_requeued}``."""
        return self._call("POST", f"/operator/devices/{quote(deviceid, safe='')}/resume", {"reason": reason})

    def revoke_device(self, deviceid: str, reason: str, dry_run: bool = False) -> dict[str, Any]:
        """``POST /operator/devices/{id}/revoke[?dry_run=true]`` → ``{device, summary, already_revoked, dry_run}``."""
        return self._call("POST", f"/operator/devices/{quote(deviceid, safe='')}/revoke", {"reason": reason},
                          dry_run=self._dry_run(dry_run))

    def revoke_certificate(self, serial: str, action: str | None = None, reason: str | None = None,
                           dry_run: bool = False) -> dict[str, Any]:
        """``POST /operator/attestation/revoke-intermediate`` → ``{serial, action, summary, devices, failed}``."""
        return self._call("POST", "/operator/attestation/revoke-intermediate",
                          {"serial": serial, "action": action, "reason": reason}, dry_run=self._dry_run(dry_run))

    def suspend_user(self, email: str, reason: str) -> dict[str, Any]:
        """``POST /operator/users/{email}/suspend`` → ``{email, changed}``."""
        return self._call("POST", f"/operator/users/{quote(email, safe='')}/suspend", {"reason": reason})

    def resume_user(self, email: str, reason: str | None = None) -> dict[str, Any]:
        """``POST /operator/users/{email}/resume`` → ``{email, changed}``."""
        return self._call("POST", f"/operator/users/{quote(email, safe='')}/resume", {"reason": reason})
