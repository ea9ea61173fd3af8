"""`kubectl pvc-restore doctor` reports the dangerous states the chart's alerts watch, from the cluster: workloads kept
at 0 after partial data (with the retry, undo and scale-back commands), restores stuck or holding for long, sources
left paused with no restore holding them, abandoned locks. The restores' status is written as the controller would
have written it (no controller runs: the states are hours old), on the real control plane."""

from __future__ import annotations

import datetime as dt

from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import locks, model
from kubectl_pvc_restore.cli.doctor_holds import _duration
from tests.helpers import cli


def doctor(kubeconfig: str, namespace: str, *args: str) -> tuple[int, str]:
    result = cli("doctor", *args, kubeconfig=kubeconfig, namespace=namespace)
    return result.exit_code, result.output


def ago(**delta: float) -> str:
    return model.format_time(model.now() - dt.timedelta(**delta))


def restore_with_status(kube, namespace: str, name: str, pvc: str, status: dict, **spec) -> None:
    kube.create(k.PVC_RESTORES, model.manifest(name, namespace, model.Spec(pvc=pvc, **spec)), namespace)
    obj = kube.get(k.PVC_RESTORES, name, namespace)
    obj["status"] = status
    kube.replace(k.PVC_RESTORES, obj, subresource="status")


def source(kube, namespace: str, name: str, pvc: str, *, paused: bool) -> None:
    kube.create(k.REPLICATION_SOURCES, {
        "apiVersion": "volsync.backube/v1alpha1", "kind": "ReplicationSource",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"sourcePVC": pvc, "paused": paused, "trigger": {"manual": "x"}, "restic": {"repository": "repo"}}},
        namespace)


def owner(namespace: str, name: str, replicas: int) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "namespace": namespace, "replicas": replicas}


def test_workloads_held_after_partial_data_fail_with_the_commands_that_end_the_hold(kube, namespace, kubeconfig):
    source(kube, namespace, "data-src", "data", paused=True)
    stop = {"apiVersion": "batch/v1", "kind": "CronJob", "name": "nightly", "namespace": namespace,
            "method": "suspend", "original": None}
    restore_with_status(kube, namespace, "held", "data", {
        "phase": "Finished", "error": "the mover failed after it started writing", "dataIncomplete": True,
        "pvcOwners": [owner(namespace, "web", 2), owner(namespace, "idle", 0)], "stopped": [stop],
        "replicationSource": "data-src", "replicationSourcePaused": False,
        "safetyBackup": {"trigger": "t", "source": "pvc-restore-safety-held", "completedAt": ago(hours=3),
                         "snapshot": "abc123"},
        "startTime": ago(hours=3), "completionTime": ago(hours=2),
        "timeline": [{"phase": "Initialize", "at": ago(hours=3)}, {"phase": "ScaleDown", "at": ago(hours=3)},
                     {"phase": "Finalize", "at": ago(hours=2)}, {"phase": "Finished", "at": ago(hours=2)}]},
        previous=2)

    code, out = doctor(kubeconfig, namespace)
    assert code == 1, out
    lines = out.splitlines()
    assert (f"[FAIL] restore {namespace}/held ended on partial data (the mover failed after it started writing) and "
            "keeps what it stopped stopped for 3h, until a retry, an undo or a scale-back") in lines, out
    assert "       at 0 replicas: Deployment web (back to 2)" in lines, out  # idle had 0: nothing held
    assert "       ReplicationSource data-src paused: no backups of the PVC are taken" in lines, out
    assert any(line.startswith("       stopped: CronJob") and "nightly" in line for line in lines), out
    assert f"       fix: retry (takes the held workloads over, brings them back when it succeeds): kubectl " \
           f"pvc-restore start data -n {namespace} --previous 2" in lines, out
    assert f"            or put back the safety backup taken just before: kubectl pvc-restore undo held -n " \
           f"{namespace}" in lines, out
    assert f"            or bring the workloads back onto the partial data on purpose: kubectl pvc-restore " \
           f"scale-back held -n {namespace}" in lines, out
    # The source it holds is not reported again as paused by nobody.
    assert "is paused and no restore holds it" not in out

    # Scaled back (the controller records scaledBackAt): nothing is held any more.
    obj = kube.get(k.PVC_RESTORES, "held", namespace)
    obj["status"]["scaledBackAt"] = ago(minutes=1)
    kube.replace(k.PVC_RESTORES, obj, subresource="status")
    kube.patch(k.REPLICATION_SOURCES, "data-src", namespace, {"spec": {"paused": False}})
    code, out = doctor(kubeconfig, namespace)
    assert "ended on partial data" not in out
    assert (f"[ok  ] no restore holds workloads, a paused source or stops after partial data or for long in namespace "
            f"{namespace}; no source is left paused; no lock is abandoned or held long") in out.splitlines(), out


