"""Token rotation: a long-running controller keeps working when its ServiceAccount token is replaced.

In a pod the token is a projected file that the kubelet rewrites (at 80% of its life) while the old token stays valid
until it expires; the API server can cap the life of tokens (``--service-account-max-token-expiration``, at least
1h, kube-apiserver's validation) and, with ``--service-account-extend-token-expiration=false``, does not stretch a
pod's token to a year. ``Kube.request`` therefore loads the credentials again on a 401 and retries once.

These tests run on a control plane of their own, started with those two flags, and give the controller a kubeconfig
whose user has a ``tokenFile`` (exactly a file rewritten in place, as a projected token is):

* the real controller process, with a token from the TokenRequest API of the shortest life the API accepts (10
  minutes), the file rewritten with a new token before the old one expires; once the old one has expired (and the
  API server's minute of clock-skew leeway has passed), a restore runs and finishes. This one takes about 12 minutes.
* the same with the old token revoked (its bound Secret deleted) instead of expired: the same 401, in seconds.
* the in-cluster configuration (a service-account directory with ``token``, ``ca.crt``, ``namespace``, and
  ``KUBERNETES_SERVICE_HOST/PORT``): the token file is read again after a 401;
* a kubeconfig exec plugin: run again after a 401.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import yaml

from devtools.controlplane import ControlPlane
from devtools.kubeapi import Api
from devtools.mover_simulator import MoverSimulator
from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import model
from tests import scenario as sc
from tests.helpers import CLUSTER_ROLE_BINDINGS, SERVICE_ACCOUNTS, Cluster, SyncKube, stop_process, wait_for

REPO = Path(__file__).resolve().parents[1]
#: Tokens live at most 1h (the smallest value kube-apiserver accepts for the flag), and a pod's token is not extended
#: to a year.
SHORT_TOKEN_FLAGS = {"service-account-max-token-expiration": "1h", "service-account-extend-token-expiration": "false"}
#: TokenRequest validation: "may not specify a duration less than 10 minutes".
MIN_TOKEN_SECONDS = 600
#: The API server still accepts a token this long after its exp (go-jose's DefaultLeeway, for clock skew).
LEEWAY_SECONDS = 60
#: What the controller logs once it has read the token file again. Which of its requests meets the first 401 is a
#: race (a request sends itself again: "retrying with reloaded credentials"; a watch that follows changes ends and the
#: next list is sent with them), so the test looks for the reload that both lead to.
RELOAD_LOG = "Kubernetes credentials reloaded"


@pytest.fixture(scope="module")
def short_tokens(portal) -> Iterator[tuple[ControlPlane, SyncKube]]:
    cp = ControlPlane(f"tokens-{os.getpid()}", nodes=1, apiserver_flags=SHORT_TOKEN_FLAGS)
    cp.start()  # also installs the volsync and PVCRestore CRDs
    try:
        kube = SyncKube(portal, portal.call(lambda: k.Kube.connect(kubeconfig=str(cp.kubeconfig))))
        simulator = MoverSimulator(Api(str(cp.kubeconfig)), interval=0.1).start()
        try:
            yield cp, kube
        finally:
            simulator.stop()
    finally:
        cp.stop(quiet=True)


@pytest.fixture
def tcluster(short_tokens) -> Iterator[Cluster]:
    """A fresh namespace on the short-token control plane."""
    _, kube = short_tokens
    name = f"tokens-{uuid.uuid4().hex[:8]}"
    kube.create(k.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    wait_for(lambda: kube.get_or_none(SERVICE_ACCOUNTS, "default", name), message="the default ServiceAccount")
    yield Cluster(kube, name)
    kube.delete(k.NAMESPACES, name)
    for pv in kube.list(k.PVS, label_selector=f"test-namespace={name}"):
        kube.delete(k.PVS, pv["metadata"]["name"])


@pytest.fixture
def admin_account(tcluster) -> Iterator[str]:
    """ServiceAccount ``controller`` in the test's namespace, bound to cluster-admin."""
    kube, ns = tcluster.kube, tcluster.ns
    kube.create(SERVICE_ACCOUNTS, {"apiVersion": "v1", "kind": "ServiceAccount",
                                   "metadata": {"name": "controller", "namespace": ns}}, ns)
    binding = f"{ns}-controller-admin"
    kube.create(CLUSTER_ROLE_BINDINGS, {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": binding},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "controller", "namespace": ns}]})
    yield "controller"
    kube.delete(CLUSTER_ROLE_BINDINGS, binding)


def request_token(kube: SyncKube, ns: str, account: str, *, bound_secret: str | None = None) -> tuple[str, float]:
    """A token of the shortest life from the TokenRequest API (bound to a Secret when asked: deleting the Secret
    revokes it); returns it with its expiry as a Unix time."""
    spec: dict[str, Any] = {"expirationSeconds": MIN_TOKEN_SECONDS}
    if bound_secret:
        secret = kube.create(k.SECRETS, {"apiVersion": "v1", "kind": "Secret",
                                         "metadata": {"name": bound_secret, "namespace": ns}}, ns)
        spec["boundObjectRef"] = {"apiVersion": "v1", "kind": "Secret", "name": bound_secret,
                                  "uid": secret["metadata"]["uid"]}
    status = kube.request("POST", SERVICE_ACCOUNTS.url(ns, account, "token"), what="token request", body={
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec})["status"]
    expires = model.parse_time(status["expirationTimestamp"]).timestamp()
    assert MIN_TOKEN_SECONDS - 30 < expires - time.time() <= MIN_TOKEN_SECONDS + 5, status["expirationTimestamp"]
    return status["token"], expires


def write_token(path: Path, token: str) -> None:
    """Replace the file's content at once (the kubelet swaps a projected volume's files atomically too)."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(token)
    os.replace(tmp, path)


def token_file_kubeconfig(cp: ControlPlane, ns: str, account: str, directory: Path) -> tuple[Path, Path]:
    """A kubeconfig whose user reads its token from ``token`` beside it (a relative tokenFile, as kubectl resolves
    it: from the kubeconfig's directory); returns (kubeconfig, token file)."""
    admin = yaml.safe_load(cp.kubeconfig.read_text())
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": account,
        "clusters": [{"name": "test", "cluster": dict(admin["clusters"][0]["cluster"])}],
        "users": [{"name": account, "user": {"tokenFile": "token"}}],
        "contexts": [{"name": account, "context": {"cluster": "test", "user": account, "namespace": ns}}],
    }
    path = directory / "controller.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path, directory / "token"


def answer_to(cp: ControlPlane, token: str, ns: str) -> int:
    """The HTTP status the API server gives a request made with ``token``."""
    cluster = yaml.safe_load(cp.kubeconfig.read_text())["clusters"][0]["cluster"]
    response = httpx.get(f"{cluster['server']}/api/v1/namespaces/{ns}/configmaps",
                         headers={"Authorization": f"Bearer {token}"},
                         verify=ssl.create_default_context(cafile=cluster["certificate-authority"]),
                         timeout=10)
    return response.status_code


def start_controller(config: Path, ns: str, log_dir: Path) -> subprocess.Popen:
    env = {key: value for key, value in os.environ.items()
           if key not in ("KUBECONFIG", "WATCH_NAMESPACE", "POLL_INTERVAL", "LOG_LEVEL", "PVC_RESTORE_CRASH_AT")}
    log_path = log_dir / "controller.log"
    with open(log_path, "w") as log_file:  # the child has its own copy of the descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "controller", "--kubeconfig", str(config), "--namespace", ns, "--poll-interval",
             "0.2", "--health-address", "", "--metrics-address", ""],
            env=env, stdout=log_file, stderr=subprocess.STDOUT, cwd=str(REPO))
    proc.log_path = log_path
    return proc


