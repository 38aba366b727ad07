"""Direct-upload helpers for tests: ask for a grant through the handler, stage bytes at the grant's
upload URL with the real SDK, run the staging verifier as the host would."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import azure.functions as func
from azure.storage.blob import BlobBlock, BlobClient

from shared_code.platform import blobs
from shared_code.platform.config import get_settings
from tests.support.devices import HANDLERS, DeviceActor, call, json_body, sign


def grant_body(actor: DeviceActor, data: bytes | None = None, *, size: int | None = None, sha256: str | None = None,
               content_type: str = "application/octet-stream", challenge: str | None = None,
               signer: Any = None, file_name: str = "capture.bin") -> dict[str, Any]:
    """A signed POST /api/uploads body for ``data`` (or explicit ``size``/``sha256``)."""
    challenge = challenge or actor.challenge()
    size = len(data) if size is None else size
    sha256 = hashlib.sha256(data).hexdigest() if sha256 is None else sha256
    message = f"direct-upload:{challenge}:{sha256}:{size}:{content_type}".encode()
    return {"file_name": file_name, "size": size, "sha256": sha256, "content_type": content_type,
            "challenge": challenge, "signature": sign(signer or actor.key, message)}


def request_grant(actor: DeviceActor, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    headers, raw = json_body(body)
    return call("create_upload", "POST", "api/uploads", headers={**actor.headers, **headers}, body=raw)


def grant(actor: DeviceActor, data: bytes, **kwargs: Any) -> dict[str, Any]:
    status, body = request_grant(actor, grant_body(actor, data, **kwargs))
    assert status == 201, body
    return body


def upload_state(actor: DeviceActor, upload_id: str) -> tuple[int, dict[str, Any]]:
    return _route("get_upload", "GET", f"api/uploads/{upload_id}", actor, {"upload_id": upload_id})


def renew(actor: DeviceActor, upload_id: str) -> tuple[int, dict[str, Any]]:
    return _route("renew_upload", "POST", f"api/uploads/{upload_id}/renew", actor, {"upload_id": upload_id})


def _route(name: str, method: str, path: str, actor: DeviceActor, route_params: dict[str, str]) -> tuple[int, dict]:
    req = func.HttpRequest(method, f"http://localhost/{path}", headers=actor.headers, body=b"", route_params=route_params)
    response = HANDLERS[name](req)
    return response.status_code, json.loads(response.get_body())


def stage_and_commit(upload_url: str, data: bytes, block_size: int) -> None:
    """Send ``data`` as blocks of ``block_size`` through the SAS URL and commit them (ids as the client makes them)."""
    client = BlobClient.from_blob_url(upload_url)
    ids = []
    for index, offset in enumerate(range(0, len(data), block_size)):
        ids.append(f"{index:06d}")
        client.stage_block(ids[-1], data[offset:offset + block_size])
    client.commit_block_list([BlobBlock(block_id=i) for i in ids])


def staged_client(blob_name: str) -> BlobClient:
    return blobs.container_client(get_settings().upload_staging_container).get_blob_client(blob_name)


def uploaded_client(blob_name: str) -> BlobClient:
    return blobs.container_client(get_settings().uploads_container).get_blob_client(blob_name)


def run_verifier(blob_name: str) -> None:
    """Invoke the staging trigger the way the host does: with a BlobClient for the staged blob."""
    HANDLERS["verify_staged_upload"](staged_client(blob_name))


