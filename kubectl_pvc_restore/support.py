"""The versions pvc-restore supports, in one place: the README states them, ``kubectl pvc-restore doctor`` and the
controller's start-up log compare the API server against them, the chart's ``kubeVersion`` refuses below the minimum
and ``scripts/compat.sh`` proves the ends of the range (tests/test_support.py checks that they all agree).

Kubernetes: what the product needs is 1.30 (ValidatingAdmissionPolicy v1 with CEL ``authorizer`` checks, variables
and matchConditions; the CRD's CEL rules incl. transition rules and list functions, within the cost limits that
``maxItems`` bounds). The range starts at 1.34, the oldest minor proven here (the oldest Kubernetes the Go module proxy
serves, so the oldest this project can build and test) and ends at 1.36, the newest proven. The MutatingAdmissionPolicy
that records the requester needs its v1 API (1.36): below, the chart leaves it out (``recordRequester: auto``).
See the README's "Supported versions" for the reasons.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

#: The oldest and the newest Kubernetes minor proven (scripts/compat.sh), inclusive.
KUBERNETES_MIN = (1, 34)
KUBERNETES_MAX = (1, 36)
#: The Kubernetes releases scripts/compat.sh runs on by default: the newest patch of the oldest supported minor (as
#: served by the Go module proxy), and the pinned newest (tools/controlplane/kubernetes/go.mod, what .ci/run runs).
KUBERNETES_PROVEN = ("v1.34.4", "v1.36.3")
#: The volsync releases proven (their manager and restic mover run for real); the range is between them.
VOLSYNC_MIN = (0, 14)
VOLSYNC_MAX = (0, 16)
VOLSYNC_PROVEN = ("v0.14.0", "v0.16.0")
#: The Python versions the package claims (pyproject.toml's requires-python and classifiers).
PYTHON_MIN = (3, 10)
PYTHON_MAX = (3, 13)


def minor(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def kubernetes_range() -> str:
    return f"Kubernetes {minor(KUBERNETES_MIN)} to {minor(KUBERNETES_MAX)}"


@dataclass(frozen=True)
class ServerSupport:
    #: "supported", "too-old", "too-new" or "unknown" (the server's version could not be read).
    status: str
    #: The server's version as it reports it (gitVersion), or "" when unknown.
    version: str
    #: One sentence for a user: the version, the supported range and what follows.
    message: str

    @property
    def supported(self) -> bool:
        return self.status == "supported"


def parse_kubernetes_version(info: Mapping[str, Any]) -> tuple[int, int] | None:
    """(major, minor) from an API server's ``/version``: gitVersion ``v1.34.4``, ``v1.33.5+k3s1``,
    ``v1.32.9-eks-113cf36``; else major/minor (``"1"``, ``"34+"`` on some managed clusters)."""
    match = re.match(r"^v?(\d+)\.(\d+)(?:\.|$|[-+])", str(info.get("gitVersion") or ""))
    if match:
        return int(match[1]), int(match[2])
    major = re.match(r"^(\d+)", str(info.get("major") or ""))
    minor_ = re.match(r"^(\d+)", str(info.get("minor") or ""))
    if major and minor_:
        return int(major[1]), int(minor_[1])
    return None


def kubernetes_support(info: Mapping[str, Any] | None) -> ServerSupport:
    """Whether the API server whose ``/version`` is ``info`` is within the supported range."""
    info = info or {}
    version = str(info.get("gitVersion") or "")
    parsed = parse_kubernetes_version(info)
    supported = f"pvc-restore supports {kubernetes_range()}"
    if parsed is None:
        return ServerSupport("unknown", version, f"the API server's version {version or '(none)'} could not be read; "
                                                 f"{supported}")
    shown = version or minor(parsed)
    if parsed < KUBERNETES_MIN:
        return ServerSupport(
            "too-old", shown,
            f"Kubernetes {shown} is older than {minor(KUBERNETES_MIN)}: {supported}. The chart refuses to install "
            "(Chart.yaml kubeVersion) and restores are not proven to work: the CRD's validation rules and the "
            "admission policies may be refused or not enforced")
    if parsed > KUBERNETES_MAX:
        return ServerSupport(
            "too-new", shown,
            f"Kubernetes {shown} is newer than {minor(KUBERNETES_MAX)}, the newest version pvc-restore was tested "
            f"on ({supported}); it is expected to work, but is not proven")
    return ServerSupport("supported", shown, f"Kubernetes {shown} is supported ({kubernetes_range()})")


async def server_support(kube: Any) -> ServerSupport:
    """Ask the API server behind a ``kubectl_pvc_restore.kube.Kube`` for its version and compare it with the range.
    A failed request gives "unknown" (with the reason) rather than an error: the version is advice."""
    try:
        info = await kube.version()
    except Exception as exc:  # noqa: BLE001 - any failure to read /version only makes the answer unknown
        return ServerSupport("unknown", "", f"the API server's version could not be read "
                                            f"({exc or type(exc).__name__}); pvc-restore supports {kubernetes_range()}")
    return kubernetes_support(info if isinstance(info, Mapping) else {})


async def doctor_check(kube: Any, report: Any) -> ServerSupport:
    """``kubectl pvc-restore doctor``'s check of the server's version: ok within the range, a failure below it, a
    warning above it or when it cannot be read. ``report`` has ok(text), warn(text, fix) and fail(text, fix)."""
    found = await server_support(kube)
    if found.status == "supported":
        report.ok(found.message)
    elif found.status == "too-old":
        report.fail(found.message, f"upgrade the cluster to Kubernetes {minor(KUBERNETES_MIN)} or newer")
    else:
        report.warn(found.message, "")
    return found