def restore_finishes(cluster: Cluster, name: str) -> None:
    cluster.kube.create(k.PVC_RESTORES, model.manifest(name, cluster.ns, model.Spec(pvc=sc.PVC)), cluster.ns)
    done = sc.wait_finished(cluster, name, timeout=90)
    assert done["status"].get("error") is None, done["status"]
    sc.assert_cleaned_up(cluster, deployment=1, statefulset=0)


def sleep_until(moment: float) -> None:
    while (left := moment - time.time()) > 0:
        time.sleep(min(left, 5.0))


@pytest.mark.timeout(1500)
@pytest.mark.skipif(os.environ.get("PVC_RESTORE_SLOW_TESTS") != "1",
                    reason="waits for a real token expiry (the API server's minimum is 10 minutes, ~11.5 min in all); "
                           "the revocation tests below prove the same re-read in seconds. "
                           "PVC_RESTORE_SLOW_TESTS=1 runs it")
def test_controller_survives_the_expiry_of_its_token(short_tokens, tcluster, admin_account, tmp_path):
    cp, kube = short_tokens
    ns = tcluster.ns
    config, token_file = token_file_kubeconfig(cp, ns, admin_account, tmp_path)
    old, old_expires = request_token(kube, ns, admin_account)
    write_token(token_file, old)
    sc.setup(tcluster, statefulset=0, deployment=1)
    proc = start_controller(config, ns, tmp_path)
    try:
        restore_finishes(tcluster, "with-the-first-token")

        # The kubelet's rotation: a new token in the file at 80% of the old one's life; the old one still works.
        sleep_until(old_expires - 0.2 * MIN_TOKEN_SECONDS)
        new, new_expires = request_token(kube, ns, admin_account)
        write_token(token_file, new)
        assert answer_to(cp, old, ns) == 200

        # Past the old token's expiry (and the API server's leeway) it is refused; the controller, which read the
        # file once at start, meets that 401 on its next poll and must read the file again.
        sleep_until(old_expires + LEEWAY_SECONDS)
        wait_for(lambda: answer_to(cp, old, ns) == 401, timeout=60, interval=1, message="the old token refused")
        assert time.time() < new_expires - 120, "the new token must outlive the restore"
        assert proc.poll() is None, proc.log_path.read_text()[-3000:]

        restore_finishes(tcluster, "after-the-first-token-expired")
        text = proc.log_path.read_text()
        assert RELOAD_LOG in text, text[-3000:]
        assert "poll failed" not in text, text[-3000:]
    finally:
        stop_process(proc)


