"""Device and account lifecycle: what the checks cost per request, what a cascade costs.

- **Per request**: storage round trips (counted from the SDKs, :mod:`benchmarks.round_trips`) of
  ``GET /api/challenge``, ``POST /upload-file`` (1 KiB, with the challenge it needs) and
  ``POST /get_private_key``, and how many of them the lifecycle checks add: point reads of the
  device beyond the credential checks (the re-read after an upload's commit), point reads of the
  account behind a session.
- **Revocation**: a device with N file records (N = 100 and 1000), 4 live challenges and a
  verdict: the dry run and the revocation, wall time and storage round trips.
- **Account deletion**: an account owning K stored files (K = 10), each granted to another user,
  and holding one grant: wall time and round trips of ``POST /delete_account``'s erasure.

Handlers are called in this process (``func.HttpRequest``), as in :mod:`benchmarks.round_trips`;
wall times depend on the machine's load, round trips do not.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import azure.functions as func

from benchmarks.report import heading, table
from benchmarks.round_trips import counting_transport

CALLS = 32
FILE_COUNTS = (100, 1000)
OWNED_FILES = 10


@dataclass
class Figures:
    """Round trips per call and the point reads the lifecycle checks add to it; cascade figures."""

    per_request: list[tuple[str, float, float]] = field(default_factory=list)  # request, round trips, check reads
    revocations: list[tuple[int, float, int, float, int]] = field(default_factory=list)  # n, dry s, dry rt, s, rt
    deletion: tuple[int, float, int] | None = None  # owned files, s, rt


def _call(name: str, method: str, path: str, *, headers: dict | None = None, body: bytes = b"", params: dict | None = None,
          route_params: dict | None = None) -> func.HttpResponse:
    import function_app
    from devhost.server import indexed_functions

    handlers = _call.__dict__.setdefault("handlers", {f.get_function_name(): f.get_user_function()
                                                      for f in indexed_functions(function_app.app)})
    req = func.HttpRequest(method, f"http://localhost/{path}", headers=headers or {}, body=body, params=params or {},
                           route_params=route_params or {})
    return handlers[name](req)


def _counted(call: Callable[[int], func.HttpResponse], runs: int) -> float:
    call(0)  # warm: first-use costs are not counted
    with counting_transport() as counter:
        for index in range(runs):
            response = call(index + 1)
            if response.status_code >= 400:
                raise RuntimeError(f"benchmark call refused: {response.get_body()[:200]!r}")
    return counter[0] / runs


def _device() -> tuple[dict[str, str], Any]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    headers = {"deviceid": f"bench-{secrets.token_hex(6)}", "deviceToken": secrets.token_urlsafe(32)}
    body = json.dumps({"deviceid": headers["deviceid"], "deviceToken": headers["deviceToken"]}).encode()
    assert _call("register_device", "POST", "register-device", headers={"content-type": "application/json"}, body=body).status_code == 201
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    challenge = _challenge(headers)
    attest = {"public_key": pem, "challenge": challenge, "signature": _sign(key, f"attest:{challenge}".encode())}
    assert _call("attest_device", "POST", "attest-device", headers={**headers, "content-type": "application/json"},
                 body=json.dumps(attest).encode()).status_code == 200
    return headers, key


def _challenge(headers: dict[str, str]) -> str:
    return json.loads(_call("get_challenge", "GET", "api/challenge", headers=headers).get_body())["challenge"]


def _sign(key: Any, message: bytes) -> str:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    return base64.b64encode(key.sign(message, ec.ECDSA(hashes.SHA256()))).decode()


def _upload(headers: dict[str, str], key: Any) -> Callable[[int], func.HttpResponse]:
    import hashlib

    from urllib3 import encode_multipart_formdata

    def upload(index: int) -> func.HttpResponse:
        data = os.urandom(1024)
        challenge = _challenge(headers)
        body, ctype = encode_multipart_formdata({
            "challenge": challenge, "signed_challenge": _sign(key, f"upload:{challenge}:{hashlib.sha256(data).hexdigest()}".encode()),
            "file": ("bench.txt", data, "text/plain")})
        return _call("upload_file", "POST", "upload-file", headers={**headers, "content-type": ctype}, body=body)
    return upload


@contextlib.contextmanager
def _point_reads(container: str) -> Iterator[list[int]]:
    """Count the point reads (GET of one document) of Cosmos container ``container`` while the block runs."""
    from shared_code.platform.transport import Urllib3Transport

    counter = [0]
    original = Urllib3Transport.send

    def send(self: Any, request: Any, **kwargs: Any) -> Any:
        if request.method == "GET" and f"/colls/{container}/docs/" in request.url:
            counter[0] += 1
        return original(self, request, **kwargs)

    Urllib3Transport.send = send  # type: ignore[method-assign]
    try:
        yield counter
    finally:
        Urllib3Transport.send = original  # type: ignore[method-assign]


def _measure(call: Callable[[int], func.HttpResponse], container: str, baseline: int, extra_calls: float = 0) -> tuple[float, float]:
    """(storage round trips per call, point reads of ``container`` per call beyond ``baseline``)."""
    with _point_reads(container) as reads:
        total = _counted(call, CALLS)
    return total - extra_calls, reads[0] / (CALLS + 1) - baseline


def _per_request(figures: Figures) -> None:
    from shared_code.accounts import sessions
    from shared_code.accounts.users import user_key
    from shared_code.platform import cosmos
    from shared_code.platform.timeutil import to_iso, utc_now

    headers, key = _device()
    challenge = lambda i: _call("get_challenge", "GET", "api/challenge", headers=headers)  # noqa: E731
    # the credential check reads the device once; an upload also fetches a challenge (one more read)
    figures.per_request.append(("GET /api/challenge", *_measure(challenge, "devices", 1)))
    figures.per_request.append(("POST /upload-file (1 KiB, + its challenge)", *_measure(_upload(headers, key), "devices", 2)))
    email = f"bench-{secrets.token_hex(4)}@example.org"
    cosmos.create_item(cosmos.USERS, {"id": user_key(email), "email": email, "password_hash": "x", "created_at": to_iso(utc_now())})
    sid = sessions.create_session(email)
    name = f"bench-{secrets.token_hex(4)}.bin"
    body = lambda: json.dumps({"file_name": name}).encode()  # noqa: E731
    assert _call("get_public_key", "POST", "get_public_key", headers={"sid": sid, "content-type": "application/json"},
                 body=body()).status_code == 200
    private_key = lambda i: _call("get_private_key", "POST", "get_private_key",  # noqa: E731
                                  headers={"sid": sid, "content-type": "application/json"}, body=body())
    figures.per_request.append(("POST /get_private_key", *_measure(private_key, "users", 0)))


def _busy_device(files_count: int) -> str:
    from shared_code.devices import registry
    from shared_code.platform import cosmos
    from shared_code.platform.timeutil import to_iso, utc_now

    headers, _ = _device()
    deviceid = headers["deviceid"]
    for _ in range(4):
        _challenge(headers)
    now = to_iso(utc_now())
    for index in range(files_count):
        file_id = secrets.token_hex(16)
        cosmos.create_item(cosmos.FILES, {"id": file_id, "deviceid": deviceid, "blob_name": f"{deviceid}/{file_id}",
                                          "name": f"f{index}", "size": 1, "content_type": "text/plain",
                                          "sha256": "0" * 64, "status": "verified", "uploaded_at": now, "verified_at": now})
    device = registry.read_device(deviceid)
    registry.record_integrity(device, {"valid": True, "verdict": {}, "failed_checks": [], "checked_at": now})
    return deviceid


def _timed_revoke(deviceid: str, dry_run: bool) -> tuple[float, int]:
    params = {"dry_run": "true"} if dry_run else {}
    with counting_transport() as counter:
        started = time.perf_counter()
        response = _call("operator_revoke_device", "POST", f"operator/devices/{deviceid}/revoke",
                         headers={"content-type": "application/json"}, body=b'{"reason": "benchmark"}', params=params,
                         route_params={"deviceid": deviceid})
        elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"revoke refused: {response.get_body()[:200]!r}")
    return elapsed, counter[0]


def _deletion(figures: Figures) -> None:
    from shared_code.accounts import deletion, users
    from shared_code.filestore import datastore, erasure, kms
    from shared_code.platform import cosmos
    from shared_code.platform.timeutil import to_iso, utc_now

    owner, friend = f"bench-{secrets.token_hex(4)}@example.org", f"bench-{secrets.token_hex(4)}@example.org"
    for email in (owner, friend):
        cosmos.create_item(cosmos.USERS, {"id": users.user_key(email), "email": email, "password_hash": "x",
                                          "created_at": to_iso(utc_now())})
    for index in range(OWNED_FILES + 1):
        name, owner_of, grantee = f"bench-{secrets.token_hex(4)}-{index}.bin", owner, friend
        if index == OWNED_FILES:
            owner_of, grantee = friend, owner  # the one grant the user received
        kms.create_key(owner_of, name)
        modulus_bytes = kms.key_of_owner(owner_of, name)["key_bits"] // 8
        datastore.store(owner_of, name, datastore.Envelope(os.urandom(4096), os.urandom(modulus_bytes), os.urandom(12)))
        kms.grant(owner_of, name, grantee)
    deletion._mark_deleting(users.get_user(owner))  # the decision (password + emailed code) is not what is measured
    with counting_transport() as counter:
        started = time.perf_counter()
        deletion.erase_account(owner, erasure.erase_user)
        elapsed = time.perf_counter() - started
    figures.deletion = (OWNED_FILES, elapsed, counter[0])


def run() -> Figures:
    """Measure and print the figures (the emulators must be up: :func:`benchmarks.stack.emulators`)."""
    figures = Figures()
    _per_request(figures)
    for count in FILE_COUNTS:
        deviceid = _busy_device(count)
        dry_s, dry_rt = _timed_revoke(deviceid, True)
        real_s, real_rt = _timed_revoke(deviceid, False)
        figures.revocations.append((count, dry_s, dry_rt, real_s, real_rt))
    _deletion(figures)
    heading("Lifecycle: storage round trips per request, and the point reads the lifecycle checks add")
    table(("request", "round trips", "added by the checks"),
          [(name, f"{total:.2f}", f"{added:+.2f}") for name, total, added in figures.per_request])
    heading("Lifecycle: revoking a device with N files, 4 challenges and a verdict")
    table(("files", "dry run s", "dry run round trips", "revoke s", "revoke round trips"),
          [(n, f"{ds:.2f}", drt, f"{rs:.2f}", rrt) for n, ds, drt, rs, rrt in figures.revocations])
    if figures.deletion:
        owned, seconds, trips = figures.deletion
        heading("Lifecycle: erasing an account")
        print(f"{owned} owned files, each granted once, and one grant received: erased in {seconds:.2f} s, "
              f"{trips} storage round trips", flush=True)
    return figures


def summary_line(figures: Figures) -> str:
    """One line for the benchmark summary."""
    added = "; ".join(f"{name} {extra:+.2f} of {total:.2f}" for name, total, extra in figures.per_request)
    revokes = "; ".join(f"{n} files {rs:.1f} s/{rrt} calls (dry run {ds:.1f} s/{drt})" for n, ds, drt, rs, rrt in figures.revocations)
    return f"lifecycle: round trips added per request: {added}; revoke: {revokes}"
