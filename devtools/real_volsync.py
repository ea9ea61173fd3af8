"""Real volsync on a local control plane: volsync's own manager, its restic mover run by the node agent, and a restic
REST server holding the repositories. For the tests and the demo.

    python -m devtools.real_volsync up [--name NAME]     # a control plane with all of it; prints the kubeconfig
    python -m devtools.real_volsync down [--name NAME]

``scripts/build-volsync.sh`` builds volsync's manager, restic and rest-server from Go modules and copies volsync's
``mover-restic/`` scripts (the mover "image") and the VolumeSnapshot CRDs the manager needs into a cache. This module
installs those CRDs, then starts three processes beside the control plane:

* ``rest-server`` on a loopback port, no authentication, its repositories under the work directory: a repository is
  ``rest:http://127.0.0.1:<port>/<name>`` (``RealVolsync.repository(name)``);
* the node agent (``devtools.node_agent``), which registers the node that runs the movers and provisions host-path
  volumes (its StorageClass is the default one);
* volsync's manager (no leader election, no metrics or health ports, proxies unset so none reach mover pods).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from devtools.controlplane import DEFAULT_WORKDIR, REPO, ControlPlane
from devtools.kubeapi import Api

BUILD_SCRIPT = REPO / "scripts" / "build-volsync.sh"
AGENT_NODE = "agent-node"
STORAGE_CLASS = "agent-hostpath"


def build() -> Path:
    """Build (or find cached) volsync, restic and rest-server; returns the cache directory."""
    out = subprocess.run(["bash", str(BUILD_SCRIPT)], check=True, stdout=subprocess.PIPE, text=True)
    return Path(out.stdout.strip().splitlines()[-1])


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RealVolsync:
    def __init__(self, control_plane: ControlPlane, *, workdir: Path | None = None) -> None:
        self.cp = control_plane
        self.workdir = Path(workdir or DEFAULT_WORKDIR / f"{control_plane.name}-volsync")
        self.cache: Path | None = None
        self.port = 0
        self.processes: dict[str, subprocess.Popen] = {}

    def repository(self, name: str) -> str:
        """The RESTIC_REPOSITORY of a repository named ``name`` on the REST server."""
        return f"rest:http://127.0.0.1:{self.port}/{name}"

    @property
    def restic(self) -> Path:
        assert self.cache is not None
        return self.cache / "bin" / "restic"

    def log(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def start(self) -> None:
        self.cache = self.cache or build()
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
        (self.workdir / "repositories").mkdir(parents=True)
        crds = sorted((self.cache / "crds").glob("*.yaml"))
        applied = self.cp.kubectl("apply", "--server-side", "--force-conflicts", *[a for f in crds
                                                                                  for a in ("-f", str(f))],
                                  "-o", "name").stdout.split()
        self.cp.kubectl("wait", "--for=condition=Established", "--timeout=60s", *applied)
        env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "no_proxy")}
        env["KUBECONFIG"] = str(self.cp.kubeconfig)
        self.port = free_port()
        self._spawn("rest-server", [str(self.cache / "bin" / "rest-server"), "--path",
                                    str(self.workdir / "repositories"), "--listen", f"127.0.0.1:{self.port}",
                                    "--no-auth"], env)
        self._spawn("node-agent", [sys.executable, "-m", "devtools.node_agent", "--kubeconfig",
                                   str(self.cp.kubeconfig), "--node", AGENT_NODE, "--image", str(self.cache),
                                   "--workdir", str(self.workdir / "agent"), "--storage-class", STORAGE_CLASS], env)
        self._spawn("volsync-manager", [str(self.cache / "bin" / "volsync-manager"), "--metrics-bind-address=0",
                                        "--health-probe-bind-address=0", "--leader-elect=false"], env)
        try:
            self._wait_port(self.port)
            deadline = time.monotonic() + 60
            while self.cp.kubectl("get", f"node/{AGENT_NODE}", f"storageclass/{STORAGE_CLASS}",
                                  check=False).returncode:
                self._check_alive()
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the node agent did not register {AGENT_NODE}; see {self.log('node-agent')}")
                time.sleep(0.2)
            self.cp.kubectl("wait", "--for=condition=Ready", "--timeout=60s", f"node/{AGENT_NODE}")
        except BaseException:
            self.stop()
            raise

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        with open(self.log(name), "w") as log:  # the child has its own copy of the descriptor
            self.processes[name] = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                                                    stdin=subprocess.DEVNULL, cwd=str(REPO), start_new_session=True)
        (self.workdir / f"{name}.pid").write_text(str(self.processes[name].pid))

    def _wait_port(self, port: int, timeout: float = 30.0) -> None:
        import socket

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            self._check_alive()
            time.sleep(0.1)
        raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")

    def _check_alive(self) -> None:
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited ({proc.returncode}); see {self.log(name)}")

    def stop(self) -> None:
        """Stop the processes (also those a previous run left, by their pid files)."""
        for pidfile in sorted(self.workdir.glob("*.pid")) if self.workdir.exists() else []:
            try:
                os.killpg(int(pidfile.read_text()), signal.SIGTERM)
            except (ProcessLookupError, ValueError, PermissionError):
                pass
        for proc in self.processes.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.processes.clear()
        for pidfile in self.workdir.glob("*.pid") if self.workdir.exists() else []:
            pidfile.unlink()

    def api(self) -> Api:
        return Api(self.cp.kubeconfig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.real_volsync", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["build", "up", "down"])
    parser.add_argument("--name", default="pvc-restore-volsync")
    args = parser.parse_args(argv)
    if args.action == "build":
        print(build())
        return 0
    cp = ControlPlane(args.name, nodes=0)
    volsync = RealVolsync(cp)
    if args.action == "up":
        cp.start()
        volsync.start()
        print(cp.kubeconfig)
    else:
        volsync.stop()
        cp.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