def test_controller_reads_a_rewritten_token_file_when_the_old_token_is_revoked(short_tokens, tcluster, admin_account,
                                                                               tmp_path):
    """The same path in seconds: the old token is revoked (its bound Secret deleted) instead of waiting for it to
    expire."""
    cp, kube = short_tokens
    ns = tcluster.ns
    config, token_file = token_file_kubeconfig(cp, ns, admin_account, tmp_path)
    old, _ = request_token(kube, ns, admin_account, bound_secret="first-token-holder")
    write_token(token_file, old)
    sc.setup(tcluster, statefulset=0, deployment=1)
    proc = start_controller(config, ns, tmp_path)
    try:
        restore_finishes(tcluster, "with-the-first-token")
        new, _ = request_token(kube, ns, admin_account, bound_secret="second-token-holder")
        write_token(token_file, new)
        kube.delete(k.SECRETS, "first-token-holder", ns)
        wait_for(lambda: answer_to(cp, old, ns) == 401, timeout=60, interval=0.5, message="the old token refused")
        restore_finishes(tcluster, "after-the-first-token-was-revoked")
        text = proc.log_path.read_text()
        assert RELOAD_LOG in text, text[-3000:]
        assert "poll failed" not in text, text[-3000:]
        assert proc.poll() is None
    finally:
        stop_process(proc)


