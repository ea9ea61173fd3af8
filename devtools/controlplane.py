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

Stopping the API server (issue 13's chaos tests): ``ControlPlane(restartable=True)`` puts kube-apiserver and etcd
(its client and peer ports) on ports below 10000 and runs kube-controller-manager and kube-scheduler without leader
election (with it they exit when they cannot renew their lease for 10 s). Then ``stop_apiserver()`` kills
kube-apiserver and etcd and ``start_apiserver()`` starts them again on the same etcd data directory and flags
(``kwokctl start cluster``, which starts every component that is not running), or ``with cp.apiserver_down(): ...``.
Pinned ports, because kwokctl picks a cluster's ports by scanning 32767 downwards for one nobody listens on at that
moment (it skips no port of a stopped binary-runtime cluster): a cluster created meanwhile, by this session or
another, would take the stopped API server's port, as it did in a trial. kwokctl never hands out ports below 10000.
A stop and start with the API server down for 3 s takes about 6.5 s (the start about 3.5 s, on 2 busy cores).

Versions (scripts/compat.sh sets both): ``PVC_RESTORE_KUBERNETES_VERSION=v1.N.P`` runs that Kubernetes release instead
of the pinned one (build-controlplane.sh builds and caches it); ``PVC_RESTORE_VOLSYNC_VERSION=vX.Y.Z`` installs that
volsync release's ReplicationSource/-Destination CRDs instead of tools/controlplane/volsync.version's (from
scripts/build-volsync.sh's build of that release, which copies them from its Go module).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, Mapping

REPO = Path(__file__).resolve().parents[1]
BUILD_SCRIPT = REPO / "scripts" / "build-controlplane.sh"
PVCRESTORE_CRD = REPO / "charts" / "pvc-restore" / "crds" / "pvcrestores.yaml"
DEFAULT_WORKDIR = Path(os.environ.get("PVC_RESTORE_CACHE", Path.home() / ".cache" / "pvc-restore")) / "clusters"
VOLSYNC_VERSION_FILE = REPO / "tools" / "controlplane" / "volsync.version"


def build() -> Path:
    """Build (or find cached) binaries; returns the cache directory holding bin/ and crds/."""
    out = subprocess.run(["bash", str(BUILD_SCRIPT)], check=True, stdout=subprocess.PIPE, text=True)
    return Path(out.stdout.strip().splitlines()[-1])


#: The components of a control-plane node, in the order they are stopped (clients first, etcd last).
CONTROL_PLANE_NODE = ("kube-controller-manager", "kube-scheduler", "kube-apiserver", "etcd")


class ControlPlane:
    def __init__(self, name: str = "pvc-restore", *, workdir: Path | None = None, nodes: int = 2,
                 pvcrestore_crd: bool = True, ecosystem_crds: bool = False,
                 apiserver_flags: Mapping[str, str] | None = None, restartable: bool = False) -> None:
        self.name = name
        #: kube-apiserver and etcd on pinned ports kwokctl never gives another cluster (see stop_apiserver()).
        self.restartable = restartable
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
            *self.pinned_ports(),
            "--wait", "120s", "--quiet-pull",
            capture=True,
        )
        try:
            if self.nodes:
                self.kwokctl("scale", "node", "--replicas", str(self.nodes), capture=True)
            self.install_crds()
            self.wait_ready()
        except BaseException as exc:
            if isinstance(exc, Exception) and hasattr(exc, "add_note"):
                exc.add_note(self.diagnosis())
            self.stop(quiet=True)
            raise
        return self.kubeconfig

    def diagnosis(self) -> str:
        """Which components are not running, with the end of their logs (for a start that failed)."""
        lines = []
        for component in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok-controller"):
            if self.component_pid(component) is None:
                log = self.cluster_dir / "logs" / f"{component}.log"
                tail = log.read_text(errors="replace").splitlines()[-5:] if log.exists() else []
                lines += [f"{component} is not running; its log ends:", *tail]
        return "\n".join(lines) or f"every component of {self.name} is running"

    def extra_args(self) -> list[str]:
        """kwokctl's ``--extra-args component=flag=value``. kwok fakes only its own nodes (kwokctl's carry the
        annotation), so a node agent can run one of its own. Each component's first flag comes before any second
        one: kwokctl 0.8.0 indexes its per-component list by the flag's position (mutationComponentPatches) and
        panics when a component's first flag is not at the position of its entry."""
        flags = [("kwok-controller", "manage-all-nodes", "false"),
                 ("kwok-controller", "manage-nodes-with-annotation-selector", "kwok.x-k8s.io/node=fake")]
        flags += [("kube-apiserver", flag, value) for flag, value in self.apiserver_flags.items()]
        if self.restartable:  # one of each: nothing to elect, and no lease to lose (and exit) while it is stopped
            flags += [("kube-controller-manager", "leader-elect", "false"),
                      ("kube-scheduler", "leader-elect", "false")]
        seen: set[str] = set()
        firsts = [f for f in flags if not (f[0] in seen or seen.add(f[0]))]
        ordered = firsts + [f for f in flags if f not in firsts]
        return [arg for component, flag, value in ordered for arg in ("--extra-args", f"{component}={flag}={value}")]

    def pinned_ports(self) -> list[str]:
        """For a restartable cluster: kwokctl's options pinning kube-apiserver's port and etcd's client and peer
        ports to free ports in 2000-9999 (kwokctl scans 32767 down to 10000 only). The peer port has no flag: it goes
        in a KwokctlConfiguration file given with ``--config``."""
        if not self.restartable:
            return []
        apiserver, etcd, peer = _free_low_ports(3)
        config = self.workdir / f"{self.name}.ports.yaml"
        config.write_text("apiVersion: config.kwok.x-k8s.io/v1alpha1\nkind: KwokctlConfiguration\n"
                          f"options:\n  etcdPeerPort: {peer}\n")
        return ["--config", str(config), "--kube-apiserver-port", str(apiserver), "--etcd-port", str(etcd)]

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
        (self.workdir / f"{self.name}.ports.yaml").unlink(missing_ok=True)

    # -- the API server stopped and started (issue 13) ------------------------------------------------------------

    @property
    def cluster_dir(self) -> Path:
        """kwokctl's directory of this cluster: pids/<component>.pid, logs/, etcd/ (the data directory)."""
        return self.workdir / "kwok" / "clusters" / self.name

    def component_pid(self, component: str) -> int | None:
        """The pid of a running component from kwokctl's pid file; None when it is not running (or the pid is now
        another process: its command line must name this cluster's directory)."""
        try:
            pid = int((self.cluster_dir / "pids" / f"{component}.pid").read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if f"{self.cluster_dir}/".encode() in cmdline and _alive(pid) else None

    def stop_apiserver(self, *, sig: int = signal.SIGKILL, grace: float = 10.0,
                       components: tuple[str, ...] = ("kube-apiserver", "etcd")) -> None:
        """Stop kube-apiserver, then etcd (the order ``kwokctl stop cluster`` uses, and its SIGKILL by default:
        a crashed control-plane node) and wait until the processes are gone; their pid files go, as kwokctl's do.
        ``sig=signal.SIGTERM`` stops them gracefully, with SIGKILL after ``grace`` seconds (kube-apiserver's graceful
        shutdown took 60 s in a trial). Other components keep running and retry; ``components=CONTROL_PLANE_NODE``
        stops kube-controller-manager and kube-scheduler first as well (a control-plane node restarted), which spares
        the tests client-go's back-off: after a 6 s outage kube-controller-manager kept running created a
        Deployment's new pods 5 to 70 s late (its informers retry after up to 30 s, jittered to 60 s), 1.5 s late when
        it was restarted with the API server. kwok (the nodes' kubelets) always keeps running."""
        if not self.restartable:
            raise RuntimeError("stop_apiserver() needs ControlPlane(restartable=True): kwokctl would give the "
                               "stopped API server's port to the next cluster created")
        for component in components:
            pid = self.component_pid(component)
            if pid is not None:
                os.kill(pid, sig)
                if not _wait_gone(pid, grace if sig != signal.SIGKILL else 30.0):
                    os.kill(pid, signal.SIGKILL)
                    if not _wait_gone(pid, 30.0):
                        raise RuntimeError(f"{component} (pid {pid}) did not stop")
            (self.cluster_dir / "pids" / f"{component}.pid").unlink(missing_ok=True)

    def start_apiserver(self, timeout: float = 120.0) -> None:
        """Start what ``stop_apiserver`` stopped, with the same flags, etcd on the same data directory
        (``kwokctl start cluster`` starts every component that is not running, so also one that exited on its own),
        and wait until the API server is ready (/readyz). Took 3 to 3.5 s in trials."""
        self.kwokctl("start", "cluster", "--timeout", f"{int(timeout)}s", capture=True)
        deadline = time.monotonic() + timeout
        while self.kubectl("get", "--raw", "/readyz", check=False).returncode:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the API server of {self.name} was not ready {timeout:.0f} s after its start: "
                                   f"see {self.cluster_dir / 'logs'}")
            time.sleep(0.1)

    @contextlib.contextmanager
    def apiserver_down(self, components: tuple[str, ...] = ("kube-apiserver", "etcd")) -> Iterator[None]:
        """``with cp.apiserver_down(): ...``: kube-apiserver and etcd (or ``components``) stopped for the block,
        started again after it (also when it raises)."""
        self.stop_apiserver(components=components)
        try:
            yield
        finally:
            self.start_apiserver()

    def server_version(self) -> str:
        return self.kubectl("version", "-o", "yaml").stdout


def _alive(pid: int) -> bool:
    """Running (a zombie, exited but not yet reaped by its parent, is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _free_low_ports(n: int) -> list[int]:
    """``n`` distinct ports in 2000-9999 that nothing listens on (on 127.0.0.1 nor on all addresses)."""
    ports: list[int] = []
    for port in random.sample(range(2000, 10000), 400):
        try:
            for host in ("127.0.0.1", ""):
                with socket.socket() as s:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind((host, port))
        except OSError:
            continue
        ports.append(port)
        if len(ports) == n:
            return ports
    raise RuntimeError("no free ports in 2000-9999")


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
