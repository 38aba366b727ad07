"""Client library for the message gatherer (seed 003): identify, authenticate, send, read back.

Methods return the server's JSON object and raise :class:`~client.device_api.ClientError` (the
server refused: ``status``, snake_case ``message``, ``detail``) or
:class:`~client.device_api.TransportError` (unreachable, timeout).

Example::

    from client.gather_api import GatherClient

    gather = GatherClient("http://localhost:7071")
    gather.identify("dale")
    gather.authenticate("dale", password)      # keeps the access token
    gather.send("Hail Dale!")                 # {"message": "stored", "id", "ts"}
    texts = [m["message"] for m in gather.iter_messages()]
    gather.logout()                           # the token is revoked on the server
"""

from __future__ import annotations

from typing import Any, Iterator

import requests

from client.device_api import DEFAULT_TIMEOUT, ClientError, iter_pages, request_json

LOGOUT = "logout"


class GatherClient:
    """One user of the message gatherer on one server.

    :param server_url: base URL, e.g. ``http://localhost:7071`` (a trailing ``/`` is ignored).
    :param session: a :class:`requests.Session` to reuse; a new one is made if omitted.
    :param timeout: seconds (or a ``(connect, read)`` tuple) per HTTP request.
    """

    def __init__(self, server_url: str, session: requests.Session | None = None,
                 timeout: float | tuple[float, float] = DEFAULT_TIMEOUT):
        self.server_url = server_url.rstrip("/")
        self.session = session or requests.Session()
        self.timeout = timeout
        self.username: str | None = None
        self._token: str | None = None

    def __repr__(self) -> str:
        return f"GatherClient({self.server_url!r}, username={self.username!r})"

    @property
    def authenticated(self) -> bool:
        """Whether this client holds an access token (it may still have expired on the server)."""
        return self._token is not None

    def identify(self, username: str) -> dict[str, Any]:
        """``POST /identify`` → ``{message: "identified", username, state}`` (201 new, 200 known).

        Forgets any token held for another user. Raises :class:`ClientError` 400 for a bad name.
        """
        result = self._post("/identify", {"message_type": "IDENTIFY", "username": username})
        if username != self.username:
            self._token = None
        self.username = username
        return result

    def authenticate(self, username: str, password: str) -> dict[str, Any]:
        """``POST /authenticate``; keeps the returned token for :meth:`send` and :meth:`list_messages`.

        The first authentication of a new user sets its password. Raises :class:`ClientError`
        401 ``invalid_credentials`` or 409 ``not_identified``.
        """
        result = self._post("/authenticate", {"message_type": "AUTHENTICATE", "username": username,
                                              "password": password})
        self.username, self._token = username, result.get("token")
        if not isinstance(self._token, str):
            raise ClientError(result.get("code", 200), "invalid_response", "the server returned no token")
        return result

    def login(self, username: str, password: str) -> dict[str, Any]:
        """IDENTIFY then AUTHENTICATE ``username``; returns the AUTHENTICATE answer."""
        self.identify(username)
        return self.authenticate(username, password)

    def send(self, message: str) -> dict[str, Any]:
        """``POST /message`` → ``{message: "stored", id, ts}`` (``logout`` → ``logged_out``).

        Raises :class:`ClientError` 401 (token missing, expired or revoked), 409
        ``not_authenticated``, 413 ``message_too_large``.
        """
        result = self._post("/message", {"message_type": "MESSAGE", "message": message}, auth=True)
        if message == LOGOUT:
            self._token = None
        return result

    def logout(self) -> dict[str, Any]:
        """Send the message ``logout``: the user is Grounded again and the token is revoked."""
        return self.send(LOGOUT)

    def list_messages(self, page_size: int | None = None, continuation: str | None = None) -> dict[str, Any]:
        """``GET /messages`` → ``{messages: [{id, ts, message}], continuation}``, oldest first."""
        params: dict[str, Any] = {}
        if page_size is not None:
            params["page_size"] = page_size
        if continuation:
            params["continuation"] = continuation
        return request_json(self.session, "GET", self.server_url, "/messages", timeout=self.timeout,
                            headers=self._headers(auth=True), params=params)

    def iter_messages(self, page_size: int | None = None) -> Iterator[dict[str, Any]]:
        """Yield every message of the user, oldest first, following continuation tokens."""
        return iter_pages(lambda token: self.list_messages(page_size=page_size, continuation=token), "messages")

    def _headers(self, auth: bool) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if auth and self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    def _post(self, route: str, body: dict[str, Any], auth: bool = False) -> dict[str, Any]:
        return request_json(self.session, "POST", self.server_url, route, timeout=self.timeout,
                            headers=self._headers(auth), json=body)
