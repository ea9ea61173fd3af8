"""Issue 13's bad-input catalogue: every input a user or a cluster can get wrong, tried against the real control plane,
one table per category (annotation values, PVCRestore specs, CLI arguments and flags, kubeconfigs, RBAC-limited
users).

For each input: exactly one clear message (no traceback, no kr8s/httpx internals, no Python exception class names),
the exit code kubectl would give (2 for a usage error, 1 for a runtime error) and nothing changed in the cluster: a
fingerprint of every object the product could touch in the namespace (PVCs, PVCRestores, ConfigMaps, Deployments and
StatefulSets with their replicas, ReplicationSources and -Destinations, each with its resourceVersion) and the number
of PVCRestores cluster-wide, taken before and after. For an annotation value the message is the controller's Warning
Event on the PVC (and the annotation is removed); for a spec, the API server's refusal, which must name the field.

One namespace (a PVC mounted by a Deployment and a StatefulSet, a restic ReplicationSource, a finished restore of a
PVC that does not exist, an abandoned lock) and one in-process controller serve the whole module. Every input is
counted in the reliability ledger (``bad inputs tried``, by category).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import re
import socket
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml
from click.testing import CliRunner

from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import locks, model
from kubectl_pvc_restore.model import RESTORE_ANNOTATION
from tests import scenario as sc
from tests.helpers import SERVICE_ACCOUNTS, Cluster, bind_role, identity_kubeconfig, in_process_controllers, wait_for

#: A restore that ran and finished (with an error: its PVC does not exist), touching nothing.
GHOST = "ghost-restore"
#: A PVC whose abandoned lock (holder gone) the module keeps, for `locks clear` by a user who may not delete it.
LOCKED = "old-data"
#: Neither the developer's kubeconfig nor an in-cluster service account may leak in.
CLEAN_ENV = {"KUBECONFIG": None, "KUBERNETES_SERVICE_HOST": None, "KUBERNETES_SERVICE_PORT": None}
#: What a clear message never shows: a traceback, the client libraries, Python's exception class names or reprs.
INTERNALS = re.compile(r"Traceback|File \"|\bkr8s\b|httpx|\b[A-Z]\w*(?:Error|Exception)\b|\bdatetime\.|"
                       r"<[\w.]+ object at 0x|\b(?:asyncio|anyio|h11|ssl\.|protobuf)\b|_ssl\.c|"
                       r"For more information check")
#: The API server's refusal of a spec is its own text: it must name the field, and come from no client library.
#: Also CEL's own words: a validation rule that fails to evaluate (``duration()`` of a value that is no duration) shows
#: them instead of the rule's message.
SERVER_INTERNALS = re.compile(r"Traceback|\bkr8s\b|httpx|google\.protobuf|type conversion error|no such overload")


# -- the module's world ----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class World:
    kube: Any
    ns: str
    cluster: Cluster
    kubeconfig: str
    control_plane: Any
    tmp: Path

    def admin(self) -> dict[str, Any]:
        return yaml.safe_load(Path(self.kubeconfig).read_text())


def fingerprint(kube: Any, ns: str, *, pvc_content: bool = False) -> dict[tuple[str, str], Any]:
    """Every object the product could touch in ``ns``, with its resourceVersion (workloads also with replicas), and the
    uids of the PVCRestores cluster-wide (check_unchanged looks only for new ones there: other tests' namespaces may
    still be going away). ``pvc_content``: PVCs by uid, labels, annotations and spec instead (an
    annotation test writes the PVC twice, and must leave it as it was)."""
    seen: dict[tuple[str, str], Any] = {}
    for res in (k.PVCS, k.PVC_RESTORES, k.CONFIGMAPS, k.DEPLOYMENTS, k.STATEFULSETS, k.REPLICATION_SOURCES,
                k.REPLICATION_DESTINATIONS):
        for obj in kube.list(res, ns):
            meta = obj["metadata"]
            if res is k.PVCS and pvc_content:
                entry: Any = (meta["uid"], json.dumps([meta.get("labels"), meta.get("annotations"),
                                                       meta.get("finalizers"), obj.get("spec")], sort_keys=True))
            else:
                entry = (meta["uid"], meta["resourceVersion"])
            if res in (k.DEPLOYMENTS, k.STATEFULSETS):
                entry = (*entry, obj["spec"].get("replicas"))
            seen[(res.kind, meta["name"])] = entry
    seen[CLUSTER_WIDE] = frozenset(r["metadata"]["uid"] for r in kube.list(k.PVC_RESTORES, None))
    return seen


#: The fingerprint's entry for every PVCRestore in the cluster (a bad input must not create one anywhere).
CLUSTER_WIDE = ("PVCRestore", "(created in any namespace)")


def settled(kube: Any, ns: str, **options: Any) -> dict[tuple[str, str], Any]:
    """The fingerprint once two reads half a second apart agree (workloads' status settles after their pods run)."""
    last: list[Any] = [None]

    def stable() -> Any:
        import time

        time.sleep(0.5)
        now = fingerprint(kube, ns, **options)
        mine = {key: value for key, value in now.items() if key != CLUSTER_WIDE}
        same, last[0] = mine == last[0], mine
        return now if same else None

    return wait_for(stable, timeout=60, interval=0, message="the namespace to settle")


@pytest.fixture(scope="module")
def world(kube, portal, control_plane, mover_simulator, tmp_path_factory) -> Iterator[World]:
    ns = f"bad-input-catalogue-{uuid.uuid4().hex[:6]}"
    kube.create(k.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    try:
        cluster = Cluster(kube, ns)
        wait_for(lambda: kube.get_or_none(SERVICE_ACCOUNTS, "default", ns), message="the default ServiceAccount")
        sc.setup(cluster, deployment=2, statefulset=1)
        with in_process_controllers(portal, kube.kube, ns, lock_stale_after=3600.0) as start:
            start()
            sc.create_restore(cluster, GHOST, pvc="ghost")
            failed = sc.wait_finished(cluster, GHOST)
            assert "ghost" in failed["status"]["error"], failed["status"]
            kube.create(k.CONFIGMAPS, locks.lock_manifest(ns, LOCKED, "gone-restore", "0000",
                                                          model.now() - dt.timedelta(days=1)), ns)
            settled(kube, ns)
            yield World(kube, ns, cluster, str(control_plane.kubeconfig), control_plane,
                        tmp_path_factory.mktemp("bad-input"))
    finally:
        kube.delete(k.NAMESPACES, ns)
        for pv in kube.list(k.PVS, label_selector=f"test-namespace={ns}"):
            kube.delete(k.PVS, pv["metadata"]["name"])


# -- checks ----------------------------------------------------------------------------------------------------------


def check_clear(ledger, what: str, text: str, expected: str, internals_pattern: re.Pattern = INTERNALS) -> None:
    """``text`` holds exactly one message, it says ``expected`` and shows no internals."""
    internals = internals_pattern.search(text)
    ledger.check(internals is None, f"{what}: the message shows internals ({internals and internals[0]!r}): {text!r}")
    ledger.check(expected in text, f"{what}: the message does not say {expected!r}: {text!r}")
    ledger.check(len(text) < 2000, f"{what}: the message is {len(text)} characters long: {text[:300]!r}...")


def check_unchanged(ledger, what: str, before: dict, after: dict) -> None:
    before, after = dict(before), dict(after)
    created = after.pop(CLUSTER_WIDE, frozenset()) - before.pop(CLUSTER_WIDE, frozenset())
    changed: dict[Any, Any] = {key: (before.get(key), after.get(key)) for key in before.keys() | after.keys()
                               if before.get(key) != after.get(key)}
    if created:
        changed[CLUSTER_WIDE] = sorted(created)
    ledger.check(not changed, f"{what} changed the cluster: {changed}")


def invoke(*args: str, env: dict[str, str | None] | None = None) -> Any:
    """``kubectl pvc-restore ARGS`` as a user runs it (click's runner; an exception escaping it is a violation)."""
    from kubectl_pvc_restore.cli import cli

    return CliRunner().invoke(cli, list(args), prog_name="kubectl pvc-restore", env={**CLEAN_ENV, **(env or {})},
                              catch_exceptions=True)


def check_cli(ledger, world: World, what: str, args: list[str], code: int, expected: str, *,
              env: dict[str, str | None] | None = None) -> None:
    before = fingerprint(world.kube, world.ns)
    result = invoke(*args, env=env)
    escaped = result.exception if not isinstance(result.exception, SystemExit) else None
    ledger.check(escaped is None, f"{what}: {type(escaped).__name__} escaped the CLI: {escaped}")
    ledger.check(result.exit_code == code, f"{what}: exit code {result.exit_code}, not {code}: {result.output!r}")
    ledger.check(result.output.count("Error:") == 1, f"{what}: not exactly one 'Error:': {result.output!r}")
    message = result.output[result.output.index("Error:"):]
    check_clear(ledger, what, message, expected)
    check_unchanged(ledger, what, before, fingerprint(world.kube, world.ns))


# -- 1. annotation values --------------------------------------------------------------------------------------------

WHY_NOT = "is not a snapshot selector"
NOT_RFC3339 = "is not an RFC3339 time with a zone"

ANNOTATIONS = [
    ("minus-one", "-1", WHY_NOT),
    ("word", "abc", WHY_NOT),
    ("fraction", "1.5", WHY_NOT),
    ("plus-sign", "+3", WHY_NOT),
    ("exponent", "1e3", WHY_NOT),
    ("hex", "0x10", WHY_NOT),
    ("underscore", "1_0", WHY_NOT),
    ("latest-as-a-word", "latest", WHY_NOT),
    ("leading-zero", "01", "has leading zeros; write 1"),
    ("leading-space", " 1", "has leading or trailing whitespace"),
    ("trailing-newline", "1\n", "has leading or trailing whitespace"),
    ("only-spaces", "   ", "the value is only whitespace"),
    ("only-tab", "\t", "the value is only whitespace"),
    ("too-far-back", "10001", "is too far back (at most 10000)"),
    ("huge-number", "9" * 40, "is too far back"),
    ("month-13", "2024-13-01T00:00:00Z", "is not a valid date and time: month must be in 1..12"),
    ("february-30", "2024-02-30T00:00:00Z", "day is out of range for month"),
    ("hour-25", "2024-05-01T25:00:00Z", "hour must be in 0..23"),
    ("zone-offset-25h", "2024-05-01T10:00:00+25:00", "its zone offset +25:00 is not between"),
    ("zone-offset-60m", "2024-05-01T10:00:00+05:60", "its zone offset +05:60 is not between"),
    ("date-only", "2024-05-01", NOT_RFC3339),
    ("space-separator", "2024-05-01 10:00:00Z", NOT_RFC3339),
    ("no-zone", "2024-05-01T10:00:00", NOT_RFC3339),
    ("before-1970", "1969-12-31T23:59:59Z", "is before 1970"),
    ("year-one", "0001-01-01T00:00:00+01:00", "is before 1970"),
    ("future", "2999-01-01T00:00:00Z", "is in the future"),
    ("very-long", "x" * 10_000, "(10000 characters) is not a snapshot selector"),
    ("fullwidth-digit", "\uff11", WHY_NOT),
    ("arabic-indic-digit", "\u0663", WHY_NOT),
    ("fullwidth-year", "\uff12\uff10\uff12\uff14-05-01T10:00:00Z", NOT_RFC3339),
    ("zero-width-space", "1\u200b", WHY_NOT),
    ("emoji", "\U0001f525", WHY_NOT),
    ("nul-byte", "\x00", WHY_NOT),
    ("right-to-left-override", "\u202e1", WHY_NOT),
]


@pytest.mark.parametrize("value,reason", [pytest.param(v, r, id=i) for i, v, r in ANNOTATIONS])
def test_annotation_value(world, ledger, value, reason):
    """The controller refuses the value: the annotation is removed, exactly one Warning Event on the PVC says why,
    and nothing else changes (no PVCRestore, no lock, no workload scaled)."""
    ledger.count("bad inputs tried", kind="annotation")
    what = f"annotation {value[:40]!r}"
    kube, ns = world.kube, world.ns

    def refusals() -> dict[str, dict]:
        return {e["metadata"]["name"]: e for e in kube.list(k.EVENTS, ns)
                if e.get("reason") == "InvalidRestoreAnnotation" and e["involvedObject"].get("name") == sc.PVC}

    earlier = refusals()
    before = fingerprint(kube, ns, pvc_content=True)
    sc.annotate(world.cluster, value)

    def answered() -> Any:
        annotations = kube.get(k.PVCS, sc.PVC, ns)["metadata"].get("annotations") or {}
        new = {name: e for name, e in refusals().items() if name not in earlier}
        return new if new and RESTORE_ANNOTATION not in annotations else None

    new = wait_for(answered, timeout=30, message=f"the controller to refuse {what}")
    ledger.check(len(new) == 1, f"{what}: {len(new)} Events instead of one: {[e['message'] for e in new.values()]}")
    event = next(iter(new.values()))
    ledger.check(event["type"] == "Warning", f"{what}: a {event['type']} Event, not a Warning")
    ledger.check(event["message"].startswith("Refused restore annotation: "),
                 f"{what}: the Event does not say first that the value was refused: {event['message']!r}")
    check_clear(ledger, what, event["message"], reason)
    check_unchanged(ledger, what, before, fingerprint(kube, ns, pvc_content=True))


# -- 2. PVCRestore specs, through the real API server (kubectl create) ------------------------------------------------

SPECS = [
    ("no-spec", None, "spec: Required value"),
    ("spec-not-an-object", "x", "spec: Invalid value"),
    ("no-pvc", {}, "spec.pvc: Required value"),
    ("pvc-empty", {"pvc": ""}, "spec.pvc"),
    ("pvc-traversal", {"pvc": "../pods"}, "spec.pvc"),
    ("pvc-uppercase", {"pvc": "Data"}, "spec.pvc"),
    ("pvc-trailing-space", {"pvc": "data "}, "spec.pvc"),
    ("pvc-leading-dash", {"pvc": "-data"}, "spec.pvc"),
    ("pvc-too-long", {"pvc": "a" * 254}, "spec.pvc"),
    ("pvc-unicode", {"pvc": "d\u00e4ta"}, "spec.pvc"),
    ("pvc-a-number", {"pvc": 123}, "spec.pvc"),
    ("previous-negative", {"pvc": "data", "previous": -1}, "spec.previous"),
    ("previous-too-far", {"pvc": "data", "previous": 10001}, "spec.previous"),
    ("previous-a-string", {"pvc": "data", "previous": "1"}, "spec.previous"),
    ("previous-a-fraction", {"pvc": "data", "previous": 1.5}, "spec.previous"),
    ("as-of-a-word", {"pvc": "data", "restoreAsOf": "abc"}, "spec.restoreAsOf"),
    ("as-of-month-13", {"pvc": "data", "restoreAsOf": "2024-13-01T00:00:00Z"}, "spec.restoreAsOf"),
    ("as-of-before-1970", {"pvc": "data", "restoreAsOf": "1969-12-31T23:59:59Z"}, "before 1970"),
    ("as-of-a-number", {"pvc": "data", "restoreAsOf": 1714557600}, "spec.restoreAsOf"),
    ("as-of-too-long", {"pvc": "data", "restoreAsOf": "2024-05-01T10:00:00" + "0" * 60 + "Z"}, "spec.restoreAsOf"),
    ("previous-and-as-of", {"pvc": "data", "previous": 1, "restoreAsOf": "2024-05-01T10:00:00Z"},
     "previous and restoreAsOf are mutually exclusive"),
    ("timeout-zero", {"pvc": "data", "timeout": "0s"}, "timeout must be at least 1s"),
    ("timeout-negative", {"pvc": "data", "timeout": "-5m"}, "timeout must be a duration such as"),
    ("timeout-in-days", {"pvc": "data", "timeout": "2d"}, "timeout must be a duration such as"),
    ("timeout-empty", {"pvc": "data", "timeout": ""}, "timeout must be a duration such as"),
    ("timeout-units-out-of-order", {"pvc": "data", "timeout": "30m1h"}, "timeout must be a duration such as"),
    ("timeout-a-number", {"pvc": "data", "timeout": 3600}, "spec.timeout"),
    ("timeout-overflowing", {"pvc": "data", "timeout": "9" * 20 + "h"}, "timeout must be a duration such as"),
    ("timeout-seven-digits-of-hours", {"pvc": "data", "timeout": "1000000h"}, "timeout must be a duration such as"),
    ("timeout-past-the-limit", {"pvc": "data", "timeout": "999999h1m"}, "timeout must be at most 999999h"),
    ("running-jobs-unknown", {"pvc": "data", "runningJobs": "Kill"}, "spec.runningJobs"),
    ("partial-data-unknown", {"pvc": "data", "partialData": "Delete"}, "spec.partialData"),
    ("safety-backup-a-string", {"pvc": "data", "safetyBackup": "yes"}, "spec.safetyBackup"),
    ("delete-bare-pods-a-number", {"pvc": "data", "deleteBarePods": 1}, "spec.deleteBarePods"),
    ("unknown-field", {"pvc": "data", "prevoius": 1}, 'unknown field "spec.prevoius"'),
    ("bad-object-name", {"pvc": "data", "name": "Bad_Name"}, "metadata.name"),  # name: the object's, not in spec
]


def check_refusal(ledger, what: str, text: str, field: str) -> None:
    """One refusal by the API server (kubectl prints it as one error, with a line per invalid field) that names the
    field."""
    refusals = len(re.findall(r'^(?:The PVCRestore "[^"]*" is invalid|Error from server)', text, re.MULTILINE))
    ledger.check(refusals == 1, f"{what}: {refusals} refusals instead of one: {text!r}")
    check_clear(ledger, what, text, field, SERVER_INTERNALS)


def restore_manifest(ns: str, spec: Any, name: str = "bad-spec") -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": model.API_VERSION, "kind": model.KIND,
                            "metadata": {"name": name, "namespace": ns}}
    if spec is not None:
        body["spec"] = spec
    return body


@pytest.mark.parametrize("spec,field", [pytest.param(s, f, id=i) for i, s, f in SPECS])
def test_restore_spec(world, ledger, spec, field):
    """kubectl create of a bad PVCRestore: the API server refuses it (exit 1) naming the field; nothing is created."""
    ledger.count("bad inputs tried", kind="spec")
    what = f"spec {spec!r}"[:80]
    if isinstance(spec, dict) and "name" in spec:  # the object's name, not a spec field
        body = restore_manifest(world.ns, {key: value for key, value in spec.items() if key != "name"},
                                name=spec["name"])
    else:
        body = restore_manifest(world.ns, spec)
    before = fingerprint(world.kube, world.ns)
    proc = world.control_plane.kubectl("create", "-f", "-", input=json.dumps(body), check=False)
    ledger.check(proc.returncode == 1, f"{what}: kubectl exited {proc.returncode}: {proc.stdout!r} {proc.stderr!r}")
    ledger.check(proc.stdout == "", f"{what}: kubectl printed {proc.stdout!r}")
    check_refusal(ledger, what, proc.stderr, field)
    if isinstance(spec, dict) and "timeout" in spec and "at least" not in field:
        ledger.check("at least 1s" not in proc.stderr, f"{what}: a timeout refused for what it is is not also "
                     f"too short: {proc.stderr!r}")
    check_unchanged(ledger, what, before, fingerprint(world.kube, world.ns))


SPEC_CHANGES = [
    ("change-previous", {"spec": {"previous": 2}}, "spec is immutable"),
    ("change-pvc", {"spec": {"pvc": "data"}}, "spec is immutable"),
    ("remove-pvc", {"spec": {"pvc": None}}, "spec.pvc: Required value"),
]


@pytest.mark.parametrize("patch,message", [pytest.param(p, m, id=i) for i, p, m in SPEC_CHANGES])
def test_restore_spec_change(world, ledger, patch, message):
    """kubectl patch of an existing restore's spec: refused (the spec is immutable), nothing changes."""
    ledger.count("bad inputs tried", kind="spec")
    what = f"patch {patch!r}"
    before = fingerprint(world.kube, world.ns)
    proc = world.control_plane.kubectl("patch", f"pvcrestores.{model.GROUP}", GHOST, "-n", world.ns,
                                       "--type", "merge", "-p", json.dumps(patch), check=False)
    ledger.check(proc.returncode == 1, f"{what}: kubectl exited {proc.returncode}: {proc.stdout!r} {proc.stderr!r}")
    check_refusal(ledger, what, proc.stderr, message)
    check_unchanged(ledger, what, before, fingerprint(world.kube, world.ns))


# -- 3. CLI arguments and flags (as the admin, against the real cluster) ---------------------------------------------

NOT_A_NAME = "is not a valid Kubernetes name"
BAD_NAMESPACE = "is not a valid Kubernetes namespace"

#: (id, args (``{ns}`` is the namespace; ``-n`` is added unless the args give one), exit code, message)
CLI = [
    # usage errors: exit 2, before anything is sent
    ("no-command-matches", ["restore", "data"], 2, "No such command 'restore'"),
    ("start-without-pvc", ["start"], 2, "Missing argument 'PVC'"),
    ("start-two-pvcs", ["start", "data", "other"], 2, "Got unexpected extra argument (other)"),
    ("start-unknown-flag", ["start", "data", "--force"], 2, "No such option '--force'"),
    ("start-flag-typo", ["start", "data", "--previus", "1"], 2,
     "No such option '--previus'. Did you mean '--previous'?"),
    ("previous-negative", ["start", "data", "--previous", "-1"], 2, "Invalid value for '--previous'"),
    ("previous-a-word", ["start", "data", "--previous", "abc"], 2, "'abc' is not a valid integer"),
    ("previous-a-fraction", ["start", "data", "--previous", "1.5"], 2, "'1.5' is not a valid integer"),
    ("previous-too-far", ["start", "data", "--previous", "10001"], 2, "10001 is not in the range"),
    ("previous-without-value", ["start", "data", "--previous"], 2, "Option '--previous' requires an argument"),
    ("latest-and-previous", ["start", "data", "--latest", "--previous", "1"], 2,
     "--latest cannot be combined with --previous"),
    ("previous-and-as-of", ["start", "data", "--previous", "1", "--as-of", "1 day ago"], 2,
     "--previous and --as-of are mutually exclusive"),
    ("as-of-ambiguous", ["start", "data", "--as-of", "03/04/2024"], 2, "I can read unambiguously"),
    ("as-of-future", ["start", "data", "--as-of", "2999-01-01T00:00:00Z"], 2, "is in the future"),
    ("as-of-before-1970", ["start", "data", "--as-of", "1969-12-31"], 2, "is before 1970"),
    ("as-of-zone-offset-25h", ["start", "data", "--as-of", "2024-05-01T10:00:00+25:00"], 2,
     "its zone offset +25:00 is not between"),
    ("as-of-unknown-unit", ["start", "data", "--as-of", "3 fortnights ago"], 2, "unknown unit 'fortnights'"),
    ("restore-timeout-zero", ["start", "data", "--restore-timeout", "0s"], 2, "must be at least 1s"),
    ("restore-timeout-a-word", ["start", "data", "--restore-timeout", "soon"], 2, "'soon' is not a duration"),
    ("timeout-without-wait", ["start", "data", "--timeout", "60"], 2, "--timeout only applies with --wait"),
    ("wait-timeout-zero", ["start", "data", "--wait", "--timeout", "0"], 2, "Invalid value for '--timeout'"),
    ("running-jobs-unknown", ["start", "data", "--running-jobs", "Kill"], 2, "'Kill' is not one of 'Wait', 'Fail'"),
    ("partial-data-unknown", ["start", "data", "--partial-data", "Delete"], 2, "'Delete' is not one of"),
    ("start-output-unknown", ["start", "data", "-o", "table"], 2, "'table' is not one of"),
    ("list-output-unknown", ["list", "-o", "xml"], 2, "'xml' is not one of"),
    ("request-timeout-zero", ["list", "--request-timeout", "0"], 2, "Invalid value for '--request-timeout'"),
    ("request-timeout-a-word", ["list", "--request-timeout", "soon"], 2, "'soon' is not a valid float"),
    ("namespace-traversal", ["list", "-n", "../kube-system"], 2, BAD_NAMESPACE),
    ("namespace-uppercase", ["list", "-n", "Apps"], 2, BAD_NAMESPACE),
    ("namespace-empty", ["start", "data", "-n", ""], 2, BAD_NAMESPACE),
    ("name-traversal", ["cancel", "../../../api/v1/namespaces/{ns}/configmaps/x"], 2, NOT_A_NAME),
    ("name-empty", ["describe", ""], 2, f"'' {NOT_A_NAME}: it is empty"),
    ("name-too-long", ["watch", "a" * 254], 2, NOT_A_NAME),
    ("name-unicode", ["start", "d\u00e4ta"], 2, NOT_A_NAME),
    ("name-with-space", ["undo", "my restore"], 2, NOT_A_NAME),
    ("watch-timeout-zero", ["watch", GHOST, "--timeout", "0"], 2, "Invalid value for '--timeout'"),
    ("undo-timeout-without-wait", ["undo", GHOST, "--timeout", "5"], 2, "--timeout only applies with --wait"),
    ("snapshots-two-selectors", ["snapshots", "data", "--previous", "1", "--as-of", "1 day ago"], 2,
     "--previous and --as-of are mutually exclusive"),
    ("snapshots-as-of-ambiguous", ["snapshots", "data", "--as-of", "03/04/2024"], 2,
     "Invalid value for '--as-of': '03/04/2024' is not a date and time I can read unambiguously"),
    ("snapshots-list-from-unknown", ["snapshots", "data", "--list-from", "nowhere"], 2, "'nowhere' is not one of"),
    ("locks-clear-without-pvc", ["locks", "clear"], 2, "Missing argument 'PVC'"),
    ("locks-unknown-subcommand", ["locks", "remove", "data"], 2, "No such command 'remove'"),
    ("version-unknown-flag", ["version", "--short"], 2, "No such option '--short'"),
    # runtime errors: exit 1, after asking the cluster
    ("start-missing-pvc", ["start", "dta"], 1, 'PersistentVolumeClaim "dta" not found in namespace {ns}; '
                                               "did you mean data?"),
    ("start-in-missing-namespace", ["start", "data", "-n", "no-such-namespace"], 1,
     'PersistentVolumeClaim "data" not found in namespace no-such-namespace'),
    ("describe-missing", ["describe", "ghost-restor"], 1, 'PVCRestore "ghost-restor" not found in namespace {ns}; '
                                                          f"did you mean {GHOST}?"),
    ("watch-missing", ["watch", "nope"], 1, 'PVCRestore "nope" not found'),
    ("cancel-missing", ["cancel", "nope"], 1, 'PVCRestore "nope" not found'),
    ("undo-missing", ["undo", "nope"], 1, 'PVCRestore "nope" not found'),
    ("scale-back-missing", ["scale-back", "nope"], 1, 'PVCRestore "nope" not found'),
    ("undo-without-safety-backup", ["undo", GHOST], 1, "was started without --safety-backup"),
    ("scale-back-holding-nothing", ["scale-back", GHOST], 1, "holds no workloads"),
    ("locks-clear-no-lock", ["locks", "clear", "data"], 1, "PVC data has no restore lock in namespace {ns}"),
    ("snapshots-missing-pvc", ["snapshots", "nope"], 1, 'PersistentVolumeClaim "nope" not found'),
]


@pytest.mark.parametrize("args,code,message", [pytest.param(a, c, m, id=i) for i, a, c, m in CLI])
def test_cli_input(world, ledger, args, code, message):
    ledger.count("bad inputs tried", kind="cli")
    args = [a.replace("{ns}", world.ns) for a in args]
    # The global flags first (kubectl's plugin convention allows both places): the input under test comes last.
    check_cli(ledger, world, f"kubectl pvc-restore {' '.join(args)[:80]}",
              ["--kubeconfig", world.kubeconfig, "-n", world.ns, *args], code, message.replace("{ns}", world.ns))


# -- 4. kubeconfigs that point nowhere or hold bad credentials -------------------------------------------------------


def write(world: World, name: str, data: Any) -> str:
    path = world.tmp / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return str(path)


def with_user(world: World, user: dict[str, Any], cluster: dict[str, Any] | None = None) -> dict[str, Any]:
    """The admin kubeconfig with another user (and cluster settings merged in; None removes one)."""
    data = world.admin()
    data["users"][0]["user"] = user
    merged = {**data["clusters"][0]["cluster"], **(cluster or {})}
    data["clusters"][0]["cluster"] = {key: value for key, value in merged.items() if value is not None}
    return data


def pki(world: World) -> Path:
    return world.control_plane.workdir / "kwok" / "clusters" / world.control_plane.name / "pki"


def certificate(subject: str, *, issuer: tuple[Any, Any] | None = None, expired: bool = False,
                ca: bool = False) -> tuple[bytes, bytes, Any, Any]:
    """(cert PEM, key PEM, cert, key): signed by ``issuer`` (cert, key), else self-signed."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters")])
    now = dt.datetime.now(dt.timezone.utc)
    start, end = (now - dt.timedelta(days=30), now - dt.timedelta(days=1)) if expired else (
        now - dt.timedelta(hours=1), now + dt.timedelta(days=1))
    signer_cert, signer_key = issuer or (None, key)
    cert = (x509.CertificateBuilder().subject_name(name)
            .issuer_name(signer_cert.subject if signer_cert is not None else name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(signer_key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem, cert, key


def cluster_ca(world: World) -> tuple[Any, Any]:
    import warnings

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    with warnings.catch_warnings():  # kwok's CA has serial number 0, which cryptography warns about
        warnings.simplefilter("ignore")
        return (x509.load_pem_x509_certificate((pki(world) / "ca.crt").read_bytes()),
                serialization.load_pem_private_key((pki(world) / "ca.key").read_bytes(), password=None))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def black_hole() -> Iterator[str]:
    """A server that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield f"https://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def revoked_token(world: World) -> dict[str, Any]:
    """A real bound token of a ServiceAccount that was deleted since."""
    path = identity_kubeconfig(world.kube, world.kubeconfig, world.ns, "deleted-account", world.tmp / "deleted.yaml")
    world.kube.delete(SERVICE_ACCOUNTS, "deleted-account", world.ns)
    data = yaml.safe_load(Path(path).read_text())
    wait_for(lambda: world.kube.get_or_none(SERVICE_ACCOUNTS, "deleted-account", world.ns) is None,
             message="the ServiceAccount to be gone")
    return data


def expired_cert(world: World) -> dict[str, Any]:
    cert, key, _, _ = certificate("expired-admin", issuer=cluster_ca(world), expired=True)
    return with_user(world, {"client-certificate-data": b64(cert), "client-key-data": b64(key)})


def foreign_cert(world: World) -> dict[str, Any]:
    ca_pem, _, ca_cert, ca_key = certificate("someone-elses-ca", ca=True)
    cert, key, _, _ = certificate("stranger", issuer=(ca_cert, ca_key))
    return with_user(world, {"client-certificate-data": b64(cert), "client-key-data": b64(key)})


def mismatched_key(world: World) -> dict[str, Any]:
    cert, _, _, _ = certificate("admin-with-another-key", issuer=cluster_ca(world))
    _, key, _, _ = certificate("someone-else")
    return with_user(world, {"client-certificate-data": b64(cert), "client-key-data": b64(key)})


def wrong_ca(world: World) -> dict[str, Any]:
    ca_pem, _, _, _ = certificate("someone-elses-ca", ca=True)
    data = world.admin()
    cluster = data["clusters"][0]["cluster"]
    cluster.pop("certificate-authority", None)
    cluster["certificate-authority-data"] = b64(ca_pem)
    return data


def plain_http(world: World) -> dict[str, Any]:
    data = world.admin()
    cluster = data["clusters"][0]["cluster"]
    cluster["server"] = cluster["server"].replace("https://", "http://")
    return data


def server(address: str) -> Callable[[World], dict[str, Any]]:
    def build(world: World) -> dict[str, Any]:
        data = world.admin()
        data["clusters"][0]["cluster"]["server"] = address
        return data
    return build


def simple(server_url: str, *, current: str | None = "main", user: dict | None = None,
           cluster: dict | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster if cluster is not None else {"server": server_url}}],
        "users": [{"name": "u", "user": user if user is not None else {"token": "t"}}],
        "contexts": [{"name": "main", "context": {"cluster": "c", "user": "u"}}],
    }
    if current is not None:
        data["current-context"] = current
    return data


