"""Operations: the chart's alerting rules and Grafana dashboard, checked with Prometheus' own promtool (built from its
Go module by scripts/build-promtool.sh): `promtool check rules` on the rules helm renders, `promtool test rules` with
series that make each alert fire and series that must not (tests/alerts/), `promtool check metrics` on a scrape of the
running controller, and the dashboard and rules reference only metrics the controller exports. The gauges the rules
read are computed from the listed state (controller/observed.py), unit-tested here without a cluster."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from pathlib import Path

import click
import pytest
import yaml

from controller import observed
from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import locks, model
from kubectl_pvc_restore.cli import ALIASES, COMMANDS, cli
from tests import scenario as sc
from tests.conftest import free_port
from tests.helpers import http_get, wait_for

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "charts" / "pvc-restore"
ALERT_TESTS = REPO / "tests" / "alerts"
DASHBOARD = CHART / "dashboards" / "pvc-restore.json"
#: The release the unit tests' series are written for: job="pr-pvc-restore-metrics", namespace="ops".
RELEASE, NAMESPACE = "pr", "ops"
SEVERITIES = {"critical", "warning"}


@pytest.fixture(scope="session")
def promtool_cache() -> Path:
    out = subprocess.run(["bash", str(REPO / "scripts" / "build-promtool.sh")], capture_output=True, text=True,
                         check=True).stdout
    return Path(out.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def promtool(promtool_cache) -> Path:
    return promtool_cache / "bin" / "promtool"


@pytest.fixture(scope="session")
def helm() -> Path:
    from devtools.controlplane import build

    return build() / "bin" / "helm"


def render(helm: Path, *sets: str) -> list[dict]:
    args = [a for s in sets for a in ("--set", s)]
    out = subprocess.run([str(helm), "template", RELEASE, str(CHART), "-n", NAMESPACE, *args], capture_output=True,
                         text=True, check=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def rule_groups(helm: Path, *sets: str) -> dict:
    [rule] = [d for d in render(helm, "metrics.prometheusRule.enabled=true", *sets) if d["kind"] == "PrometheusRule"]
    return rule["spec"]


def alerts(groups: dict) -> list[dict]:
    return [r for g in groups["groups"] for r in g["rules"] if "alert" in r]


def promtool_run(promtool: Path, *args: str, cwd: Path | None = None, stdin: str | None = None):
    return subprocess.run([str(promtool), *args], capture_output=True, text=True, cwd=cwd, input=stdin, timeout=120)


# -- the rules -------------------------------------------------------------------------------------------------------

def test_monitoring_objects_are_opt_in(helm):
    """A cluster without the Prometheus operator or Grafana installs the default chart cleanly: no PrometheusRule, no
    ServiceMonitor, no dashboard ConfigMap unless asked for."""
    kinds = {(d["kind"], d["metadata"]["name"]) for d in render(helm)}
    assert not {kind for kind, _ in kinds} & {"PrometheusRule", "ServiceMonitor"}
    assert ("ConfigMap", "pr-pvc-restore-dashboard") not in kinds
    on = {d["kind"] for d in render(helm, "metrics.prometheusRule.enabled=true", "metrics.serviceMonitor.enabled=true",
                                    "metrics.grafanaDashboard.enabled=true")}
    assert {"PrometheusRule", "ServiceMonitor", "ConfigMap"} <= on


def test_rendered_rules_pass_promtool_check_rules(helm, promtool, tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rule_groups(helm)))
    result = promtool_run(promtool, "check", "rules", "--lint-fatal", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts(rule_groups(helm)))} rules found" in result.stdout
    # The check can fail: a broken expression is refused.
    bad = rule_groups(helm)
    bad["groups"][0]["rules"][0]["expr"] = "sum by (job (up)"
    path.write_text(yaml.safe_dump(bad))
    assert promtool_run(promtool, "check", "rules", str(path)).returncode != 0


def test_every_alert_has_for_severity_summary_description_and_a_runbook_with_real_commands(helm):
    found = alerts(rule_groups(helm))
    assert len(found) >= 12
    for rule in found:
        assert re.fullmatch(r"([0-9]+[smhd])+", rule["for"]), rule
        assert rule["labels"]["severity"] in SEVERITIES, rule
        notes = rule["annotations"]
        assert notes["summary"] and notes["description"], rule["alert"]
        assert "kubectl pvc-restore " in notes["runbook"], rule["alert"]
        for command in re.findall(r"kubectl pvc-restore (.*)", notes["runbook"]):
            check_command(command.split(), rule["alert"])
    assert {r["alert"] for r in found} >= {
        "PVCRestoreControllerAbsent", "PVCRestoreNoLeader", "PVCRestoreNotPolling", "PVCRestoreAPIErrors",
        "PVCRestoreWorkloadsHeldOnPartialData", "PVCRestoreWorkloadsHeldLong", "PVCRestoreBackupsPaused",
        "PVCRestoreLockHeldLong", "PVCRestoreLockAbandoned", "PVCRestoreFailed", "PVCRestoreStuckInPhase",
        "PVCRestoreFinalizeBlocked"}


def check_command(words: list[str], alert: str) -> None:
    """``kubectl pvc-restore WORDS...``: the command (and subcommand) exist and take every option named, with a value
    where it needs one. The command ends at the first word that is neither an option, an option's value nor an
    upper-case placeholder (PVC, NAME, NS), or at a word ending in punctuation."""
    def clean(word: str) -> tuple[str, bool]:
        stripped = word.rstrip(".,;:)")
        return stripped, stripped != word

    name, last = clean(words[0])
    shown = f"kubectl pvc-restore {name}"
    name = ALIASES.get(name, name)
    assert name in COMMANDS, f"{alert}: its runbook names {shown}, which does not exist"
    command = cli.get_command(click.Context(cli), name)
    rest = [] if last else list(words[1:])
    if isinstance(command, click.Group):
        if rest and re.fullmatch(r"[a-z-]+", clean(rest[0])[0]):
            sub, last = clean(rest.pop(0))
            shown += f" {sub}"
            rest = [] if last else rest
        else:
            sub = "list"  # a bare `locks [-A]` lists (LocksGroup)
        command = command.get_command(click.Context(command), sub)
        assert command is not None, f"{alert}: {shown}: no such subcommand"
    options = {opt: p for p in command.params for opt in p.opts + p.secondary_opts}
    while rest:
        word, last = clean(rest.pop(0))
        shown += f" {word}"
        if word.startswith("-"):
            assert word in options, f"{alert}: {shown}: {word} is not an option of {name}"
            if not options[word].is_flag and not last:
                assert rest, f"{alert}: {shown}: {word} needs a value"
                word, last = clean(rest.pop(0))
        elif not re.fullmatch(r"[A-Z]+", word):
            break
        if last:
            break


def test_promtool_unit_tests_fire_and_stay_quiet_for_every_alert(helm, promtool, tmp_path):
    """tests/alerts/pvc-restore.test.yaml, against the rules without their annotations (checked apart below): every
    alert is expected to fire in one case and to stay quiet in another."""
    groups = rule_groups(helm)
    for rule in alerts(groups):
        rule.pop("annotations")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(groups))
    shutil.copy(ALERT_TESTS / "pvc-restore.test.yaml", tmp_path)
    result = promtool_run(promtool, "test", "rules", "pvc-restore.test.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout

    tests = yaml.safe_load((ALERT_TESTS / "pvc-restore.test.yaml").read_text())["tests"]
    cases = [case for test in tests for case in test["alert_rule_test"]]
    for rule in alerts(groups):
        mine = [c for c in cases if c["alertname"] == rule["alert"]]
        assert any(c["exp_alerts"] for c in mine), f"no promtool test makes {rule['alert']} fire"
        assert any(not c["exp_alerts"] for c in mine), f"no promtool test keeps {rule['alert']} quiet"


def test_promtool_unit_tests_fail_when_the_rules_do_not_fire(promtool, tmp_path, helm):
    """The unit tests can fail: with a threshold no series reaches, the alerts they expect do not fire."""
    groups = rule_groups(helm, "metrics.prometheusRule.thresholds.workloadsHeld=1000d")
    for rule in alerts(groups):
        rule.pop("annotations")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(groups))
    shutil.copy(ALERT_TESTS / "pvc-restore.test.yaml", tmp_path)
    result = promtool_run(promtool, "test", "rules", "pvc-restore.test.yaml", cwd=tmp_path)
    assert result.returncode != 0
    assert "alertname: PVCRestoreWorkloadsHeldLong" in result.stdout + result.stderr


def test_alert_annotations_render_with_their_values(helm, promtool, tmp_path):
    """The annotations' templates ($value, $labels.phase) as promtool expands them, on the full rendered rules."""
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule_groups(helm)))
    shutil.copy(ALERT_TESTS / "pvc-restore-annotations.test.yaml", tmp_path)
    result = promtool_run(promtool, "test", "rules", "pvc-restore-annotations.test.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_prometheus_operators_crds_accept_the_rule_and_the_service_monitor(control_plane, namespace, helm,
                                                                              promtool_cache):
    """A cluster with the Prometheus operator: its PrometheusRule and ServiceMonitor CRDs (from its Go module) admit
    what the chart renders (server-side dry run), and refuse a rule the operator would not load."""
    for crd in sorted((promtool_cache / "crds").glob("*.yaml")):
        control_plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd))
    control_plane.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                          "crd/prometheusrules.monitoring.coreos.com", "crd/servicemonitors.monitoring.coreos.com")
    out = subprocess.run([str(helm), "template", RELEASE, str(CHART), "-n", namespace,
                          "--set", "metrics.prometheusRule.enabled=true",
                          "--set", "metrics.serviceMonitor.enabled=true",
                          "--set", "metrics.grafanaDashboard.enabled=true"], capture_output=True, text=True,
                         check=True).stdout
    docs = [d for d in yaml.safe_load_all(out) if d and d["kind"] in ("PrometheusRule", "ServiceMonitor", "ConfigMap")]
    assert sorted(d["kind"] for d in docs) == ["ConfigMap", "PrometheusRule", "ServiceMonitor"]
    applied = control_plane.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-",
                                    input=yaml.safe_dump_all(docs))
    assert "prometheusrule.monitoring.coreos.com/pr-pvc-restore created (server dry run)" in applied.stdout
    assert "servicemonitor.monitoring.coreos.com/pr-pvc-restore created (server dry run)" in applied.stdout
    [rule] = [d for d in docs if d["kind"] == "PrometheusRule"]
    rule["spec"]["groups"][0]["rules"][0]["for"] = "soon"
    refused = control_plane.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", check=False,
                                    input=yaml.safe_dump(rule))
    assert refused.returncode != 0 and "for" in refused.stderr, refused.stderr


