"""User-side library for the accounts API (seed 002): register, log in with an emailed code, log out.

Every method returns the server's parsed JSON object and raises
:class:`client.device_api.ClientError` (an error status: ``user_exists``, ``weak_password``,
``otp_failed``, ``login_failed`` …) or :class:`client.device_api.TransportError` (unreachable,
timeout). Passwords, codes and session ids are sent only in request bodies and the ``sid``
header, never in URLs, and never printed.

Example::

    users = UserClient("http://localhost:7071")
    users.register("alice@example.org", password)       # a code arrives by mail
    users.verify_register("alice@example.org", "123456")
    users.login("alice@example.org", password)          # another code arrives
    sid = users.verify_login("alice@example.org", "654321")["sid"]
    users.logout(sid)
"""

from __future__ import annotations

from typing import Any

import requests

from client.device_api import DEFAULT_TIMEOUT, request_json


class UserClient:
    """Calls ``/register``, ``/verify_register``, ``/login``, ``/verify_login``, ``/logout`` and
    the account deletion (``/delete_account/otp``, ``/delete_account``).

    :param server_url: base URL, e.g. ``http://localhost:7071`` (no trailing slash needed).
    :param timeout: seconds per HTTP request.
    :param session: a :class:`requests.Session` to reuse; a new one is made if omitted.
    """

    def __init__(self, server_url: str, *, timeout: float = DEFAULT_TIMEOUT, session: requests.Session | None = None):
        self.server_url = server_url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()

    def register(self, email: str, password: str) -> dict[str, Any]:
        """``POST /register`` → ``{message: "registration_pending"}``; a code is mailed to ``email``."""
        return self._post("/register", {"email": email, "password": password})

    def verify_register(self, email: str, otp: str) -> dict[str, Any]:
        """``POST /verify_register`` → ``{message: "registration_success"}``."""
        return self._post("/verify_register", {"email": email, "otp": otp})

    def login(self, email: str, password: str) -> dict[str, Any]:
        """``POST /login`` → ``{message: "login_otp_sent"}``; a code is mailed to ``email``."""
        return self._post("/login", {"email": email, "password": password})

    def verify_login(self, email: str, otp: str) -> dict[str, Any]:
        """``POST /verify_login`` → ``{message: "login_success", sid}`` (keep ``sid`` secret)."""
        return self._post("/verify_login", {"email": email, "otp": otp})

    def logout(self, sid: str) -> dict[str, Any]:
        """``POST /logout`` with header ``sid`` → ``{message: "logout_success"}``."""
        return request_json(self.session, "POST", self.server_url, "/logout", self.timeout, headers={"sid": sid})

    def request_deletion(self, sid: str, password: str) -> dict[str, Any]:
        """``POST /delete_account/otp`` with header ``sid`` → ``{message: "delete_otp_sent"}``; a
        deletion code is mailed. Raises :class:`client.device_api.ClientError` 401 ``invalid_password``."""
        return request_json(self.session, "POST", self.server_url, "/delete_account/otp", self.timeout,
                            headers={"sid": sid}, json={"password": password})

    def delete_account(self, sid: str, password: str, otp: str) -> dict[str, Any]:
        """``POST /delete_account`` → ``{message: "account_deleted", summary}``: the account, its keys,
        files and grants are gone. After a 503, call again with the same arguments: it completes."""
        return request_json(self.session, "POST", self.server_url, "/delete_account", self.timeout,
                            headers={"sid": sid}, json={"password": password, "otp": otp})

    def _post(self, route: str, document: dict[str, Any]) -> dict[str, Any]:
        return request_json(self.session, "POST", self.server_url, route, self.timeout, json=document)
