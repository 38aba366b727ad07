"""Operator calls for the lifecycle tests (the ``functions/operator.py`` handlers, called directly),
what a device's own calls answer, and a snapshot of everything a device's revocation may touch."""

from __future__ import annotations

import json
from typing import Any

from shared_code.audit.sequencer import synced_state
from shared_code.platform import blobs, cosmos
from shared_code.platform.config import get_settings
from tests.support.devices import DeviceActor, call


def _json(body: dict | None) -> tuple[dict, bytes]:
    return ({"content-type": "application/json"}, json.dumps(body).encode()) if body is not None else ({}, b"")


def operator_device(action: str, deviceid: str, body: dict | None = None, *, dry_run: str | None = None) -> tuple[int, dict]:
    """POST /operator/devices/{deviceid}/{action} (suspend, resume, revoke)."""
    headers, raw = _json(body)
    params = {"dry_run": dry_run} if dry_run is not None else {}
    return call(f"operator_{action}_device", "POST", f"operator/devices/{deviceid}/{action}", headers=headers, body=raw,
                params=params, route_params={"deviceid": deviceid})


def suspend(deviceid: str, reason: str = "lost phone reported") -> tuple[int, dict]:
    return operator_device("suspend", deviceid, {"reason": reason})


def resume(deviceid: str) -> tuple[int, dict]:
    return operator_device("resume", deviceid)


def revoke(deviceid: str, reason: str = "stolen", *, dry_run: str | None = None) -> tuple[int, dict]:
    return operator_device("revoke", deviceid, {"reason": reason}, dry_run=dry_run)


def revoke_intermediate(body: dict, *, dry_run: str | None = None) -> tuple[int, dict]:
    headers, raw = _json(body)
    return call("operator_revoke_intermediate", "POST", "operator/attestation/revoke-intermediate", headers=headers,
                body=raw, params={"dry_run": dry_run} if dry_run is not None else {})


def list_devices(**params: Any) -> tuple[int, dict]:
    return call("operator_list_devices", "GET", "operator/devices", params={k: str(v) for k, v in params.items()})


def operator_user(action: str, email: str, body: dict | None = None) -> tuple[int, dict]:
    headers, raw = _json(body)
    return call(f"operator_{action}_user", "POST", f"operator/users/{email}/{action}", headers=headers, body=raw,
                route_params={"email": email})


def device_calls(actor: DeviceActor) -> list[tuple[int, str]]:
    """(status, message) of a challenge, a listing, an upload and the record, with the device's credentials."""
    answers = [call("get_challenge", "GET", "api/challenge", headers=actor.headers),
               call("list_files", "GET", "api/files", headers=actor.headers),
               call("get_device", "GET", "api/device", headers=actor.headers)]
    headers, body = actor.upload_request(b"x", challenge="A" * 43)
    answers.append(call("upload_file", "POST", "upload-file", headers=headers, body=body))
    return [(status, answer["message"]) for status, answer in answers]


def _strip(item: dict) -> dict:
    return {k: v for k, v in item.items() if k not in ("_ts",)}


def device_state(deviceid: str) -> dict[str, Any]:
    """Everything of one device a revocation could change, plus the audit log's size."""
    def items(spec: cosmos.ContainerSpec) -> list[dict]:
        found, _ = cosmos.query_page(spec, "SELECT * FROM c WHERE c.deviceid = @d", [{"name": "@d", "value": deviceid}],
                                     partition_key=deviceid, page_size=1000, continuation=None)
        return sorted((_strip(i) for i in found), key=lambda i: i["id"])

    def blob_names(container: str) -> list[str]:
        return sorted(b.name for b in blobs.container_client(container).list_blobs(name_starts_with=f"{deviceid}/"))

    settings = get_settings()
    return {"device": _strip(cosmos.read_item(cosmos.DEVICES, deviceid, deviceid)),
            "challenges": items(cosmos.CHALLENGES), "files": items(cosmos.FILES), "slots": items(cosmos.UPLOAD_SLOTS),
            "staged": blob_names(settings.upload_staging_container), "uploads": blob_names(settings.uploads_container),
            "audit_size": synced_state().size}
