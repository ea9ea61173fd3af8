"""kr8s's ``Api`` as the access layer (``kube.Kube``) uses it, for unit tests of that layer without a server:
``call_api`` answers each request with ``answer(method, path)`` and records what was sent. Tests that need the
API server's behaviour use the real control plane instead."""

from __future__ import annotations

import contextlib
from typing import Any, Callable

import httpx

Answer = Callable[[str, str], httpx.Response]


class FakeApi:
    def __init__(self, answer: Answer, *, session: bool = False) -> None:
        self.answer = answer
        #: (method, path) of every request, the path joined as kr8s joins it.
        self.sent: list[tuple[str, str]] = []
        self.auth = type("Auth", (), {"server": "https://test"})()
        #: An HTTP client where a test needs the session (``_replace_session``, watches); None as before connecting.
        self._session: Any = httpx.AsyncClient(base_url="https://test") if session else None

    @property
    def methods(self) -> list[str]:
        return [method for method, _ in self.sent]

    @contextlib.asynccontextmanager
    async def call_api(self, method: str, *, base: str, url: str, version: str = "v1", **kwargs: Any):
        path = "/".join([base, *([version] if version else []), url])
        self.sent.append((method, path))
        yield self.answer(method, path)


def response(method: str, code: int, content: bytes | None = None, content_type: str = "application/json"
             ) -> httpx.Response:
    """``code`` with ``content``; by default a Status object for an error, ``{}`` otherwise."""
    if content is None:
        content = b'{"kind": "Status", "code": %d, "message": "injected"}' % code if code >= 400 else b"{}"
    return httpx.Response(code, content=content, headers={"content-type": content_type},
                          request=httpx.Request(method, "https://test"))


def codes_in_turn(codes: list[int]) -> Answer:
    """Each request answered with the next of ``codes``."""
    return lambda method, path: response(method, codes.pop(0))


def codes_by_method(answers: dict[str, list[int]]) -> Answer:
    """Each request answered with the next code listed for its method."""
    return lambda method, path: response(method, answers[method].pop(0))