UNREACHABLE = "cannot reach the Kubernetes API server"
REFUSED = "refused the credentials of kubeconfig"

#: (id, kubeconfig: YAML text, data, or a builder of the data from the world; command; message). ``{path}`` in the
#: message is the kubeconfig's path. Every one exits 1.
KUBECONFIGS: list[tuple[str, Any, list[str], str]] = [
    ("missing-file", None, ["start", "data"], "kubeconfig {path}: no such file (given with --kubeconfig)"),
    ("empty-file", "", ["cancel", GHOST], "kubeconfig {path} is empty"),
    ("not-yaml", "apiVersion: v1\ncurrent-context: a: b\n", ["locks", "clear", "data"],
     "kubeconfig {path} is not valid YAML at line 2"),
    ("a-list", "- apiVersion: v1\n", ["list"], "its top level is a list, not a mapping"),
    ("no-current-context", simple("https://127.0.0.1:1", current=None), ["describe", GHOST],
     "kubeconfig {path} has no current-context"),
    ("current-context-missing", simple("https://127.0.0.1:1", current="ghost"), ["snapshots", "data"],
     "its current-context 'ghost' is not one of its contexts"),
    ("cluster-without-server", simple("", cluster={"insecure-skip-tls-verify": True}), ["start", "data"],
     "cluster 'c' has no server"),
    ("username-and-password", simple("https://127.0.0.1:1", user={"username": "a", "password": "b"}), ["list"],
     "username/password authentication was removed in Kubernetes 1.19"),
    ("closed-port", lambda w: server(f"https://127.0.0.1:{closed_port()}")(w), ["start", "data"], UNREACHABLE),
    ("no-such-host", server("https://no-such-host.invalid:6443"), ["cancel", GHOST], UNREACHABLE),
    ("no-answer", "black-hole", ["start", "data", "--request-timeout", "1"], "no answer within 1s"),
    ("plain-http-to-https", plain_http, ["start", "data"], "Client sent an HTTP request to an HTTPS server"),
    ("wrong-ca", wrong_ca, ["start", "data"], "presented a certificate that kubeconfig {path} (context "),
    ("garbage-ca", lambda w: with_user(w, w.admin()["users"][0]["user"], {"certificate-authority": None,
                                                                         "certificate-authority-data": b64(b"junk")}),
     ["list"], "cannot load the certificates of kubeconfig {path}"),
    ("missing-ca-file", lambda w: with_user(w, w.admin()["users"][0]["user"], {"certificate-authority": "/nope.crt"}),
     ["list"], "/nope.crt"),
    ("bogus-token", lambda w: with_user(w, {"token": "not-a-real-token"}), ["start", "data"], REFUSED),
    ("revoked-token", revoked_token, ["cancel", GHOST], REFUSED),
    ("expired-client-cert", expired_cert, ["start", "data"], REFUSED),
    ("client-cert-of-another-ca", foreign_cert, ["locks", "clear", LOCKED], REFUSED),
    ("garbage-client-cert", lambda w: with_user(w, {"client-certificate-data": b64(b"garbage"),
                                                    "client-key-data": b64(b"garbage")}), ["start", "data"],
     "cannot load the certificates of kubeconfig {path}"),
    ("pem-armored-garbage-cert", lambda w: with_user(w, {
        "client-certificate-data": b64(b"-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n"),
        "client-key-data": b64(b"-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n")}),
     ["list"], "is not valid PEM"),
    ("client-cert-with-another-key", mismatched_key, ["start", "data"],
     "its client key does not belong to its client certificate"),
    ("client-cert-without-key", lambda w: with_user(w, {"client-certificate-data": mismatched_key(w)["users"][0][
        "user"]["client-certificate-data"]}), ["start", "data"], "has a client certificate but no client-key"),
    ("auth-provider-gcp", lambda w: with_user(w, {"auth-provider": {"name": "gcp", "config": {}}}), ["list"],
     "auth-provider 'gcp' is not supported"),
    ("oidc-without-id-token", lambda w: with_user(w, {"auth-provider": {"name": "oidc", "config": {}}}), ["list"],
     "its oidc auth-provider has no id-token"),
    ("missing-token-file", lambda w: with_user(w, {"tokenFile": "/nope/token"}), ["start", "data"], "/nope/token"),
    ("missing-exec-plugin", lambda w: with_user(w, {"exec": {"apiVersion": "client.authentication.k8s.io/v1",
                                                             "command": "no-such-credential-plugin",
                                                             "interactionMode": "Never"}}), ["list"],
     "no-such-credential-plugin"),
    ("tui-no-current-context", simple("https://127.0.0.1:1", current=None), ["tui"],
     "kubeconfig {path} has no current-context"),
]


