"""A minimal synchronous Kubernetes API client for the dev tools (the node agent, the volsync harness).

The dev tools stand in for parts of a cluster (a kubelet, a storage provisioner) and must not share the product's
code: a bug in the product's kube layer would otherwise hide in its own test harness. This is just enough of a
client for them: a kubeconfig with a client certificate or a token, JSON in and out, and a timeout on every request.
"""

from __future__ import annotations

import base64
import ssl
import tempfile
from pathlib import Path
from typing import Any

import httpx
import yaml


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


class Api:
    def __init__(self, kubeconfig: str | Path, *, timeout: float = 30.0) -> None:
        config = yaml.safe_load(Path(kubeconfig).read_text())
        context = next(c["context"] for c in config["contexts"] if c["name"] == config["current-context"])
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
        user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
        self._tmp = tempfile.TemporaryDirectory(prefix="kubeapi-")

        def path(key: str, source: dict[str, Any]) -> str | None:
            if source.get(f"{key}-data"):
                target = Path(self._tmp.name) / key
                target.write_bytes(base64.b64decode(source[f"{key}-data"]))
                return str(target)
            return source.get(key)

        ctx = ssl.create_default_context(cafile=path("certificate-authority", cluster))
        cert, key = path("client-certificate", user), path("client-key", user)
        if cert and key:
            ctx.load_cert_chain(cert, key)
        headers = {"Authorization": f"Bearer {user['token']}"} if user.get("token") else {}
        self.server = cluster["server"]
        self.http = httpx.Client(base_url=cluster["server"], verify=ctx, headers=headers, timeout=timeout)

    def request(self, method: str, path: str, *, body: Any = None, params: dict[str, Any] | None = None,
                content_type: str = "application/json") -> dict[str, Any] | None:
        """The decoded JSON response; None on 404."""
        headers = {"Content-Type": content_type} if body is not None else {}
        response = self.http.request(method, path, json=body, params=params, headers=headers)
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text
            raise ApiError(response.status_code, message)
        return response.json() if response.content else {}

    def get(self, path: str, **params: Any) -> dict[str, Any] | None:
        return self.request("GET", path, params=params or None)

    def list(self, path: str, **params: Any) -> list[dict[str, Any]]:
        return (self.request("GET", path, params=params or None) or {}).get("items") or []

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """Create; None when it already exists."""
        try:
            return self.request("POST", path, body=body)
        except ApiError as exc:
            if exc.status == 409:
                return None
            raise

    def patch(self, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        return self.request("PATCH", path, body=body, content_type="application/merge-patch+json")

    def delete(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any] | None:
        return self.request("DELETE", path, body=body)

    def close(self) -> None:
        self.http.close()
        self._tmp.cleanup()