def test_long_holds_stuck_restores_orphaned_pauses_and_abandoned_locks_are_warnings_with_fixes(kube, namespace,
                                                                                              kubeconfig):
    restore_with_status(kube, namespace, "slow", "big", {
        "phase": "Restore", "pvcOwners": [owner(namespace, "db", 1)], "replicationSource": "big-src",
        "replicationSourcePaused": False, "startTime": ago(hours=30), "phaseStartTime": ago(hours=29),
        "message": "waiting for the mover",
        "timeline": [{"phase": "Initialize", "at": ago(hours=30)}, {"phase": "ScaleDown", "at": ago(hours=30)},
                     {"phase": "Restore", "at": ago(hours=29)}]})
    restore_with_status(kube, namespace, "fresh", "small", {
        "phase": "ScaleDown", "pvcOwners": [owner(namespace, "app", 1)], "startTime": ago(minutes=2),
        "phaseStartTime": ago(minutes=2), "timeline": [{"phase": "ScaleDown", "at": ago(minutes=2)}]})
    source(kube, namespace, "orphan-src", "other", paused=True)
    lock = locks.lock_manifest(namespace, "gone-pvc", "vanished", "uid-vanished",
                               model.now() - dt.timedelta(hours=2))
    kube.create(k.CONFIGMAPS, lock, namespace)

    code, out = doctor(kubeconfig, namespace)
    lines = out.splitlines()
    assert (f"[warn] restore {namespace}/slow (Restore) has held what it stopped for 1d6h") in lines, out
    assert "       at 0 replicas: Deployment db (back to 1)" in lines, out
    assert f"       fix: kubectl pvc-restore describe slow -n {namespace}" in lines, out
    assert any(line.startswith(f"[warn] restore {namespace}/slow has been in Restore for 1d5h (more than 1d2h): "
                               "waiting for the mover") for line in lines), out
    assert "fresh" not in out  # two minutes into ScaleDown is normal
    assert (f"[warn] ReplicationSource {namespace}/orphan-src (PVC other) is paused and no restore holds it: no "
            "backups are taken (a restore deleted by force, or paused by hand?)") in lines, out
    assert f"""       fix: kubectl patch replicationsource orphan-src -n {namespace} --type merge -p \
'{{"spec":{{"paused":false}}}}'""" in lines, out
    assert any(line.startswith(f"[warn] lock {namespace}/pvc-restore-lock-gone-pvc outlives its restore vanished "
                               "(gone) by 2h") for line in lines), out
    assert f"       fix: kubectl pvc-restore locks clear gone-pvc -n {namespace}" in lines, out
    assert "[ok  ] no restore holds workloads" not in out


def test_all_namespaces_looks_everywhere_and_the_namespace_only_by_default(kube, namespace, kubeconfig):
    restore_with_status(kube, namespace, "held", "data", {
        "phase": "Finished", "error": "cancelled", "dataIncomplete": True, "pvcOwners": [owner(namespace, "web", 1)],
        "completionTime": ago(minutes=5), "timeline": [{"phase": "ScaleDown", "at": ago(minutes=20)}]})
    other = f"{namespace[:50]}-other"
    kube.create(k.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": other}})
    try:
        _, out = doctor(kubeconfig, other)
        assert "ended on partial data" not in out
        assert f"in namespace {other}; no source is left paused" in out
        _, out = doctor(kubeconfig, other, "-A")
        assert f"[FAIL] restore {namespace}/held ended on partial data (cancelled) and keeps what it stopped stopped " \
               "for 20m" in out, out
    finally:
        kube.delete(k.NAMESPACES, other)


def test_durations_read_like_kubectl_ages_with_one_more_unit():
    assert [_duration(s) for s in (0, 59, 60, 61, 3600, 3660, 86400, 86400 + 7200, 30 * 3600)] == [
        "0s", "59s", "1m", "1m1s", "1h", "1h1m", "1d", "1d2h", "1d6h"]


def test_a_user_who_may_list_nothing_gets_one_not_checked_finding_naming_each_list(kube, namespace, kubeconfig,
                                                                                   tmp_path):
    from tests.helpers import identity_kubeconfig

    nobody = identity_kubeconfig(kube, kubeconfig, namespace, "nobody", tmp_path / "nobody.kubeconfig")
    code, out = doctor(nobody, namespace)
    assert code == 3, out
    lines = out.splitlines()
    i = lines.index(f"[????] could not check which restores hold workloads, sources or locks in namespace {namespace}: "
                    f"you may not list pvcrestores.{model.GROUP} in namespace {namespace}")
    assert lines[i + 1:i + 6] == [
        f"       not checked either: which ReplicationSources are paused in namespace {namespace}: you may not list "
        f"replicationsources.volsync.backube in namespace {namespace}",
        f"       not checked either: the restore locks in namespace {namespace}: you may not list configmaps in "
        f"namespace {namespace}",
        f"       check: kubectl auth can-i list pvcrestores.{model.GROUP} -n {namespace}",
        f"              kubectl auth can-i list replicationsources.volsync.backube -n {namespace}",
        f"              kubectl auth can-i list configmaps -n {namespace}"], out
    assert "[ok  ] no restore holds workloads" not in out


def test_doctors_thresholds_are_the_chart_alerts_defaults():
    """doctor warns when the chart's alerts would fire (values.yaml metrics.prometheusRule.thresholds)."""
    import re
    from pathlib import Path

    import yaml

    from kubectl_pvc_restore.cli import doctor_holds

    values = yaml.safe_load((Path(__file__).resolve().parents[1] / "charts" / "pvc-restore" / "values.yaml")
                            .read_text())["metrics"]["prometheusRule"]["thresholds"]

    def seconds(text: str) -> int:
        units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
        return sum(int(n) * units[u] for n, u in re.findall(r"([0-9]+)([smhd])", text))

    assert doctor_holds.HELD_LONG == seconds(values["workloadsHeld"])
    assert doctor_holds.PAUSED_LONG == seconds(values["backupsPaused"])
    assert doctor_holds.LOCK_HELD_LONG == seconds(values["lockHeld"])
    assert doctor_holds.LOCK_ABANDONED == seconds(values["lockAbandoned"])
    assert doctor_holds.STUCK_AFTER == {phase: seconds(v) for phase, v in values["stuckIn"].items()}
