"""Audit log figures (``python -m benchmarks --only audit``), on a fresh emulator pair of its own.

- **append**: ``APPEND_N`` sequential :func:`shared_code.audit.trail.record` calls in this process
  (Append Block with the position condition, fold, one Cosmos replace): latency p50/p95 and
  storage round trips per append.
- **added cost on the wired endpoints**: ``POST /generate_token``, ``POST /register-device``,
  ``GET /download`` (a 4 KiB encrypted file: a read that now writes ``encrypted_file_downloaded``)
  and ``POST /logout`` (``user_logged_out``: one point read more to name the session's owner)
  called as handlers (``func.HttpRequest``, no HTTP), ``ENDPOINT_N`` times each with the audit entry
  and ``ENDPOINT_N`` times with ``trail.record`` replaced by a no-op; the difference of the medians
  is what logging the decision costs, with this process's CPU ms and the storage calls per
  request each way (as counted by ``_counting``: Cosmos item reads, creates, replaces and upserts
  and the audit blob calls; deletes, queries and the store's own blob calls are not counted).
- **proofs at 10^5 entries**: ``PROOF_SIZE`` entries written as segments in bulk, folded into the
  tree by the same code that repairs a lagging state (tiles written on the way: also the cost of
  the worst-case repair), then inclusion proofs of ``PROOF_N`` random entries and consistency
  proofs from ``PROOF_N`` random sizes, at the full size: latency and blob reads per proof, with
  the process tile cache cold (emptied before each proof) and warm.
"""

from __future__ import annotations

import random
import time
from contextlib import contextmanager
from dataclasses import dataclass

from benchmarks.report import Stats, heading, summarize, table

APPEND_N = 300
ENDPOINT_N = 150
PROOF_SIZE = 100_000
PROOF_N = 200
BLOCK_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class EndpointCost:
    """One wired endpoint with its audit entry and with ``trail.record`` a no-op: latency, CPU
    ms of this process per request, storage calls per request."""

    name: str
    with_entry: Stats
    without: Stats
    cpu_with: float
    cpu_without: float
    calls_with: float
    calls_without: float


@dataclass(frozen=True)
class AuditFigures:
    append_ms: Stats
    append_round_trips: float
    endpoints: list[EndpointCost]
    build_s: float
    inclusion_cold: Stats
    inclusion_warm: Stats
    consistency_cold: Stats
    reads_inclusion: float
    reads_consistency: float


@contextmanager
def _counting():
    """Count blob and Cosmos calls of the audit modules."""
    from shared_code.audit import storage
    from shared_code.platform import cosmos

    counts = {"n": 0}
    patched = []
    for module, names in ((storage, ("read_bytes", "append_at", "tile_offset", "write_leaf_tile")),
                          (cosmos, ("read_item", "replace_item", "create_item", "upsert_item"))):
        for name in names:
            original = getattr(module, name)

            def wrapper(*args, _original=original, **kwargs):
                counts["n"] += 1
                return _original(*args, **kwargs)

            setattr(module, name, wrapper)
            patched.append((module, name, original))
    try:
        yield counts
    finally:
        for module, name, original in patched:
            setattr(module, name, original)


