"""Bad CLI input: one clear message, a non-zero exit code, no Python traceback, and nothing changed.

The first tests need no cluster: their commands are refused before any connection, which a "tripwire" server (a
listening socket that only records connection attempts) proves. The last ones run against the real control plane and
check that nothing in it changed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from click.testing import CliRunner

from kubectl_pvc_restore import kubeconfig as kc
from kubectl_pvc_restore.cli import cli

REPO = Path(__file__).resolve().parents[1]
NOT_A_NAME = "is not a valid Kubernetes name"
TRAVERSAL = "../../../../../../api/v1/namespaces/{ns}/configmaps/{name}"

# Neither the developer's own kubeconfig nor an in-cluster service account may leak into these tests.
CLEAN_ENV = {"KUBECONFIG": None, "KUBERNETES_SERVICE_HOST": None, "KUBERNETES_SERVICE_PORT": None}


def invoke(*args: str, env: dict[str, str | None] | None = None) -> Any:
    result = CliRunner().invoke(cli, list(args), prog_name="kubectl pvc-restore", env={**CLEAN_ENV, **(env or {})},
                                catch_exceptions=False)  # an exception escaping click fails the test
    assert "Traceback" not in result.output
    return result


def config(server: str, *, current: str | None = "main", contexts: tuple[str, ...] = ("main", "other"),
           user: dict | None = None) -> dict:
    data: dict = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": user if user is not None else {"token": "t"}}],
        "contexts": [{"name": name, "context": {"cluster": "c", "user": "u"}} for name in contexts],
    }
    if current is not None:
        data["current-context"] = current
    return data


class Tripwire:
    """A kubeconfig whose server is a listening socket nobody answers on: ``touched()`` says whether anything
    connected to it (the kernel completes the TCP handshake without accept())."""

    def __init__(self, tmp_path: Path) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.setblocking(False)
        self.server = f"https://127.0.0.1:{self.sock.getsockname()[1]}"
        self.dir = tmp_path
        self.kubeconfig = self.write("tripwire.kubeconfig", config(self.server))

    def write(self, name: str, data: Any) -> str:
        path = self.dir / name
        path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
        return str(path)

    def touched(self) -> bool:
        try:
            conn, _ = self.sock.accept()
        except BlockingIOError:
            return False
        conn.close()
        return True


@pytest.fixture
def tripwire(tmp_path: Path) -> Iterator[Tripwire]:
    wire = Tripwire(tmp_path)
    yield wire
    wire.sock.close()


# -- kubeconfig problems (no cluster) --------------------------------------------------------------------------------


def test_kubeconfig_missing(tmp_path):
    missing = tmp_path / "nope"
    result = invoke("start", "data", "--kubeconfig", str(missing))
    assert result.exit_code == 1
    assert f"kubeconfig {missing}: no such file (given with --kubeconfig)" in result.output


def test_kubeconfig_missing_is_an_error_even_in_a_cluster(tmp_path):
    token = tmp_path / "token"
    token.write_text("x")
    with pytest.raises(kc.KubeconfigError, match="no such file"):
        kc.check(str(tmp_path / "nope"), environ={"KUBERNETES_SERVICE_HOST": "10.0.0.1"},
                 service_account_token=str(token))


def test_kubeconfig_bad_yaml(tripwire):
    path = tripwire.write("bad.yaml", "apiVersion: v1\ncurrent-context: a: b\n")
    result = invoke("start", "data", "--kubeconfig", path)
    assert result.exit_code == 1
    assert f"kubeconfig {path} is not valid YAML at line 2, column 19: mapping values are not allowed here" \
        in result.output
    assert not tripwire.touched()


def test_kubeconfig_empty(tripwire):
    path = tripwire.write("empty.yaml", "")
    result = invoke("start", "data", "--kubeconfig", path)
    assert result.exit_code == 1 and f"kubeconfig {path} is empty" in result.output


def test_kubeconfig_a_list_instead_of_a_mapping(tripwire):
    path = tripwire.write("list.yaml", [config(tripwire.server)])
    result = invoke("start", "data", "--kubeconfig", path)
    assert result.exit_code == 1
    assert f"kubeconfig {path} is not a kubeconfig: its top level is a list, not a mapping" in result.output


def test_kubeconfig_without_current_context(tripwire):
    path = tripwire.write("nocurrent.yaml", config(tripwire.server, current=None))
    result = invoke("start", "data", "--kubeconfig", path)
    assert result.exit_code == 1
    assert f"kubeconfig {path} has no current-context" in result.output
    assert "kubectl config use-context NAME (available contexts: main, other)" in result.output
    assert not tripwire.touched()


def test_kubeconfig_current_context_names_a_missing_context(tripwire):
    path = tripwire.write("ghost.yaml", config(tripwire.server, current="ghost"))
    result = invoke("start", "data", "--kubeconfig", path)
    assert result.exit_code == 1
    assert f"kubeconfig {path}: its current-context 'ghost' is not one of its contexts" in result.output
    assert "available contexts: main, other" in result.output and "kubectl config use-context" in result.output
    assert not tripwire.touched()


def test_context_flag_names_a_missing_context(tripwire):
    result = invoke("start", "data", "--kubeconfig", tripwire.kubeconfig, "--context", "ghost")
    assert result.exit_code == 1
    assert f"kubeconfig {tripwire.kubeconfig} has no context 'ghost' (given with --context)" in result.output
    assert "available contexts: main, other" in result.output
    assert not tripwire.touched()


def test_tui_prints_the_message_instead_of_crashing(tripwire):
    path = tripwire.write("nocurrent.yaml", config(tripwire.server, current=None))
    result = invoke("tui", "--kubeconfig", path)
    assert result.exit_code == 1 and result.output.startswith(f"Error: kubeconfig {path} has no current-context")


def test_kubeconfig_env_lists_only_missing_files(tmp_path):
    listed = f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}"
    result = invoke("start", "data", env={"KUBECONFIG": listed})
    assert result.exit_code == 1
    assert f"none of the kubeconfig files in $KUBECONFIG exists ({tmp_path / 'a'}, {tmp_path / 'b'})" in result.output


def test_no_kubeconfig_at_all(tmp_path):
    result = invoke("list", env={"HOME": str(tmp_path)})
    assert result.exit_code == 1
    assert f"no kubeconfig: {tmp_path / '.kube' / 'config'} does not exist and KUBECONFIG is not set" in result.output


def test_context_without_server_or_user(tripwire):
    data = config(tripwire.server)
    data["clusters"][0]["cluster"] = {"insecure-skip-tls-verify": True}
    path = tripwire.write("noserver.yaml", data)
    result = invoke("list", "--kubeconfig", path)
    assert result.exit_code == 1 and f"kubeconfig {path}: cluster 'c' has no server" in result.output
    data = config(tripwire.server)
    data["users"] = []
    path = tripwire.write("nouser.yaml", data)
    result = invoke("list", "--kubeconfig", path)
    assert result.exit_code == 1
    assert "context 'main' (current-context) uses user 'u', which kubeconfig" in result.output
    assert not tripwire.touched()


def test_credentials_kr8s_cannot_use_are_a_message(tripwire):
    """Whatever kr8s itself refuses while loading credentials is one message too."""
    path = tripwire.write("password.yaml", config(tripwire.server, user={"username": "a", "password": "b"}))
    result = invoke("list", "--kubeconfig", path)
    assert result.exit_code == 1
    assert "cannot load Kubernetes credentials: username/password authentication" in result.output
    assert f"kubeconfig {path}" in result.output


def test_merged_kubeconfigs_skip_missing_and_empty_files(tripwire):
    empty = tripwire.write("empty.yaml", "")
    listed = os.pathsep.join([str(tripwire.dir / "missing"), empty, tripwire.kubeconfig])
    resolved = kc.check(environ={"KUBECONFIG": listed})
    assert resolved.paths == (tripwire.kubeconfig,) and resolved.context == "main"


def test_in_cluster_service_account_is_fine_without_a_kubeconfig(tmp_path):
    token = tmp_path / "token"
    token.write_text("x")
    resolved = kc.check(environ={"HOME": str(tmp_path), "KUBERNETES_SERVICE_HOST": "10.0.0.1"},
                        service_account_token=str(token))
    assert resolved.in_cluster and resolved.kubeconfig is None


def test_a_real_process_prints_no_traceback(tripwire):
    path = tripwire.write("bad.yaml", "clusters: [\n")
    proc = subprocess.run([sys.executable, "-c", "from kubectl_pvc_restore.cli import main; main()", "list",
                           "--kubeconfig", path], capture_output=True, text=True, cwd=str(REPO),
                          env={k: v for k, v in os.environ.items() if k not in CLEAN_ENV})
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"Error: kubeconfig {path} is not valid YAML at line 2") and proc.stdout == ""
    assert "Traceback" not in proc.stderr


# -- flags and names (no cluster: refused before connecting) --------------------------------------------------------

FLAG_CASES = [
    (["start", "data", "--latest", "--previous", "1"], "--latest cannot be combined with --previous"),
    (["start", "data", "--latest", "--as-of", "2024-05-01T10:00:00Z"], "--latest cannot be combined with --as-of"),
    (["start", "data", "--restore-timeout", "0s"], "the restore timeout must be at least 1s"),
    (["start", "data", "--restore-timeout", "0"], "the restore timeout must be at least 1s"),
    (["start", "data", "--restore-timeout", "-5"], "the restore timeout must be at least 1s"),
    (["start", "data", "--restore-timeout", "0.5s"], "the restore timeout must be at least 1s"),
    (["start", "data", "--restore-timeout", "soon"], "'soon' is not a duration"),
    (["start", "data", "--timeout", "5"], "--timeout only applies with --wait"),
    (["undo", "data-1", "--timeout", "5"], "--timeout only applies with --wait"),
    (["start", "data", "--as-of", "10000000 weeks ago"], "Invalid value for '--as-of': '10000000 weeks ago' is "
                                                         "before 1970"),
    (["start", "data", "--as-of", "03/04/2024"], "Invalid value for '--as-of': '03/04/2024' is not a date and time "
                                                 "I can read unambiguously"),
    (["start", "data", "--previous", "1", "--as-of", "1 day ago"], "--previous and --as-of are mutually exclusive"),
]

NAME_CASES = [
    (["cancel", TRAVERSAL.format(ns="demo", name="x")], f"Invalid value for 'NAME': "
                                                        f"'{TRAVERSAL.format(ns='demo', name='x')}' {NOT_A_NAME}"),
    (["cancel", ""], f"Invalid value for 'NAME': '' {NOT_A_NAME}: it is empty"),
    (["start", "../pods"], f"Invalid value for 'PVC': '../pods' {NOT_A_NAME}"),
    (["describe", "A B"], f"Invalid value for 'NAME': 'A B' {NOT_A_NAME}"),
    (["watch", "x/y"], f"Invalid value for 'NAME': 'x/y' {NOT_A_NAME}"),
    (["undo", ".."], f"Invalid value for 'NAME': '..' {NOT_A_NAME}"),
    (["snapshots", "Data"], f"Invalid value for 'PVC': 'Data' {NOT_A_NAME}"),
    (["doctor", "../x"], f"'../x' {NOT_A_NAME}"),
    (["locks", "clear", "../x"], f"Invalid value for 'PVC': '../x' {NOT_A_NAME}"),
    (["locks", "clear", ""], f"Invalid value for 'PVC': '' {NOT_A_NAME}: it is empty"),
    (["-n", "../x", "list"], "Invalid value for '-n' / '--namespace': '../x' is not a valid Kubernetes namespace"),
    (["list", "-n", "a.b"], "Invalid value for '-n' / '--namespace': 'a.b' is not a valid Kubernetes namespace"),
    (["locks", "-n", "../x"], "Invalid value for '-n' / '--namespace': '../x' is not a valid Kubernetes namespace"),
    (["start", "data", "-n", ""], "Invalid value for '-n' / '--namespace': '' is not a valid Kubernetes namespace"),
]


@pytest.mark.parametrize("args,message", FLAG_CASES + NAME_CASES, ids=lambda v: " ".join(v) if isinstance(v, list)
                         else None)
def test_refused_before_connecting(tripwire, args, message):
    result = invoke(*args, "--kubeconfig", tripwire.kubeconfig)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert result.output.count("Error:") == 1
    assert not tripwire.touched(), "the command connected to the API server before refusing its input"


def test_the_tripwire_sees_a_command_that_connects(tripwire):
    result = invoke("list", "--kubeconfig", tripwire.kubeconfig, "--request-timeout", "1")
    assert result.exit_code == 1 and "cannot reach the Kubernetes API server" in result.output
    assert tripwire.touched()


def test_usage_errors_come_before_kubeconfig_errors(tmp_path):
    result = invoke("start", "../pods", "--kubeconfig", str(tmp_path / "nope"))
    assert result.exit_code == 2 and NOT_A_NAME in result.output and "no such file" not in result.output


# -- against the real control plane: nothing changes -----------------------------------------------------------------


def test_cancel_cannot_reach_another_object(cluster, run):
    from kubectl_pvc_restore import kube as k

    cluster.kube.create(k.CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"},
                                       "data": {"keep": "me"}}, cluster.ns)
    path = TRAVERSAL.format(ns=cluster.ns, name="x")
    result = run("cancel", path)
    assert result.exit_code == 2
    assert "Invalid value for 'NAME': '../../../../../../api/v1/namespaces/" in result.output  # (shortened)
    assert NOT_A_NAME in result.output
    assert cluster.kube.get(k.CONFIGMAPS, "x", cluster.ns)["data"] == {"keep": "me"}


def test_cancel_of_an_empty_name_deletes_nothing(cluster, run):
    from kubectl_pvc_restore import kube as k
    from kubectl_pvc_restore import model

    for name in ("one", "two"):
        cluster.kube.create(k.PVC_RESTORES, {"apiVersion": model.API_VERSION, "kind": model.KIND,
                                             "metadata": {"name": name}, "spec": {"pvc": "data"}}, cluster.ns)
    for args in (["cancel", ""], ["delete", ""], ["locks", "clear", ""]):
        result = run(*args)
        assert result.exit_code == 2 and f"'' {NOT_A_NAME}: it is empty" in result.output
    assert sorted(r["metadata"]["name"] for r in cluster.kube.list(k.PVC_RESTORES, cluster.ns)) == ["one", "two"]


def test_bad_input_against_a_real_cluster_changes_nothing(cluster, run, kubeconfig, tmp_path):
    from kubectl_pvc_restore import kube as k
    from tests import scenario as sc

    sc.setup(cluster, statefulset=0, deployment=1)
    configmaps = sorted(c["metadata"]["name"] for c in cluster.kube.list(k.CONFIGMAPS, cluster.ns))

    def variant(name: str, change) -> str:
        data = yaml.safe_load(open(kubeconfig))
        change(data)
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data))
        return str(path)

    current = yaml.safe_load(open(kubeconfig))["current-context"]
    no_current = variant("nocurrent", lambda d: d.pop("current-context"))
    ghost = variant("ghost", lambda d: d.update({"current-context": "ghost"}))
    bad_token = variant("token", lambda d: [u.update({"user": {"token": "not-a-valid-token"}}) for u in d["users"]])
    cases = [
        (["start", "data"], no_current, 1, f"kubeconfig {no_current} has no current-context"),
        (["start", "data"], ghost, 1, "its current-context 'ghost' is not one of its contexts"),
        (["start", "data", "--context", "ghost"], None, 1, "has no context 'ghost' (given with --context); available "
                                                           f"contexts: {current}"),
        (["start", "data"], bad_token, 1, "refused the credentials of kubeconfig"),
    ] + [(args, None, 2, message) for args, message in FLAG_CASES + NAME_CASES]
    for args, path, code, message in cases:
        result = run(*args, kubeconfig_path=path, ns="-n" not in args)  # a later -n would override the bad one
        assert result.exit_code == code, (args, result.output)
        assert message in result.output, (args, result.output)
    # ... and the same flags, valid, do work against this cluster:
    assert run("start", "data", "--dry-run", "--restore-timeout", "90").exit_code == 0
    assert run("start", "data", "--latest", "--dry-run").exit_code == 0

    assert sc.restores(cluster) == []
    assert cluster.replicas(k.DEPLOYMENTS, "web") == 1
    assert cluster.kube.list(k.REPLICATION_DESTINATIONS, cluster.ns) == []
    assert not cluster.kube.get(k.REPLICATION_SOURCES, sc.SOURCE, cluster.ns)["spec"].get("paused")
    assert sorted(c["metadata"]["name"] for c in cluster.kube.list(k.CONFIGMAPS, cluster.ns)) == configmaps
