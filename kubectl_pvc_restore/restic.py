"""Reading a restic repository's snapshot list with the local ``restic`` binary, using the repository Secret of a
ReplicationSource as the environment (its values are never printed)."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
from typing import Any


class ResticError(Exception):
    pass


def secret_env(secret: dict[str, Any]) -> dict[str, str]:
    env = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    env.update(secret.get("stringData") or {})
    return env


def redact(text: str, env: dict[str, str]) -> str:
    for value in env.values():
        if len(value) >= 4:
            text = text.replace(value, "<redacted>")
    return text


async def list_snapshots(env: dict[str, str], *, binary: str | None = None, timeout: float = 60.0
                         ) -> list[dict[str, str]]:
    """The snapshots volsync's mover considers (paths under /data), oldest first, as ``[{"id", "short_id",
    "time", "paths", "hostname"}]``. Raises ResticError with a redacted message."""
    restic = binary or shutil.which("restic")
    if restic is None:
        raise ResticError("restic is not installed here; install it to list the repository's snapshots")
    import os

    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("RESTIC_", "AWS_", "B2_", "AZURE_",
                                                                          "GOOGLE_"))}
    full_env.update(env)
    proc = await asyncio.create_subprocess_exec(restic, "snapshots", "--json", "--no-lock", env=full_env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        raise ResticError(f"restic did not answer within {timeout:g}s (is the repository reachable from here?)")
    if proc.returncode != 0:
        raise ResticError("restic snapshots failed: " + redact(err.decode(errors="replace").strip(), env))
    snapshots = []
    for s in json.loads(out or b"[]") or []:
        if any("/data" in p for p in s.get("paths") or []):
            snapshots.append({"id": s["id"], "short_id": s.get("short_id") or s["id"][:8], "time": s["time"],
                              "paths": s.get("paths") or [], "hostname": s.get("hostname", "")})
    snapshots.sort(key=lambda s: s["time"])
    return snapshots


async def source_snapshots(kube: Any, source: dict[str, Any], *, binary: str | None = None, timeout: float = 60.0
                           ) -> tuple[list[dict[str, str]] | None, str | None]:
    """The snapshots behind a ReplicationSource, or None and why they cannot be listed from here."""
    from . import kube as k
    from . import volsync

    mover = volsync.mover_of(source)
    if mover != "restic":
        return None, f"the {mover} mover keeps no snapshot history; only the latest can be restored"
    namespace = source["metadata"]["namespace"]
    repository = source["spec"]["restic"].get("repository")
    secret = await kube.get_or_none(k.SECRETS, repository, namespace) if repository else None
    if secret is None:
        return None, f"repository Secret {repository} not found in namespace {namespace}"
    try:
        return await list_snapshots(secret_env(secret), binary=binary, timeout=timeout), None
    except ResticError as exc:
        return None, str(exc)
