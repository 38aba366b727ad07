"""Command line: ``python -m devhost run`` (the app on http://127.0.0.1:$PORT) and ``python -m devhost demo``.

``run`` loads ``local.settings.json`` (or, when there is none, ``local.settings.example.json``),
starts Azurite and cosmosdb-server unless ``DEVHOST_EMULATORS=0`` (then the settings' endpoints
are used as they are), provisions the database and containers, and serves ``function_app.app``
on ``PORT`` (default 7071; ``DEVHOST_HOST``, default 127.0.0.1) until Ctrl-C or SIGTERM, with
``FUNCTIONS_WORKER_PROCESS_COUNT`` HTTP worker processes (default: one per CPU) of
``PYTHON_THREADPOOL_THREAD_COUNT`` threads each, as the Functions host runs them.
Environment variables override every setting.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import azure.functions as func

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from devhost.settings import get_number, get_setting  # noqa: E402

if TYPE_CHECKING:
    from devhost.mailbox import Mailbox
    from devhost.server import RunningHost

log = logging.getLogger("devhost")


def use_example_settings_if_needed() -> None:
    """Point ``TRUSTGATE_LOCAL_SETTINGS`` at ``local.settings.example.json`` when neither that
    variable nor ``local.settings.json`` exists."""
    if os.environ.get("TRUSTGATE_LOCAL_SETTINGS") or (ROOT / "local.settings.json").exists():
        return
    example = ROOT / "local.settings.example.json"
    os.environ["TRUSTGATE_LOCAL_SETTINGS"] = str(example)
    log.info("no local.settings.json: using %s", example.name)


@contextlib.contextmanager
def local_emulators(mailbox_required: bool = False) -> Iterator[Mailbox | None]:
    """Start the emulators and the local mailbox and put their endpoints into ``os.environ``
    (unless DEVHOST_EMULATORS=0 / DEVHOST_MAILBOX=0), and set up the dev-only test attestation
    authority (:mod:`devhost.test_authority`, unless DEVHOST_TEST_AUTHORITY=0). Yields the mailbox
    (see :func:`local_mailbox`)."""
    from devhost.test_authority import local_test_authority

    with local_mailbox(required=mailbox_required) as mailbox, local_test_authority(ROOT):
        if get_setting("DEVHOST_EMULATORS", "1") == "0":
            log.info("DEVHOST_EMULATORS=0: using the storage and Cosmos DB endpoints from the settings")
            yield mailbox
            return
        from devhost.emulators import running_emulators

        log.info("starting Azurite and cosmosdb-server ...")
        with running_emulators(quiet=True) as emulators:
            os.environ.update(emulators.settings())
            log.info("Azurite on port %d, cosmosdb-server on port %d", emulators.blob_port, emulators.cosmos_port)
            yield mailbox


@contextlib.contextmanager
def local_mailbox(required: bool = False) -> Iterator[Mailbox | None]:
    """Run the dev SMTP server (:mod:`devhost.mailbox`) on a free port and point ``SMTP_*`` at it:
    every mail is kept in ``.devhost/mail/`` and OTP mails are printed on the console. Yields the
    running :class:`~devhost.mailbox.Mailbox` (read codes with its ``latest_otp``), or ``None``
    when ``DEVHOST_MAILBOX=0`` or when ``SMTP_HOST`` is set in the environment (an environment
    variable overrides every setting, the dev mailbox included): then the ``SMTP_*`` settings are
    used as they are. ``required`` (the demo, which must read the codes) ignores ``SMTP_HOST``."""
    if get_setting("DEVHOST_MAILBOX", "1") == "0":
        log.info("DEVHOST_MAILBOX=0: sending mail with the SMTP_* settings")
        yield None
        return
    if os.environ.get("SMTP_HOST") and not required:
        log.info("SMTP_HOST is set in the environment: sending mail through %s, not the dev mailbox",
                 os.environ["SMTP_HOST"])
        yield None
        return
    from devhost.mailbox import running_mailbox, smtp_settings

    folder = ROOT / ".devhost" / "mail"
    with running_mailbox(folder=folder, echo=True) as mailbox:
        os.environ.update(smtp_settings(mailbox))
        log.info("mailbox (SMTP) on port %d, mails kept in %s", mailbox.port, folder)
        yield mailbox


def describe(function: func.Function, route_prefix: str) -> str:
    """One line per function: name, trigger kind and what fires it (methods + URL path, schedule,
    or blob path and connection)."""
    trigger = function.get_trigger()
    name = function.get_function_name()
    kind = trigger.get_binding_name()
    if kind == "httpTrigger":
        methods = ",".join(sorted(str(getattr(m, "value", m)).upper() for m in trigger.methods or [])) or "ALL"
        path = "/".join(part.strip("/") for part in (route_prefix, trigger.route or name) if part.strip("/"))
        return f"{name:<28} http   {methods:<18} /{path}"
    if kind == "timerTrigger":
        startup = " (runs on startup)" if trigger.run_on_startup else ""
        return f"{name:<28} timer  {trigger.schedule}{startup}"
    if kind == "blobTrigger":
        return f"{name:<28} blob   {trigger.path} (connection {trigger.connection})"
    return f"{name:<28} {kind} (not run by devhost)"


def run() -> int:
    """Serve the app until Ctrl-C / SIGTERM. Returns the exit code."""
    use_example_settings_if_needed()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with local_emulators():
        from devhost.provision import provision
        from devhost.server import serving
        from devhost.workers import default_worker_count
        from shared_code.platform.config import reset_settings

        reset_settings()
        try:
            provision()
        except Exception as exc:  # e.g. an unreachable or read-only store: the app may still be useful
            log.error("provisioning failed (%s: %s); serving anyway", type(exc).__name__, exc)
        import function_app

        host = get_setting("DEVHOST_HOST", "127.0.0.1") or "127.0.0.1"
        port = int(get_number("PORT", 7071, minimum=0))
        with contextlib.ExitStack() as stack:
            try:
                running = stack.enter_context(serving(function_app.app, host=host, port=port,
                                                      worker_processes=default_worker_count(), app_ref="function_app:app"))
            except OSError as exc:
                log.error("cannot listen on %s:%d: %s (set PORT to use another port)", host, port, exc.strerror or exc)
                return 1
            return _serve_until_stopped(running, stop)


def _serve_until_stopped(running: RunningHost, stop: threading.Event) -> int:
    """Print the URL and functions, wait for Ctrl-C / SIGTERM; 1 if the server died first."""
    print(f"TrustGate devhost on {running.base_url}  (Ctrl-C to stop)", flush=True)
    for function in running.functions:
        reason = running.skipped.get(function.get_function_name())
        line = describe(function, running.route_prefix)
        print(f"  {line}" + (f"  NOT LOADED: {reason}" if reason else ""), flush=True)
    try:
        while running.running and not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    print("stopping ...", flush=True)
    return 0 if running.running else 1


def demo(argv: list[str]) -> int:
    """Run ``devhost.demo.main()`` (imported only now), with ``sys.argv`` holding the demo's args."""
    from devhost import demo as demo_module

    sys.argv = [f"{sys.argv[0]} demo", *argv]
    result = demo_module.main()
    return result if isinstance(result, int) else 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and dispatch."""
    parser = argparse.ArgumentParser(prog="python -m devhost", description="Local host for the TrustGate Functions app.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="start the emulators and serve the app on $PORT (default 7071)")
    commands.add_parser("demo", help="run the demo (devices, messages, file store) against a fresh local stack (extra arguments go to it)")
    options, extra = parser.parse_known_args(argv)
    if extra and options.command != "demo":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd: its DEBUG lines would show mail bodies
    if options.command == "demo":
        return demo(extra)
    return run()


if __name__ == "__main__":
    sys.exit(main())