@pytest.mark.filterwarnings("ignore:Kubernetes version .* is not supported")
def test_in_cluster_token_is_read_again_after_a_401(short_tokens, tcluster, admin_account, tmp_path, portal,
                                                   monkeypatch):
    """In-cluster configuration (what the chart's Deployment uses): the service-account directory's token file is
    read again on a 401, by every request that met it, and one reload serves them all."""
    import kr8s.asyncio

    cp, kube = short_tokens
    ns = tcluster.ns
    cluster = yaml.safe_load(cp.kubeconfig.read_text())["clusters"][0]["cluster"]
    host, port = cluster["server"].removeprefix("https://").rsplit(":", 1)
    account_dir = tmp_path / "serviceaccount"
    account_dir.mkdir()
    (account_dir / "ca.crt").write_bytes(Path(cluster["certificate-authority"]).read_bytes())
    (account_dir / "namespace").write_text(ns)
    old, _ = request_token(kube, ns, admin_account, bound_secret="first-token-holder")
    write_token(account_dir / "token", old)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", host)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", port)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))  # in-cluster: no kubeconfig anywhere

    async def in_cluster() -> k.Kube:
        api = await kr8s.asyncio.Api(bypass_factory=True, serviceaccount=str(account_dir))
        return k.Kube(api, namespace=ns)

    me = SyncKube(portal, portal.call(in_cluster))
    statuses: list[int | None] = []
    me.kube.observer = lambda method, status: statuses.append(status)
    assert me.kube.server == cluster["server"]
    assert me.list(k.CONFIGMAPS, ns) is not None

    new, _ = request_token(kube, ns, admin_account, bound_secret="second-token-holder")
    write_token(account_dir / "token", new)
    kube.delete(k.SECRETS, "first-token-holder", ns)
    wait_for(lambda: answer_to(cp, old, ns) == 401, timeout=60, interval=0.5, message="the old token refused")

    async def several() -> list[Any]:
        import asyncio

        return await asyncio.gather(*(me.kube.list(k.CONFIGMAPS, ns) for _ in range(5)))

    statuses.clear()
    assert len(portal.call(several)) == 5
    assert statuses.count(401) >= 1 and statuses.count(200) == 5, statuses
    assert me.kube._auth_generation == 1, "one reload for every request that met the 401"

    # Credentials that do not help (the file still holds a refused token) are an error, not a loop.
    kube.delete(k.SECRETS, "second-token-holder", ns)
    wait_for(lambda: answer_to(cp, new, ns) == 401, timeout=60, interval=0.5, message="the new token refused")
    with pytest.raises(k.Forbidden) as info:
        me.list(k.CONFIGMAPS, ns)
    assert info.value.code == 401


def test_exec_plugin_runs_again_after_a_401(short_tokens, tcluster, admin_account, tmp_path, portal):
    """A kubeconfig exec plugin (client.authentication.k8s.io/v1): kr8s runs it again when the credentials are
    reloaded after a 401."""
    cp, kube = short_tokens
    ns = tcluster.ns
    source = tmp_path / "plugin-token"
    runs = tmp_path / "plugin-runs"
    plugin = tmp_path / "plugin.py"
    plugin.write_text(
        "import json, pathlib, sys\n"
        f"runs = pathlib.Path({str(runs)!r})\n"
        "runs.write_text(str(int(runs.read_text() if runs.exists() else 0) + 1))\n"
        "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1', 'kind': 'ExecCredential',\n"
        f"                  'status': {{'token': pathlib.Path({str(source)!r}).read_text().strip()}}}}))\n")
    admin = yaml.safe_load(cp.kubeconfig.read_text())
    config = tmp_path / "exec.kubeconfig"
    config.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "exec",
        "clusters": [{"name": "test", "cluster": dict(admin["clusters"][0]["cluster"])}],
        "users": [{"name": "exec", "user": {"exec": {"apiVersion": "client.authentication.k8s.io/v1",
                                                     "command": sys.executable, "args": [str(plugin)],
                                                     "interactiveMode": "Never"}}}],
        "contexts": [{"name": "exec", "context": {"cluster": "test", "user": "exec", "namespace": ns}}],
    }))
    old, _ = request_token(kube, ns, admin_account, bound_secret="first-token-holder")
    write_token(source, old)
    me = SyncKube(portal, portal.call(lambda: k.Kube.connect(kubeconfig=str(config))))
    assert me.list(k.CONFIGMAPS, ns) is not None
    assert runs.read_text() == "1"

    new, _ = request_token(kube, ns, admin_account, bound_secret="second-token-holder")
    write_token(source, new)
    kube.delete(k.SECRETS, "first-token-holder", ns)
    wait_for(lambda: answer_to(cp, old, ns) == 401, timeout=60, interval=0.5, message="the old token refused")
    assert me.list(k.CONFIGMAPS, ns) is not None
    assert runs.read_text() == "2" and me.kube._auth_generation == 1
    assert me.kube.api.auth.token == new
