"""A real local Kubernetes control plane for the tests and the demo.

``scripts/build-controlplane.sh`` builds etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and
kwok from Go modules into a cache outside the repository. This module starts them with
``kwokctl create cluster --runtime binary`` (secure port, RBAC, admin client certificate, service-account keys),
adds kwok nodes so pods get scheduled, run and terminate like real ones, installs the volsync CRDs and the
PVCRestore CRD, and tears it all down.

    python -m devtools.controlplane up [--name NAME]      # prints the kubeconfig path
    python -m devtools.controlplane up --name short-tokens \
        --kube-apiserver-flag service-account-max-token-expiration=1h \
        --kube-apiserver-flag service-account-extend-token-expiration=false
    python -m devtools.controlplane down [--name NAME]

Extra kube-apiserver flags (``ControlPlane(apiserver_flags={...})``, ``--kube-apiserver-flag KEY=VALUE``) are passed
with kwokctl's ``--extra-args kube-apiserver=KEY=VALUE``; give such a cluster a name of its own (the default cluster
has none).

Versions (scripts/compat.sh sets both): ``PVC_RESTORE_KUBERNETES_VERSION=v1.N.P`` runs that Kubernetes release instead
of the pinned one (build-controlplane.sh builds and caches it); ``PVC_RESTORE_VOLSYNC_VERSION=vX.Y.Z`` installs that
volsync release's ReplicationSource/-Destination CRDs instead of tools/controlplane/volsync.version's (from
scripts/build-volsync.sh's build of that release, which copies them from its Go module).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Mapping

REPO = Path(__file__).resolve().parents[1]
BUILD_SCRIPT = REPO / "scripts" / "build-controlplane.sh"
PVCRESTORE_CRD = REPO / "charts" / "pvc-restore" / "crds" / "pvcrestores.yaml"
DEFAULT_WORKDIR = Path(os.environ.get("PVC_RESTORE_CACHE", Path.home() / ".cache" / "pvc-restore")) / "clusters"
VOLSYNC_VERSION_FILE = REPO / "tools" / "controlplane" / "volsync.version"


def build() -> Path:
    """Build (or find cached) binaries; returns the cache directory holding bin/ and crds/."""
    out = subprocess.run(["bash", str(BUILD_SCRIPT)], check=True, stdout=subprocess.PIPE, text=True)
    return Path(out.stdout.strip().splitlines()[-1])


class ControlPlane:
    def __init__(self, name: str = "pvc-restore", *, workdir: Path | None = None, nodes: int = 2,
                 pvcrestore_crd: bool = True, ecosystem_crds: bool = False,
                 apiserver_flags: Mapping[str, str] | None = None) -> None:
        self.name = name
        #: Extra kube-apiserver flags, without the leading dashes: {"service-account-max-token-expiration": "1h"}.
        self.apiserver_flags = dict(apiserver_flags or {})
        for flag in self.apiserver_flags:
            if not flag or flag.startswith("-") or "=" in flag:
                raise ValueError(f"{flag!r}: give kube-apiserver flags without dashes, e.g. "
                                 "{'service-account-max-token-expiration': '1h'}")
        self.pvcrestore_crd = pvcrestore_crd
        self.ecosystem_crds = ecosystem_crds
        self.nodes = nodes
        self.workdir = Path(workdir or DEFAULT_WORKDIR)
        self.cache: Path | None = None
        self.kubeconfig = self.workdir / f"{name}.kubeconfig"

    @property
    def bin(self) -> Path:
        assert self.cache is not None, "call build() or start() first"
        return self.cache / "bin"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["KWOK_WORKDIR"] = str(self.workdir / "kwok")
        env["KWOK_KUBECTL_BINARY"] = str(self.bin / "kubectl")
        env["KWOK_KUBE_VERSION"] = (self.cache / "version").read_text().strip() if self.cache else ""
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        return env

    def kwokctl(self, *args: str, check: bool = True, capture: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.bin / "kwokctl"), "--name", self.name, *args], env=self.env(), check=check,
                              text=True, stdout=subprocess.PIPE if capture else None,
                              stderr=subprocess.PIPE if capture else None)

    def kubectl(self, *args: str, check: bool = True, capture: bool = True,
                input: str | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(self.bin / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
                              env=self.env(), text=True, input=input,
                              stdout=subprocess.PIPE if capture else None, stderr=subprocess.PIPE if capture else None)
        if check and proc.returncode:
            raise RuntimeError(f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr or ''}")
        return proc

    def start(self) -> Path:
        """Start (replacing any leftover cluster of the same name); returns the kubeconfig path."""
        self.cache = self.cache or build()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.stop(quiet=True)
        b = self.bin
        self.kwokctl(
            "create", "cluster", "--runtime", "binary",
            "--kubeconfig", str(self.kubeconfig),
            "--etcd-binary", str(b / "etcd"),
            "--kube-apiserver-binary", str(b / "kube-apiserver"),
            "--kube-controller-manager-binary", str(b / "kube-controller-manager"),
            "--kube-scheduler-binary", str(b / "kube-scheduler"),
            "--kwok-controller-binary", str(b / "kwok"),
            *self.extra_args(),
            "--wait", "120s", "--quiet-pull",
            capture=True,
        )
        try:
            if self.nodes:
                self.kwokctl("scale", "node", "--replicas", str(self.nodes), capture=True)
            self.install_crds()
            self.wait_ready()
        except BaseException:
            self.stop(quiet=True)
            raise
        return self.kubeconfig

    def extra_args(self) -> list[str]:
        """kwokctl's ``--extra-args component=flag=value``. kwok fakes only its own nodes (kwokctl's carry the
        annotation), so a node agent can run one of its own. Each component's first flag comes before any second
        one: kwokctl 0.8.0 indexes its per-component list by the flag's position (mutationComponentPatches) and
        panics when a component's first flag is not at the position of its entry."""
        flags = [("kwok-controller", "manage-all-nodes", "false"),
                 ("kwok-controller", "manage-nodes-with-annotation-selector", "kwok.x-k8s.io/node=fake")]
        flags += [("kube-apiserver", flag, value) for flag, value in self.apiserver_flags.items()]
        seen: set[str] = set()
        firsts = [f for f in flags if not (f[0] in seen or seen.add(f[0]))]
        ordered = firsts + [f for f in flags if f not in firsts]
        return [arg for component, flag, value in ordered for arg in ("--extra-args", f"{component}={flag}={value}")]

    def volsync_crds(self) -> list[Path]:
        """The ReplicationSource/-Destination CRDs to install: those of PVC_RESTORE_VOLSYNC_VERSION when it names
        another release than the control plane's (tools/controlplane/volsync.version), else the control plane's."""
        assert self.cache is not None
        wanted = os.environ.get("PVC_RESTORE_VOLSYNC_VERSION", "").strip()
        if wanted and wanted != VOLSYNC_VERSION_FILE.read_text().strip():
            from devtools.real_volsync import build as build_volsync

            crds = sorted((build_volsync() / "crds").glob("volsync.backube_*.yaml"))
            if len(crds) != 2:
                raise RuntimeError(f"volsync {wanted}: scripts/build-volsync.sh gave {crds}, not its two CRDs")
            return crds
        return sorted((self.cache / "crds").glob("*.yaml"))

    def install_crds(self) -> None:
        assert self.cache is not None
        files = self.volsync_crds() + ([PVCRESTORE_CRD] if self.pvcrestore_crd else [])
        if self.ecosystem_crds:  # Flux Kustomization, Argo CD Application, KEDA ScaledObject
            files += sorted((self.cache / "crds-ecosystem").glob("*.yaml"))
        args = ["apply", "--server-side", "--force-conflicts"]
        for f in files:
            args += ["-f", str(f)]
        applied = self.kubectl(*args, "-o", "name").stdout.split()
        self.kubectl("wait", "--for=condition=Established", "--timeout=60s", *applied)

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Nodes Ready and the default ServiceAccount present (so pods can be created)."""
        deadline = time.monotonic() + timeout
        if self.nodes:
            self.kubectl("wait", "--for=condition=Ready", "--timeout=120s", "node", "--all")
        while time.monotonic() < deadline:
            if self.kubectl("get", "serviceaccount", "default", "-n", "default", check=False).returncode == 0:
                return
            time.sleep(0.3)
        raise TimeoutError("the control plane did not become ready")

    def stop(self, *, quiet: bool = False) -> None:
        if self.cache is None:
            self.cache = build()
        self.kwokctl("delete", "cluster", check=False, capture=quiet)
        self.kubeconfig.unlink(missing_ok=True)

    def server_version(self) -> str:
        return self.kubectl("version", "-o", "yaml").stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.controlplane", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["build", "up", "down"])
    parser.add_argument("--name", default="pvc-restore")
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--kube-apiserver-flag", action="append", default=[], metavar="KEY=VALUE",
                        help="an extra kube-apiserver flag without its dashes (repeatable), e.g. "
                             "service-account-max-token-expiration=1h")
    args = parser.parse_args(argv)
    flags = {}
    for item in args.kube_apiserver_flag:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--kube-apiserver-flag {item!r}: expected KEY=VALUE")
        flags[key.lstrip("-")] = value
    cp = ControlPlane(args.name, nodes=args.nodes, apiserver_flags=flags)
    if args.action == "build":
        print(build())
    elif args.action == "up":
        print(cp.start())
    else:
        cp.stop()
        shutil.rmtree(cp.workdir / "kwok" / "clusters" / args.name, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
