"""Audit log API: checkpoints, entries and proofs for operators (function key in Azure),
a device's own entries with their inclusion proofs, and the checkpoint timer.

Hashes and proofs are standard base64 (RFC 4648 §4); entries are their canonical JSON text (the
exact bytes that were hashed, as UTF-8).
"""

import base64
import logging

import azure.functions as func

from shared_code.audit import checkpoints, proofs
from shared_code.audit.sequencer import load_state
from shared_code.devices import registry
from shared_code.platform.errors import NotFound
from shared_code.platform.http import handle_errors, json_response, parse_int_param

audit_bp = func.Blueprint()
log = logging.getLogger("trustgate.audit")

MAX_INDEX = 10**15
PAGE_MAX = 256
DEVICE_PAGE_MAX = 50


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _latest() -> checkpoints.Checkpoint:
    latest = checkpoints.latest()
    if latest is None:
        raise NotFound("no_checkpoint", "no checkpoint has been published yet")
    return latest


def _checkpoint_fields(latest: checkpoints.Checkpoint) -> dict:
    return {"checkpoint": latest.note, "size": latest.size, "root": _b64(latest.root),
            "published_at": latest.published_at, "verifier_key": checkpoints.verifier_key()}


@audit_bp.route(route="audit/checkpoint", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@handle_errors
def audit_checkpoint(req: func.HttpRequest) -> func.HttpResponse:
    """GET /audit/checkpoint → 200 {checkpoint (signed note), size, root, published_at, verifier_key} / 404."""
    return json_response(200, "audit_checkpoint", **_checkpoint_fields(_latest()))


@audit_bp.route(route="audit/entries", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@handle_errors
def audit_entries(req: func.HttpRequest) -> func.HttpResponse:
    """GET /audit/entries?start&end → 200 {entries: [{index, entry}], next} (at most 256 a page)."""
    start = parse_int_param(req.params.get("start"), "start", 0, 0, MAX_INDEX)
    end = parse_int_param(req.params.get("end"), "end", start + PAGE_MAX, start, MAX_INDEX)
    state = load_state()
    page_end = min(end, start + PAGE_MAX, state.size)
    found = proofs.entries(start, page_end, state)
    following = page_end if page_end < min(end, state.size) else None
    return json_response(200, "audit_entries", entries=[{"index": i, "entry": e} for i, e in found],
                         size=state.size, next=following)


@audit_bp.route(route="audit/proof/inclusion", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@handle_errors
def audit_inclusion_proof(req: func.HttpRequest) -> func.HttpResponse:
    """GET /audit/proof/inclusion?index&size → 200 {index, size, leaf_hash, proof} / 400."""
    size = parse_int_param(req.params.get("size"), "size", 0, 1, MAX_INDEX)
    index = parse_int_param(req.params.get("index"), "index", -1, 0, MAX_INDEX)
    leaf, proof = proofs.inclusion(index, size)
    return json_response(200, "audit_inclusion_proof", index=index, size=size, leaf_hash=_b64(leaf),
                         proof=[_b64(h) for h in proof])


@audit_bp.route(route="audit/proof/consistency", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@handle_errors
def audit_consistency_proof(req: func.HttpRequest) -> func.HttpResponse:
    """GET /audit/proof/consistency?from&to → 200 {from, to, proof} / 400."""
    old = parse_int_param(req.params.get("from"), "from", 0, 1, MAX_INDEX)
    new = parse_int_param(req.params.get("to"), "to", 0, 1, MAX_INDEX)
    proof = proofs.consistency(old, new)
    return json_response(200, "audit_consistency_proof", **{"from": old, "to": new}, proof=[_b64(h) for h in proof])


@audit_bp.route(route="api/device/audit", methods=["GET"])
@handle_errors
def device_audit(req: func.HttpRequest) -> func.HttpResponse:
    """GET /api/device/audit?page_size&continuation (device headers) → 200 {checkpoint, entries:
    [{index, entry, proof}], continuation}: the entries about this device in the latest
    checkpoint, each with its inclusion proof for that checkpoint's size."""
    device = registry.authenticate(req.headers.get("deviceid"), req.headers.get("deviceToken"))
    page_size = parse_int_param(req.params.get("page_size"), "page_size", DEVICE_PAGE_MAX, 1, DEVICE_PAGE_MAX)
    latest = _latest()
    page = proofs.subject_entries(f"device:{device['id']}", page_size, req.params.get("continuation"), latest.size)
    items = [{"index": index, "entry": entry, "proof": [_b64(h) for h in proofs.inclusion(index, latest.size)[1]]}
             for index, entry in page.entries]
    return json_response(200, "device_audit", **_checkpoint_fields(latest), entries=items,
                         continuation=page.continuation)


@audit_bp.timer_trigger(arg_name="timer", schedule="0 * * * * *", run_on_startup=False)
def audit_checkpoint_timer(timer: func.TimerRequest) -> None:
    """Every minute: fold stored entries into the tree and publish a signed checkpoint when the log
    grew and the newest checkpoint is ``AUDIT_CHECKPOINT_SECONDS`` old (or there is none)."""
    published = checkpoints.publish_if_due()
    if published is not None:
        log.info("audit checkpoint at size %d", published.size)
