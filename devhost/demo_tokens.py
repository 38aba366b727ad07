"""``make demo`` step for the token service and the purge timer.

Over HTTP, as any caller would (each request is printed): issue a normal and a one-time token,
verify both (the one-time token passes once, then verifies ``false``), revoke the normal one
(it verifies ``false`` at once), then issue a token that lives one second, let it expire (it
verifies ``false`` while its item is still stored) and wait for the purge timer
(``purge_expired_items``, which the demo runs every few seconds) to delete it. The demo process
hosts the app, so it reads the ``tokens`` container directly to show the item before and after.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable

import requests

from devhost.server import RunningHost

Check = Callable[[str, bool], None]
#: NCRONTAB schedule of the purge timer during the demo: every 3 s instead of every 5 minutes.
DEMO_PURGE_SCHEDULE = "*/3 * * * * *"
SHORT_TTL_SECONDS = 1


def _masked(text: str) -> str:
    """A token as printed: its first 6 characters only (tokens are secrets, even in a demo)."""
    return text.replace(text.removeprefix("Bearer "), text.removeprefix("Bearer ")[:6] + "…")


def _call(method: str, url: str, **kwargs: Any) -> dict[str, Any]:
    shown = {k: {name: _masked(v) if name in ("token", "Authorization") else v for name, v in value.items()}
             for k, value in kwargs.items() if k in ("json", "headers")}
    response = requests.request(method, url, timeout=30, **kwargs)
    body = response.json()
    route = url.split("/", 3)[-1]
    print(f"  {method} /{route} {json.dumps(shown) if shown else ''}-> {response.status_code} "
          f"{json.dumps({k: v for k, v in body.items() if k != 'token'})}", flush=True)
    return body


def _stored(token: str) -> bool:
    """Whether the token's item (id = SHA-256 of the token) is still in the ``tokens`` container."""
    from shared_code.platform import cosmos
    from shared_code.platform.crypto import sha256_hex

    return cosmos.read_item(cosmos.TOKENS, sha256_hex(token), sha256_hex(token)) is not None


def token_demo(host: RunningHost, check: Check) -> None:
    """Run the token-service step against ``host``; ``check(label, ok)`` records each result."""
    base = host.base_url
    print("\ntoken service:", flush=True)

    def issue(**fields: Any) -> str:
        return _call("POST", f"{base}/generate_token", json=fields)["token"]

    def valid(token: str) -> bool:
        return _call("GET", f"{base}/verify_token", headers={"Authorization": f"Bearer {token}"})["valid"]

    normal, once = issue(ttl_seconds=600, scope="demo:read"), issue(ttl_seconds=600, one_time=True)
    check("a normal token verifies every time", valid(normal) and valid(normal))
    check("a one-time token verifies once, then false", [valid(once), valid(once)] == [True, False])
    _call("POST", f"{base}/revoke_token", json={"token": normal})
    check("a revoked token verifies false at once", valid(normal) is False)

    short = issue(ttl_seconds=SHORT_TTL_SECONDS)
    time.sleep(SHORT_TTL_SECONDS + 0.5)
    expired_at = time.monotonic()
    check("an expired token verifies false, though its item is still stored", valid(short) is False and _stored(short))
    mark = max((r.seq for r in host.invocations), default=0)
    try:
        run = host.wait_for_invocation("purge_expired_items", lambda r: r.seq > mark and r.status == "succeeded", timeout=30)
        waited = time.monotonic() - expired_at
        print(f"  purge_expired_items ran ({run.duration_ms:.0f} ms) {waited:.1f} s after the expiry", flush=True)
        check("the purge timer deleted the expired token's item", not _stored(short))
    except TimeoutError as error:
        check(f"the purge timer ran within 30 s ({error})", False)