def _timed(call, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def _append_figures() -> tuple[Stats, float]:
    from shared_code.audit import trail

    for n in range(10):
        trail.record("bench_warmup", actor=trail.OPERATOR, objects={"n": n})
    with _counting() as counts:
        samples = _timed(lambda: trail.record("bench_append", actor=trail.OPERATOR, objects={"n": 1}), APPEND_N)
    return summarize(samples), counts["n"] / APPEND_N


def _measured(fn, n: int) -> tuple[Stats, float, float]:
    """``fn`` ``n`` times: latency, this process's CPU ms per call, storage calls per call."""
    with _counting() as counts:
        started = time.process_time()
        samples = _timed(fn, n)
        cpu_ms = (time.process_time() - started) * 1000 / n
    return summarize(samples), cpu_ms, counts["n"] / n


def _stored_file() -> tuple[str, str]:
    """A user's session and the name of a 4 KiB file they stored (not measured)."""
    import os

    from benchmarks.per_request import user_session
    from client.envelope import seal
    from shared_code.filestore import datastore, kms

    email, sid = user_session()
    name = f"bench-{os.urandom(4).hex()}.bin"
    sealed = seal(os.urandom(4096), name, kms.create_key(email, name).encode("ascii"))
    datastore.store(email, name, datastore.Envelope(sealed.encrypted_data, sealed.encrypted_aes_key,
                                                    sealed.encrypted_aes_initial_vector))
    return sid, name


def _endpoint_figures() -> list[EndpointCost]:
    import json
    import secrets

    import azure.functions as func

    import function_app
    from benchmarks.per_request import user_session
    from devhost.server import indexed_functions
    from shared_code.accounts import sessions
    from shared_code.audit import trail

    handlers = {f.get_function_name(): f.get_user_function() for f in indexed_functions(function_app.app)}

    def call(name, method, path, headers, body=b"", params=None):
        response = handlers[name](func.HttpRequest(method, f"http://localhost/{path}", headers=headers, body=body,
                                                   params=params or {}))
        return response.status_code, response.get_body()

    def token():
        status, _ = call("generate_token", "POST", "generate_token", headers={"content-type": "application/json"},
                         body=b'{"ttl_seconds": 60}')
        assert status == 200

    def device():
        body = json.dumps({"deviceid": f"bench-{secrets.token_hex(8)}", "deviceToken": secrets.token_urlsafe(32)})
        status, _ = call("register_device", "POST", "register-device", headers={"content-type": "application/json"},
                         body=body.encode())
        assert status == 201

    sid, file_name = _stored_file()

    def download():
        status, _ = call("download", "GET", "download", headers={"sid": sid}, params={"file_name": file_name})
        assert status == 200

    email, _ = user_session()
    live = [sessions.create_session(email) for _ in range(2 * (ENDPOINT_N + 10))]  # made before, not measured

    def logout():
        status, _ = call("logout", "POST", "logout", headers={"sid": live.pop(), "content-type": "application/json"},
                         body=b"{}")
        assert status == 200

    rows = []
    real = trail.record
    for name, fn in (("POST /generate_token", token), ("POST /register-device", device),
                     ("GET /download (4 KiB)", download), ("POST /logout", logout)):
        _timed(fn, 10)
        with_log = _measured(fn, ENDPOINT_N)
        trail.record = lambda *a, **k: 0
        try:
            _timed(fn, 10)
            without = _measured(fn, ENDPOINT_N)
        finally:
            trail.record = real
        rows.append(EndpointCost(name, with_log[0], without[0], with_log[1], without[1], with_log[2], without[2]))
    return rows


def _bulk_log(size: int) -> float:
    """Write ``size`` entries as segments (many records per block), fold them; returns seconds."""
    from shared_code.audit import sequencer, storage
    from shared_code.audit.entries import build_entry, encode_record

    ts = "2026-01-01T00:00:00.000000Z"
    for segment in range((size + storage.SEGMENT_ENTRIES - 1) // storage.SEGMENT_ENTRIES):
        first = segment * storage.SEGMENT_ENTRIES
        records = b"".join(encode_record(build_entry(seq=n, ts=ts, event="bench_entry", actor="operator",
                                                     objects={"token_ref": f"{n:012x}"}, outcome="granted"))
                           for n in range(first, min(size, first + storage.SEGMENT_ENTRIES)))
        client = storage.container().get_blob_client(storage.log_segment(segment))
        client.create_append_blob()
        for start in range(0, len(records), BLOCK_BYTES):
            client.append_block(records[start:start + BLOCK_BYTES])
    sequencer.reset_cache()
    started = time.perf_counter()
    state = sequencer.synced_state()
    assert state.size == size
    return time.perf_counter() - started


def _proof_figures(size: int):
    from shared_code.audit import proofs, storage

    rng = random.Random(15)
    indices = [rng.randrange(size) for _ in range(PROOF_N)]
    olds = [rng.randrange(1, size) for _ in range(PROOF_N)]

    def cold(fn):
        def run():
            storage.forget_tiles()
            fn()
        return run

    with _counting() as counts:
        inclusion_cold = _timed(cold(lambda: proofs.inclusion(indices.pop(), size)), PROOF_N)
    reads_inclusion = counts["n"] / PROOF_N
    indices = [rng.randrange(size) for _ in range(PROOF_N)]
    inclusion_warm = _timed(lambda: proofs.inclusion(indices.pop(), size), PROOF_N)
    with _counting() as counts:
        consistency_cold = _timed(cold(lambda: proofs.consistency(olds.pop(), size)), PROOF_N)
    return (summarize(inclusion_cold), summarize(inclusion_warm), summarize(consistency_cold), reads_inclusion,
            counts["n"] / PROOF_N)


def run() -> AuditFigures:
    """Run every audit figure against the current (fresh) emulators and print them."""
    import os

    from shared_code.platform import config

    os.environ["TOKEN_RATE_LIMIT_PER_MINUTE"] = "1000000"  # measure the audit entry, not the limiter
    config.reset_settings()
    heading(f"Audit log (append N={APPEND_N}, endpoints N={ENDPOINT_N} each, proofs at {PROOF_SIZE:,} entries)")
    append_ms, round_trips = _append_figures()
    endpoints = _endpoint_figures()
    from shared_code.audit import sequencer
    from shared_code.platform import cosmos

    cosmos.delete_item(cosmos.AUDIT_STATE, "log", "log")  # the proof log starts from an empty tree
    from shared_code.audit import storage
    for blob in list(storage.container().list_blobs()):
        storage.container().delete_blob(blob.name)
    sequencer.reset_cache()
    build_s = _bulk_log(PROOF_SIZE)
    inc_cold, inc_warm, cons_cold, reads_inc, reads_cons = _proof_figures(PROOF_SIZE)
    table(["what", "p50 ms", "p95 ms", "N", "storage calls each", "CPU ms each"], [
        ("trail.record (append + fold)", f"{append_ms.p50:.1f}", f"{append_ms.p95:.1f}", append_ms.n, f"{round_trips:.2f}", ""),
        *[row for e in endpoints for row in (
            (f"{e.name} with entry", f"{e.with_entry.p50:.1f}", f"{e.with_entry.p95:.1f}", e.with_entry.n,
             f"{e.calls_with:.2f}", f"{e.cpu_with:.2f}"),
            (f"{e.name} without (no-op record)", f"{e.without.p50:.1f}", f"{e.without.p95:.1f}", e.without.n,
             f"{e.calls_without:.2f}", f"{e.cpu_without:.2f}"))],
        (f"inclusion proof @ {PROOF_SIZE:,}, cold tiles", f"{inc_cold.p50:.1f}", f"{inc_cold.p95:.1f}", inc_cold.n, f"{reads_inc:.1f}", ""),
        (f"inclusion proof @ {PROOF_SIZE:,}, warm", f"{inc_warm.p50:.1f}", f"{inc_warm.p95:.1f}", inc_warm.n, "", ""),
        (f"consistency proof to {PROOF_SIZE:,}, cold", f"{cons_cold.p50:.1f}", f"{cons_cold.p95:.1f}", cons_cold.n, f"{reads_cons:.1f}", ""),
    ])
    print(f"fold of {PROOF_SIZE:,} stored entries into the tree (tiles included): {build_s:.1f} s", flush=True)
    return AuditFigures(append_ms, round_trips, endpoints, build_s, inc_cold, inc_warm, cons_cold, reads_inc, reads_cons)
