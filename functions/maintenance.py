"""Maintenance timers: the purge of expired state (tokens, challenges, sessions, OTPs, rate-limit
windows, … every container declared with a TTL), on the ``%PURGE_SCHEDULE%`` NCRONTAB schedule,
after the sweep of expired direct-upload grants and their staged blobs and the completion of
device revocations and account deletions left unfinished.
"""

import logging

import azure.functions as func

from shared_code.devices.upload_verifier import sweep_expired_grants
from shared_code.platform.errors import ServiceUnavailable
from shared_code.platform.purge import purge_expired

maintenance_bp = func.Blueprint()
log = logging.getLogger("trustgate.maintenance")


@maintenance_bp.timer_trigger(arg_name="timer", schedule="%PURGE_SCHEDULE%", run_on_startup=False)
def purge_expired_items(timer: func.TimerRequest) -> None:
    """Delete expired items in bounded batches and log counts per container.

    Raises ``RuntimeError`` after purging the others if a container could not be purged, so the
    host records the run as failed (the next run picks up where this one stopped).
    """
    if timer.past_due:
        log.warning("purge timer is past due")
    failed = []
    try:  # first, so a grant's staged blob goes before the purge may delete the grant
        sweep_expired_grants()
    except ServiceUnavailable:
        log.error("direct-upload sweep: storage unavailable, the next run continues")
        failed.append("direct-upload grants")
    failed += _complete_interrupted()
    report = purge_expired()
    log.info("purge done: %s", ", ".join(f"{name}={count}" for name, count in report.deleted.items()) or "nothing")
    failed += report.failed
    if failed:
        raise RuntimeError(f"purge failed for: {', '.join(failed)}")


def _complete_interrupted() -> list[str]:
    """Issue 16: finish device revocations and account deletions whose request failed part-way and
    was not retried. Returns the names of the steps that hit an outage."""
    from shared_code.accounts import deletion
    from shared_code.devices import lifecycle
    from shared_code.filestore import erasure

    failed = []
    for name, step in (("device revocations", lifecycle.complete_interrupted),
                       ("account deletions", lambda: deletion.finish_interrupted(erasure.erase_user))):
        try:
            count = step()
        except ServiceUnavailable:
            log.error("%s: storage unavailable, the next run continues", name)
            failed.append(name)
            continue
        if count:
            log.info("completed %d interrupted %s", count, name)
    return failed