@pytest.mark.parametrize("config,args,message", [pytest.param(c, a, m, id=i) for i, c, a, m in KUBECONFIGS])
def test_kubeconfig(world, ledger, black_hole, request, config, args, message):
    ledger.count("bad inputs tried", kind="kubeconfig")
    name = request.node.callspec.id
    path = str(world.tmp / f"{name}.kubeconfig")
    if config == "black-hole":
        config = server(black_hole)
    if callable(config):
        config = config(world)
    if config is not None:
        write(world, f"{name}.kubeconfig", config)
    check_cli(ledger, world, f"kubeconfig {name}: {' '.join(args)}", [*args, "--kubeconfig", path, "-n", world.ns],
              1, message.replace("{path}", path))


def test_kubeconfig_env_of_missing_files(world, ledger):
    ledger.count("bad inputs tried", kind="kubeconfig")
    listed = f"{world.tmp / 'a'}:{world.tmp / 'b'}"
    check_cli(ledger, world, "KUBECONFIG of missing files", ["start", "data", "-n", world.ns], 1,
              "none of the kubeconfig files in $KUBECONFIG exists", env={"KUBECONFIG": listed})


# -- 5. RBAC-limited users -------------------------------------------------------------------------------------------

READ = ["get", "list", "watch"]
#: May read everything the product reads, change nothing.
READER = [{"apiGroups": [k.PVC_RESTORES.group], "resources": ["pvcrestores"], "verbs": READ},
          {"apiGroups": [""], "resources": ["persistentvolumeclaims", "pods", "events", "configmaps"], "verbs": READ},
          {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "replicasets"], "verbs": READ},
          {"apiGroups": ["volsync.backube"], "resources": ["replicationsources", "replicationdestinations"],
           "verbs": READ}]


