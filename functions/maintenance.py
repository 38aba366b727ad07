"""Maintenance timers: the purge of expired state (tokens, challenges, sessions, OTPs, rate-limit
windows, … every container declared with a TTL), on the ``%PURGE_SCHEDULE%`` NCRONTAB schedule.
"""

import logging

import azure.functions as func

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
    report = purge_expired()
    log.info("purge done: %s", ", ".join(f"{name}={count}" for name, count in report.deleted.items()) or "nothing")
    if report.failed:
        raise RuntimeError(f"purge failed for: {', '.join(report.failed)}")
