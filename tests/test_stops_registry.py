"""The stops registry (kubectl_pvc_restore/stops): one kind per method, their order and what status may name."""

from __future__ import annotations

import pytest

from controller import trusted
from kubectl_pvc_restore import stops
from kubectl_pvc_restore.model import Stop

FLUX_KS = ("kustomize.toolkit.fluxcd.io/v1", "Kustomization")


def stop(api_version: str, kind: str, method: str, namespace: str = "app") -> Stop:
    return Stop(api_version, kind, "x", namespace, method, None)


def test_every_kind_is_registered_by_its_method_and_describes_itself():
    assert set(stops.REGISTRY) == {"argoAutomated", "suspend", "kedaPause", "pvcRetention", "nodeSelector", "delete"}
    for method, kind in stops.REGISTRY.items():
        assert kind.method == method
        for api_version, kind_name in kind.kinds:
            text = stops.describe(stop(api_version, kind_name, method))
            assert "x" in text and text != f"{kind_name} x: {method}"  # its own words, not the fallback


def test_apply_order_gitops_first_then_autoscalers_then_workloads_then_deletions():
    ordered = sorted([stop("v1", "Pod", "delete"), stop("batch/v1", "CronJob", "suspend"),
                      stop("apps/v1", "DaemonSet", "nodeSelector"),
                      stop("keda.sh/v1alpha1", "ScaledObject", "kedaPause"),
                      stop(*FLUX_KS, "suspend"), stop("argoproj.io/v1alpha1", "Application", "argoAutomated"),
                      stop("apps/v1", "StatefulSet", "pvcRetention")], key=stops.priority)
    ranks = [stops.priority(s) for s in ordered]
    assert ranks == [0, 0, 1, 1, 2, 2, 3]
    assert {s.kind for s in ordered[:2]} == {"Kustomization", "Application"}
    assert ordered[-1].kind == "Pod"


def test_an_unknown_method_is_described_plainly_and_refused_by_the_controller():
    odd = stop("apps/v1", "Deployment", "explode")
    assert stops.describe(odd) == "Deployment x: explode"
    assert "never does" in trusted.stop_problem(odd, "app")


@pytest.mark.parametrize("api_version,kind,method,namespace,allowed", [
    ("batch/v1", "CronJob", "suspend", "app", True),
    ("batch/v1", "CronJob", "suspend", "other", False),       # a CronJob only in the restore's namespace
    (*FLUX_KS, "suspend", "flux-system", True),               # Flux owners live elsewhere
    ("argoproj.io/v1alpha1", "Application", "argoAutomated", "argocd", True),
    ("keda.sh/v1alpha1", "ScaledObject", "kedaPause", "other", False),
    ("apps/v1", "DaemonSet", "suspend", "app", False),        # a method on a kind it is never done to
    ("v1", "Pod", "delete", "app", True),
    ("v1", "Secret", "delete", "app", False),
])
def test_status_may_name_only_what_the_controller_writes(api_version, kind, method, namespace, allowed):
    problem = trusted.stop_problem(stop(api_version, kind, method, namespace), "app")
    assert (problem is None) is allowed, problem