def test_rule_values_disabled_labels_selector_and_a_bad_duration(helm):
    groups = rule_groups(helm, "metrics.prometheusRule.disabled={PVCRestoreLockHeldLong}",
                         "metrics.prometheusRule.alertLabels.team=storage",
                         "metrics.prometheusRule.selector=job=\"pvc-restore\"",
                         "metrics.prometheusRule.thresholds.workloadsHeld=1h30m")
    names = {r["alert"] for r in alerts(groups)}
    assert "PVCRestoreLockHeldLong" not in names and "PVCRestoreLockAbandoned" in names
    held = next(r for r in alerts(groups) if r["alert"] == "PVCRestoreWorkloadsHeldLong")
    assert held["expr"].strip().endswith("> 5400")
    assert 'pvc_restore_workloads_held_since_timestamp_seconds{job="pvc-restore", reason="restore_in_progress"}' in \
        held["expr"]
    assert all(r["labels"]["team"] == "storage" for r in alerts(groups))
    proc = subprocess.run([str(helm), "template", RELEASE, str(CHART), "--set", "metrics.prometheusRule.enabled=true",
                           "--set", "metrics.prometheusRule.thresholds.lockHeld=soon"], capture_output=True, text=True)
    assert proc.returncode != 0 and "lockHeld" in proc.stderr and "soon" in proc.stderr
    proc = subprocess.run([str(helm), "template", RELEASE, str(CHART), "--set", "metrics.prometheusRule.enabled=true",
                           "--set", "metrics.prometheusRule.disabled={PVCRestoreLockHeldLon}"], capture_output=True,
                          text=True)
    assert proc.returncode != 0 and "PVCRestoreLockHeldLon is not one of the chart's alerts" in proc.stderr, proc.stderr