@pytest.fixture(scope="module")
def users(world) -> dict[str, str]:
    """Kubeconfigs of ServiceAccounts: ``reader`` (READER) and ``nobody`` (no Role at all)."""
    kube, ns = world.kube, world.ns
    reader = identity_kubeconfig(kube, world.kubeconfig, ns, "reader", world.tmp / "reader.kubeconfig")
    bind_role(kube, ns, "reader", READER)
    nobody = identity_kubeconfig(kube, world.kubeconfig, ns, "nobody", world.tmp / "nobody.kubeconfig")
    # The API server's RBAC authorizer works from an informer cache: wait until it knows the new binding.
    wait_for(lambda: invoke("list", "--kubeconfig", reader, "-n", ns).exit_code == 0, timeout=30,
             message="the reader's Role to take effect")
    return {"reader": reader, "nobody": nobody}


def cannot(verb: str, resource: str) -> str:
    return f'cannot {verb} resource "{resource}"'


RBAC = [
    ("reader-start", "reader", ["start", "data"], cannot("create", "pvcrestores")),
    ("reader-start-previous-wait", "reader", ["start", "data", "--previous", "1", "--wait"],
     cannot("create", "pvcrestores")),
    ("reader-cancel", "reader", ["cancel", GHOST], cannot("delete", "pvcrestores")),
    ("reader-clear-lock", "reader", ["locks", "clear", LOCKED], cannot("delete", "configmaps")),
    ("reader-clear-lock-force", "reader", ["locks", "clear", LOCKED, "--force"], cannot("delete", "configmaps")),
    ("nobody-start", "nobody", ["start", "data"], cannot("get", "persistentvolumeclaims")),
    ("nobody-cancel", "nobody", ["cancel", GHOST], cannot("get", "pvcrestores")),
    ("nobody-clear-lock", "nobody", ["locks", "clear", LOCKED], cannot("get", "configmaps")),
    ("nobody-list", "nobody", ["list"], cannot("list", "pvcrestores")),
    ("nobody-describe", "nobody", ["describe", GHOST], "you may not get pvcrestores"),
    ("nobody-locks", "nobody", ["locks"], cannot("list", "configmaps")),
    ("nobody-snapshots", "nobody", ["snapshots", "data"], cannot("get", "persistentvolumeclaims")),
]


@pytest.mark.parametrize("user,args,message", [pytest.param(u, a, m, id=i) for i, u, a, m in RBAC])
def test_rbac_limited_user(world, users, ledger, user, args, message):
    ledger.count("bad inputs tried", kind="rbac")
    check_cli(ledger, world, f"{user}: kubectl pvc-restore {' '.join(args)}",
              [*args, "--kubeconfig", users[user], "-n", world.ns], 1, message)
