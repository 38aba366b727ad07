"""``python -m benchmarks.login_timing``: does ``POST /login`` take as long for an unknown email as
for a wrong password? (The API promises the same answer and about the same time.)

Starts its own emulators, a local SMTP mailbox and an in-process devhost, registers one user,
then sends ``N`` logins of each kind interleaved (wrong password for the user / a fresh unknown
address) over one keep-alive session and prints p50/p95/mean per kind and the difference of the
medians. Prints figures only; nothing is asserted.
"""

from __future__ import annotations

import os
import secrets
import sys
import time

import requests

N = 40
WARMUP = 3
# The benchmark guesses one account's password N + WARMUP times from one address: lift the
# login throttling (shared_code.platform.login_throttle) that would otherwise answer 429 after a few.
BENCH_SETTINGS = {"LOGIN_RATE_LIMIT_PER_MINUTE": "1000000", "LOGIN_CLIENT_RATE_LIMIT_PER_MINUTE": "1000000"}


def _timed(session: requests.Session, url: str, email: str, password: str) -> tuple[float, int]:
    started = time.perf_counter()
    response = session.post(url, json={"email": email, "password": password}, timeout=30)
    return (time.perf_counter() - started) * 1000, response.status_code


def run(base_url: str, mailbox) -> dict[str, object]:
    """Measure and print; returns ``{"unknown": Stats, "wrong": Stats}`` in milliseconds."""
    from benchmarks.report import heading, summarize, table
    from client.user_api import UserClient
    from shared_code.accounts import otp

    email, password = f"bench-{secrets.token_hex(4)}@example.org", "Tg-" + secrets.token_urlsafe(18)
    users = UserClient(base_url)
    users.register(email, password)
    users.verify_register(email, mailbox.latest_otp(email, otp.REGISTER))
    session, url = requests.Session(), base_url + "/login"
    samples: dict[str, list[float]] = {"unknown": [], "wrong": []}
    for i in range(WARMUP + N):
        for kind in ("unknown", "wrong"):
            who = email if kind == "wrong" else f"ghost-{secrets.token_hex(6)}@example.org"
            ms, status = _timed(session, url, who, password + "-wrong" if kind == "wrong" else password)
            assert status == 401, status
            if i >= WARMUP:
                samples[kind].append(ms)
    stats = {kind: summarize(values) for kind, values in samples.items()}
    heading("POST /login: unknown email vs wrong password (ms)")
    table(("kind", "N", "p50", "p95", "mean"),
          [(kind, s.n, f"{s.p50:.1f}", f"{s.p95:.1f}", f"{s.mean:.1f}") for kind, s in stats.items()])
    print(f"median difference: {stats['unknown'].p50 - stats['wrong'].p50:+.1f} ms", flush=True)
    return stats


def main() -> int:
    from benchmarks import stack
    from devhost.mailbox import running_mailbox, smtp_settings
    from shared_code.platform.config import reset_settings

    with stack.emulators(), running_mailbox() as mailbox:
        os.environ.update({**smtp_settings(mailbox), **BENCH_SETTINGS})
        reset_settings()
        with stack.in_process_devhost() as base_url:
            run(base_url, mailbox)
    return 0


if __name__ == "__main__":
    sys.exit(main())