# -- the dashboard ---------------------------------------------------------------------------------------------------

def test_dashboard_configmap_for_the_grafana_sidecar(helm):
    [cm] = [d for d in render(helm, "metrics.grafanaDashboard.enabled=true") if d["kind"] == "ConfigMap"
            and d["metadata"]["name"] == "pr-pvc-restore-dashboard"]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["pvc-restore.json"]) == json.loads(DASHBOARD.read_text())
    [other] = [d for d in render(helm, "metrics.grafanaDashboard.enabled=true",
                                 "metrics.grafanaDashboard.label=dashboards", "metrics.grafanaDashboard.labelValue=pvc",
                                 "metrics.grafanaDashboard.namespace=monitoring")
               if d["metadata"]["name"] == "pr-pvc-restore-dashboard"]
    assert other["metadata"]["labels"]["dashboards"] == "pvc" and "grafana_dashboard" not in other["metadata"]["labels"]
    assert other["metadata"]["namespace"] == "monitoring"


def test_dashboard_queries_are_valid_promql(promtool, tmp_path):
    """Each panel's query, with the dashboard's variables filled in, as a recording rule: promtool parses it."""
    exprs = [e.replace("$namespace", ".*").replace("$job", ".*") for e in dashboard_exprs()]
    assert not [e for e in exprs if "$" in e], "a query uses a variable the dashboard does not define"
    rules = {"groups": [{"name": "dashboard", "rules": [{"record": f"dashboard:query_{i}", "expr": e}
                                                         for i, e in enumerate(exprs)]}]}
    (tmp_path / "dashboard.yaml").write_text(yaml.safe_dump(rules))
    result = promtool_run(promtool, "check", "rules", str(tmp_path / "dashboard.yaml"))
    assert result.returncode == 0 and f"SUCCESS: {len(exprs)} rules found" in result.stdout, result.stdout + \
        result.stderr
    variables = {v["name"] for v in json.loads(DASHBOARD.read_text())["templating"]["list"]}
    assert variables == {"datasource", "namespace", "job"}


def dashboard_exprs() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets") or []]
    assert len(exprs) >= 15
    return exprs


METRIC = re.compile(r"\b(pvc_restore_[a-z0-9_]+)\b")
SUFFIXES = ("_bucket", "_sum", "_count", "_total", "_created")


def exported_names(scrape: str) -> set[str]:
    """Every sample name the exposition can carry: each family (# TYPE, samples or not) with its type's suffixes."""
    names = set()
    for line in scrape.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            names.add(name)
            if kind == "counter":
                names.update({name + "_total", name + "_created"} if not name.endswith("_total") else {name})
            elif kind == "histogram":
                names.update(name + s for s in ("_bucket", "_sum", "_count", "_created"))
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def unknown_metrics(exprs: list[str], exported: set[str]) -> set[str]:
    return {name for expr in exprs for name in METRIC.findall(expr) if name not in exported}


def test_dashboard_and_rules_use_only_metrics_the_controller_exports_and_its_scrape_passes_promtool(
        cluster, controller_process, kubeconfig, helm, promtool, tmp_path):
    """A scrape of the real controller (a subprocess with --metrics-address) after a restore ran to Finished and while
    one that failed 10 minutes ago holds its workload on partial data: `promtool check metrics` finds nothing to say;
    every metric the dashboard or an alert names is in it; and the rules, evaluated by promtool on that scrape as
    series, fire exactly PVCRestoreWorkloadsHeldOnPartialData and PVCRestoreFailed."""
    # A restore that failed on partial data 10 minutes ago and holds a workload, its source and a lock (its status as
    # the controller writes it, written before the controller starts: Finished without a finalizer, it is left alone).
    held = model.manifest("held", cluster.ns, model.Spec(pvc="other"))
    cluster.kube.create(k.PVC_RESTORES, held, cluster.ns)
    obj = cluster.kube.get(k.PVC_RESTORES, "held", cluster.ns)
    hour_ago = model.format_time(model.now() - dt.timedelta(hours=1))
    ten_minutes_ago = model.format_time(model.now() - dt.timedelta(minutes=10))
    obj["status"] = {"phase": "Finished", "error": "cancelled", "dataIncomplete": True,
                     "completionTime": ten_minutes_ago,
                     "pvcOwners": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "other-app",
                                    "namespace": cluster.ns, "replicas": 1}],
                     "replicationSource": "other-src", "replicationSourcePaused": False,
                     "timeline": [{"phase": "ScaleDown", "at": hour_ago}]}
    cluster.kube.replace(k.PVC_RESTORES, obj, subresource="status")
    cluster.kube.create(k.CONFIGMAPS, locks.lock_manifest(cluster.ns, "other", "held", obj["metadata"]["uid"],
                                                          model.now() - dt.timedelta(hours=1)), cluster.ns)
    sc.setup(cluster, statefulset=0, deployment=1)
    port = free_port()
    controller_process(args=("--kubeconfig", kubeconfig, "--namespace", cluster.ns, "--poll-interval", "0.2",
                             "--metrics-address", f"127.0.0.1:{port}", "--health-address", ""))
    cluster.kube.create(k.PVC_RESTORES, model.manifest("r1", cluster.ns, model.Spec(pvc="data")), cluster.ns)
    sc.wait_finished(cluster, "r1")
    url = f"http://127.0.0.1:{port}/metrics"
    wanted = ('pvc_restore_restores{phase="Finished",result="succeeded"} 1.0',
              'pvc_restore_workloads_held{reason="partial_data"} 1.0', 'pvc_restore_locks{holder="holding"} 1.0')
    scrape = wait_for(lambda: (lambda t: t if all(w in t for w in wanted) else None)(http_get(url)[1]),
                      message="the poll's gauges to count the finished and the holding restore")
    scraped_at = model.now().timestamp()
    assert re.search(r'^pvc_restore_workloads_held_since_timestamp_seconds\{reason="partial_data"\} \S+$', scrape, re.M)
    assert re.search(r'^pvc_restore_oldest_lock_acquired_timestamp_seconds\{holder="holding"\} \S+$', scrape, re.M)
    result = promtool_run(promtool, "check", "metrics", stdin=scrape)
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result.stdout + result.stderr
    # The check can fail: a counter without _total, a unit that is not a base unit.
    bad = promtool_run(promtool, "check", "metrics", stdin="# HELP x_seconds x\n# TYPE x_seconds counter\n"
                       "x_seconds 1\n# HELP y_milliseconds y\n# TYPE y_milliseconds gauge\ny_milliseconds 3\n")
    assert bad.returncode != 0 and '"_total" suffix' in bad.stdout + bad.stderr
    assert float(re.search(r"^pvc_restore_last_poll_success_timestamp_seconds (\S+)$", scrape, re.M)[1]) > 0

    exported = exported_names(scrape)
    assert "pvc_restore_workloads_held" in exported and "pvc_restore_phase_duration_seconds_bucket" in exported
    assert not unknown_metrics(dashboard_exprs(), exported), "the dashboard names metrics the controller lacks"
    rule_exprs = [r["expr"] for r in alerts(rule_groups(helm))]
    assert not unknown_metrics(rule_exprs, exported), "an alert names metrics the controller lacks"
    # The comparison can fail: a name the controller does not export is found.
    assert unknown_metrics(["sum(pvc_restore_no_such_metric)"], exported) == {"pvc_restore_no_such_metric"}

    # The rules on this very scrape, held for 20 minutes, as promtool evaluates them.
    groups = rule_groups(helm)
    for rule in alerts(groups):
        rule.pop("annotations")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(groups))
    firing = {"PVCRestoreWorkloadsHeldOnPartialData": "critical", "PVCRestoreFailed": "warning"}
    labels = {"job": f"{RELEASE}-pvc-restore-metrics", "namespace": NAMESPACE}
    test = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": scrape_as_series(scrape, scraped_at, at=20 * 60, minutes=20, **labels),
        "alert_rule_test": [{"eval_time": "20m", "alertname": r["alert"], "exp_alerts": [
            {"exp_labels": {"severity": firing[r["alert"]], **labels}}] if r["alert"] in firing else []}
            for r in alerts(groups)]}]}
    (tmp_path / "scrape.test.yaml").write_text(yaml.safe_dump(test))
    result = promtool_run(promtool, "test", "rules", "scrape.test.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def scrape_as_series(scrape: str, scraped_at: float, *, at: int, minutes: int, **labels: str) -> list[dict]:
    """Each sample of an exposition as a promtool input series, constant for ``minutes``, with the labels Prometheus'
    scrape adds (and its ``up``). promtool's clock starts at 0: a Unix timestamp value is moved so that, at ``at``
    seconds, it is as far in the past as it was when scraped."""
    extra = ", ".join(f'{k}="{v}"' for k, v in {**labels, "instance": "10.0.0.1:8080"}.items())
    series = [{"series": f"up{{{extra}}}", "values": f"1x{minutes + 5}"}]  # the scrape worked
    for line in scrape.splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, value = line.rsplit(" ", 1)
        number = float(value)
        if name_labels.split("{", 1)[0].endswith("_timestamp_seconds") and number > 0:
            number = number - scraped_at + at
        name, _, rest = name_labels.partition("{")
        selector = f"{name}{{{rest[:-1] + ', ' if rest else ''}{extra}}}"
        series.append({"series": selector, "values": f"{number!r}x{minutes + 5}"})
    return series


# -- the gauges, from listed state (no cluster) --------------------------------------------------------------------

def restore(name: str, phase: str | None, *, pvc: str = "data", ns: str = "apps", **status) -> dict:
    obj = model.manifest(name, ns, model.Spec(pvc=pvc))
    obj["metadata"].update(uid=f"uid-{name}", creationTimestamp="2026-11-26T08:00:00Z")
    obj["status"] = {"phase": phase, **status} if phase else {}
    return obj


def owner(name: str, replicas: int) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "namespace": "apps", "replicas": replicas}


def lock(pvc: str, holder: str, acquired: str, *, ns: str = "apps") -> dict:
    return {"metadata": {"name": f"pvc-restore-lock-{pvc}", "namespace": ns, "creationTimestamp": acquired},
            "data": {"pvc": pvc, "holder": holder, "holderUID": f"uid-{holder}", "acquiredAt": acquired}}


def ts(value: str) -> float:
    return model.parse_time(value).timestamp()


def test_observed_state_counts_what_restores_hold_and_since_when():
    stop = {"apiVersion": "batch/v1", "kind": "CronJob", "name": "nightly", "namespace": "apps", "method": "suspend",
            "original": None}
    running = restore("run", "Restore", pvc="a", pvcOwners=[owner("web", 2), owner("idle", 0)], stopped=[stop],
                      replicationSource="a-src", replicationSourcePaused=False, startTime="2026-11-26T09:00:00Z",
                      phaseStartTime="2026-11-26T09:05:00Z",
                      timeline=[{"phase": "Initialize", "at": "2026-11-26T09:00:00.000Z"},
                                {"phase": "ScaleDown", "at": "2026-11-26T09:01:00.000Z"},
                                {"phase": "Restore", "at": "2026-11-26T09:05:00.000Z"}])
    held = restore("held", "Finished", pvc="b", pvcOwners=[owner("db", 1)], replicationSource="b-src",
                   replicationSourcePaused=False, dataIncomplete=True, error="mover failed",
                   completionTime="2026-11-26T07:30:00Z",
                   timeline=[{"phase": "ScaleDown", "at": "2026-11-26T07:00:00.000Z"}])
    # A retry that took over an older held restore's workloads: held since that one's ScaleDown.
    old = restore("old", "Finished", pvc="c", pvcOwners=[owner("api", 3)], dataIncomplete=True, error="x",
                  handedOverTo="retry", completionTime="2026-11-26T05:00:00Z",
                  timeline=[{"phase": "ScaleDown", "at": "2026-11-26T04:00:00.000Z"}])
    retry = restore("retry", "ScaleDown", pvc="c", pvcOwners=[owner("api", 3)], inheritedFrom="old",
                    replicationSource="c-src", replicationSourcePaused=True, phaseStartTime="2026-11-26T09:10:00Z",
                    timeline=[{"phase": "ScaleDown", "at": "2026-11-26T09:10:00.000Z"}])
    ok = restore("ok", "Finished", pvc="d", pvcOwners=[owner("x", 1)], replicationSource="d-src",
                 replicationSourcePaused=False, completionTime="2026-11-26T08:30:00Z")
    queued = restore("queued", "Initialize", pvc="a", lockHolder="run", phaseStartTime="2026-11-26T06:00:00Z")
    lock_objs = [lock("a", "run", "2026-11-26T09:00:00Z"), lock("b", "held", "2026-11-26T07:00:00Z"),
             lock("e", "vanished", "2026-11-26T03:00:00Z"), lock("d", "ok", "2026-11-26T08:00:00Z")]

    state = observed.compute([running, held, old, retry, ok, queued], lock_objs)

    assert state.restores[("Restore", "none")] == 1 and state.restores[("ScaleDown", "none")] == 1
    assert state.restores[("Initialize", "none")] == 1
    assert state.restores[("Finished", "failed")] == 2 and state.restores[("Finished", "succeeded")] == 1
    assert state.workloads_held == {"restore_in_progress": 2, "partial_data": 1}  # web and api; idle has 0 replicas
    assert state.workloads_held_since == {"restore_in_progress": ts("2026-11-26T04:00:00Z"),
                                          "partial_data": ts("2026-11-26T07:00:00Z")}
    # retry's source was paused before (replicationSourcePaused true): not paused by a restore.
    assert state.sources_paused == {"restore_in_progress": 1, "partial_data": 1}
    assert state.sources_paused_since == {"restore_in_progress": ts("2026-11-26T09:01:00Z"),
                                          "partial_data": ts("2026-11-26T07:00:00Z")}
    assert state.stops["suspend"] == 1 and sum(state.stops.values()) == 1
    # The queued restore waits on purpose: the oldest Initialize is not it.
    assert "Initialize" not in state.oldest_in_phase
    assert state.oldest_in_phase == {"Restore": ts("2026-11-26T09:05:00Z"), "ScaleDown": ts("2026-11-26T09:10:00Z")}
    assert state.oldest_restore_start == ts("2026-11-26T08:00:00Z")  # queued: no startTime, its creation
    assert state.last_failure == ts("2026-11-26T07:30:00Z")
    assert state.locks == {"active": 1, "holding": 1, "finished": 1, "gone": 1}
    assert state.oldest_lock == {"active": ts("2026-11-26T09:00:00Z"), "holding": ts("2026-11-26T07:00:00Z"),
                                 "gone": ts("2026-11-26T03:00:00Z"), "finished": ts("2026-11-26T08:00:00Z")}


def test_observed_state_of_nothing_has_zero_counts_and_no_timestamps():
    state = observed.compute([], [])
    assert set(state.restores.values()) == {0} and len(state.restores) == 6
    assert state.workloads_held == {"restore_in_progress": 0, "partial_data": 0}
    assert not (state.workloads_held_since or state.sources_paused_since or state.oldest_lock
                or state.oldest_in_phase)
    assert state.oldest_restore_start is None and state.last_failure is None


def test_a_replica_that_does_not_poll_exports_the_names_without_samples():
    from prometheus_client import generate_latest

    from controller import metrics

    metrics.publish_state(observed.compute([restore("held", "Finished", pvcOwners=[owner("db", 1)],
                                                    dataIncomplete=True, error="x")], []))
    text = generate_latest().decode()
    assert 'pvc_restore_workloads_held{reason="partial_data"} 1.0' in text
    metrics.publish_state(None)
    text = generate_latest().decode()
    assert "# TYPE pvc_restore_workloads_held gauge" in text
    assert "pvc_restore_workloads_held{" not in text
