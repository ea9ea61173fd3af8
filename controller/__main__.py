"""``pvc-restore-controller``: flags -> Settings -> serve until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import time
import uuid

import click

from kubectl_pvc_restore.durations import Duration

from .settings import Settings

SA_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
log = logging.getLogger("pvc-restore")
LOG_LEVELS = {"debug": "debug", "info": "info", "warning": "warning", "warn": "warning", "error": "error"}


class LogLevel(click.ParamType):
    """debug, info, warning (or warn), error, in any case (LOG_LEVEL=DEBUG is common) -> the lowercase name."""

    name = "level"

    def get_metavar(self, *args, **kwargs) -> str:  # click 8.1 passes (param), 8.2+ (param, ctx)
        return "[debug|info|warning|error]"

    def convert(self, value, param, ctx):
        level = LOG_LEVELS.get(str(value).strip().lower())
        if level is None:
            self.fail(f"{value!r} is not a log level; use one of debug, info, warning (or warn), error "
                      "(in any case)", param, ctx)
        return level


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--kubeconfig", envvar="KUBECONFIG", type=click.Path(dir_okay=False),
              help="Kubeconfig file [env KUBECONFIG; in-cluster config when empty].")
@click.option("--context", envvar="KUBE_CONTEXT", help="Kubeconfig context to use [env KUBE_CONTEXT].")
@click.option("--namespace", "namespaces", envvar="WATCH_NAMESPACE", multiple=True, metavar="NS[,NS...]",
              help="Only handle these namespaces: repeat the flag or separate them with commas; the controller then "
                   "needs only Roles in them [env WATCH_NAMESPACE, e.g. \"a,b\"; all namespaces when empty].")
@click.option("--poll-interval", envvar="POLL_INTERVAL", type=Duration(0.05), default="5s", show_default=True,
              help="Time between polls [env POLL_INTERVAL].")
@click.option("--restore-timeout", envvar="RESTORE_TIMEOUT", type=Duration(1), default="24h", show_default=True,
              help="How long the volsync mover may restore, from when it started, before the restore fails (a "
                   "PVCRestore's spec.timeout overrides it) [env RESTORE_TIMEOUT].")
@click.option("--mover-start-timeout", envvar="MOVER_START_TIMEOUT", type=Duration(1), default="10m",
              show_default=True,
              help="How long the Restore phase waits for the volsync mover to start (nothing is written before it "
                   "does) before the restore fails [env MOVER_START_TIMEOUT].")
@click.option("--scale-down-timeout", envvar="SCALE_DOWN_TIMEOUT", type=Duration(1), default="5m",
              show_default=True,
              help="How long ScaleDown waits for the pods that mount the PVC to stop [env SCALE_DOWN_TIMEOUT].")
@click.option("--lock-ttl", "lock_stale_after", envvar="LOCK_TTL", type=Duration(0), default="5m",
              show_default=True,
              help="Delete a lock whose holder is gone or Finished once it is this old [env LOCK_TTL].")
@click.option("--cache-storage-class", envvar="CACHE_STORAGE_CLASS", default="",
              help="StorageClass for the restic cache volume of every restore, overriding the ReplicationSource's "
                   "cacheStorageClassName [env CACHE_STORAGE_CLASS].")
@click.option("--history-max-age", envvar="HISTORY_MAX_AGE", type=Duration(0), default="168h", show_default=True,
              help="Delete Finished PVCRestores older than this; 0 keeps them [env HISTORY_MAX_AGE].")
@click.option("--history-max-count", envvar="HISTORY_MAX_COUNT", type=click.IntRange(min=0), default=10,
              show_default=True, help="Keep at most this many Finished PVCRestores per PVC; 0 keeps all "
                                      "[env HISTORY_MAX_COUNT].")
@click.option("--extra-scale-kind", "extra_scale_kinds", envvar="EXTRA_SCALE_KINDS", multiple=True,
              metavar="GROUP/VERSION/KIND",
              help="Also scale workloads of this kind (it must have /scale), e.g. argoproj.io/v1alpha1/Rollout; "
                   "repeat or separate with commas. Deployments, StatefulSets, ReplicaSets and ReplicationControllers "
                   "are always scaled; a restore never acts on a kind outside this set [env EXTRA_SCALE_KINDS].")
@click.option("--argocd-namespace", envvar="ARGOCD_NAMESPACE", default="argocd", show_default=True,
              help="Namespace of Argo CD Applications, whose automated sync is turned off during a restore "
                   "[env ARGOCD_NAMESPACE].")
@click.option("--api-timeout", envvar="API_TIMEOUT", type=Duration(0.5), default="15s", show_default=True,
              help="HTTP timeout of each Kubernetes API call [env API_TIMEOUT].")
@click.option("--forbidden-grace", "forbidden_grace", envvar="FORBIDDEN_GRACE", type=Duration(0), default="10s",
              show_default=True, help="A permission the API server refuses (403) fails a restore (outside Finalize) "
              "only once refused for this long: a restarting API server refuses until it has loaded RBAC "
              "[env FORBIDDEN_GRACE].")
@click.option("--workers", envvar="WORKERS", type=click.IntRange(min=1), default=16, show_default=True,
              help="Restores reconciled concurrently [env WORKERS].")
@click.option("--finalize-blocked-event-interval", envvar="FINALIZE_BLOCKED_EVENT_INTERVAL", type=Duration(0.1),
              default="1m", show_default=True,
              help="At most one FinalizeBlocked Warning Event per restore this often, while the API server refuses "
                   "its Finalize (401/403: workloads stay scaled down) [env FINALIZE_BLOCKED_EVENT_INTERVAL].")
@click.option("--health-address", envvar="HEALTH_ADDRESS", default=":8081", show_default=True,
              help="host:port for /healthz and /readyz; empty disables [env HEALTH_ADDRESS].")
@click.option("--metrics-address", envvar="METRICS_ADDRESS", default=":8080", show_default=True,
              help="host:port for Prometheus /metrics; empty disables [env METRICS_ADDRESS].")
@click.option("--leader-election/--no-leader-election", envvar="LEADER_ELECTION", default=False, show_default=True,
              help="Run several replicas; only the holder of the Lease pvc-restore-controller acts "
                   "[env LEADER_ELECTION].")
@click.option("--leader-election-namespace", envvar="LEADER_ELECTION_NAMESPACE", default="",
              help="Namespace of the Lease [env LEADER_ELECTION_NAMESPACE; default: the pod's namespace; outside a "
                   "pod the first --namespace, else default].")
@click.option("--leader-election-id", envvar="LEADER_ELECTION_ID", default="",
              help="This replica's identity in the Lease [default: hostname_random].")
@click.option("--lease-duration", envvar="LEASE_DURATION", type=Duration(1), default="15s", show_default=True,
              help="How long a lease holds without renewal [env LEASE_DURATION].")
@click.option("--renew-deadline", envvar="RENEW_DEADLINE", type=Duration(0.5), default="10s", show_default=True,
              help="The leader steps down when it cannot renew within this [env RENEW_DEADLINE].")
@click.option("--retry-period", envvar="RETRY_PERIOD", type=Duration(0.1), default="2s", show_default=True,
              help="Time between lease acquire/renew attempts [env RETRY_PERIOD].")
@click.option("--log-level", envvar="LOG_LEVEL", type=LogLevel(), default="info", show_default=True,
              help="Any case; warn = warning [env LOG_LEVEL].")
@click.option("--log-format", envvar="LOG_FORMAT", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="[env LOG_FORMAT]")
@click.pass_context
def main(ctx: click.Context, log_level: str, log_format: str, **options) -> None:
    """Restore PersistentVolumeClaims from volsync backups: reconciles PVCRestore resources and the
    pvc-restore.homelab-helper.benfiola.com/restore annotation on PVCs, by polling."""
    from .metrics import split_address

    for name in ("health_address", "metrics_address"):
        if options[name]:
            try:
                split_address(options[name])
            except ValueError as exc:
                raise click.BadParameter(str(exc), ctx=ctx, param_hint=f"--{name.replace('_', '-')}") from None
    if options["leader_election"] and not (options["retry_period"] < options["renew_deadline"]
                                           < options["lease_duration"]):
        raise click.UsageError("leader election needs --retry-period < --renew-deadline < --lease-duration")
    options["namespaces"] = watched_namespaces(ctx, options["namespaces"])
    options["extra_scale_kinds"] = scale_kinds(ctx, options["extra_scale_kinds"])
    if options["leader_election_namespace"]:
        from kubectl_pvc_restore.names import InvalidName, check_namespace
        try:
            check_namespace(options["leader_election_namespace"])
        except InvalidName as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param_hint="--leader-election-namespace") from None
    for name in ("cache_storage_class", "kubeconfig", "leader_election_namespace", "leader_election_id",
                 "context"):
        options[name] = options[name] or None
    from . import logs

    logs.setup(log_level, log_format)
    sys.exit(asyncio.run(serve(Settings(**options))))


def watched_namespaces(ctx: click.Context, values: tuple[str, ...]) -> tuple[str, ...]:
    """``--namespace a --namespace b,c`` (or WATCH_NAMESPACE="a,b,c") -> ("a", "b", "c"); empty items are ignored
    (so "" is all namespaces), duplicates dropped, each name checked."""
    from kubectl_pvc_restore.names import InvalidName, check_namespace

    out: dict[str, None] = {}
    for value in values:
        for item in value.split(","):
            item = item.strip()
            if not item:
                continue
            try:
                out[check_namespace(item)] = None
            except InvalidName as exc:
                raise click.BadParameter(str(exc), ctx=ctx, param_hint="--namespace / WATCH_NAMESPACE") from None
    return tuple(out)


def scale_kinds(ctx: click.Context, values: tuple[str, ...]) -> frozenset[tuple[str, str]]:
    """``argoproj.io/v1alpha1/Rollout`` -> {("argoproj.io/v1alpha1", "Rollout")}; each checked."""
    import re

    from kubectl_pvc_restore.kube import BadName, check_api_version

    out = set()
    for value in values:
        for item in filter(None, (v.strip() for v in value.split(","))):
            api_version, _, kind = item.rpartition("/")
            try:
                if "/" not in api_version or not re.fullmatch(r"[A-Z][A-Za-z0-9]{0,62}", kind):
                    raise BadName(f"{item!r} is not GROUP/VERSION/KIND (e.g. argoproj.io/v1alpha1/Rollout)")
                check_api_version(api_version)
            except BadName as exc:
                raise click.BadParameter(str(exc), ctx=ctx, param_hint="--extra-scale-kind") from None
            out.add((api_version, kind))
    return frozenset(out)


def pod_namespace(settings: Settings) -> str:
    if settings.leader_election_namespace:
        return settings.leader_election_namespace
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    try:
        with open(SA_NAMESPACE_FILE) as f:
            return f.read().strip()
    except OSError:
        return settings.namespaces[0] if settings.namespaces else "default"


async def connect(settings: Settings, user_agent: str):
    """The API client, once the API server answers. An unreachable or failing server (no answer, 5xx, 429: it may be
    restarting) is waited for, with back-off up to 30 s; credentials that cannot be loaded or are refused end the
    controller (None), with one line saying why."""
    import kr8s

    from kubectl_pvc_restore import kube as k

    delay = 1.0
    while True:
        try:
            return await k.Kube.connect(kubeconfig=settings.kubeconfig, context=settings.context,
                                        timeout=settings.api_timeout, user_agent=user_agent)
        except k.Unreachable as exc:
            if isinstance(exc.__cause__, ValueError):  # credentials kr8s cannot load: waiting will not help
                log.error("%s", exc)
                return None
            problem = str(exc)
        except k.KubeError as exc:
            log.error("%s", exc)
            return None
        except kr8s.ServerError as exc:  # kr8s's own /version request while connecting
            code = exc.response.status_code if exc.response is not None else None
            if code is not None and code < 500 and code != 429:
                log.error("the API server refused the controller's credentials or request: HTTP %s (%s)", code,
                          exc.response.reason_phrase if exc.response is not None else "")
                return None
            problem = f"the API server answered HTTP {code} when asked for its version"
        log.warning("%s; retrying in %.0fs", problem, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 30.0)


async def serve(settings: Settings) -> int:
    from kubectl_pvc_restore import __version__

    from . import health as health_mod
    from . import metrics
    from .leader import LeaderElector
    from .loop import Controller

    identity = settings.leader_election_id or f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"
    kube = await connect(settings, f"pvc-restore-controller/{__version__} ({identity})")
    if kube is None:
        return 1
    from kubectl_pvc_restore.support import server_support

    found = await server_support(kube)  # a server outside the supported range: said once, at start-up
    if found.supported:
        log.info("%s", found.message)
    else:
        log.warning("%s", found.message)
    health = health_mod.Health(stale_after=max(3 * settings.poll_interval, 3 * settings.retry_period, 30.0))
    health.last_api_ok = time.monotonic()

    def observe(method: str, status: int | None) -> None:
        if status is not None and status < 500:
            health.last_api_ok = time.monotonic()
        if status is None or (status >= 400 and status != 404):
            metrics.record_api_error(method, status)

    kube.observer = observe
    if settings.health_address:
        health_mod.serve(settings.health_address, health)
    if settings.metrics_address:
        metrics.serve(settings.metrics_address)

    elector = None
    if settings.leader_election:
        elector = LeaderElector(kube, pod_namespace(settings), identity, lease_duration=settings.lease_duration,
                                renew_deadline=settings.renew_deadline, retry_period=settings.retry_period)
        elector.fence(kube)  # no write but the Lease's own unless freshly renewed (a paused leader wakes up)
    controller = Controller(kube, settings, health=health, elector=elector)
    metrics.LEADER.set(0 if elector else 1)
    if elector:
        def on_change(leading: bool) -> None:
            metrics.LEADER.set(1 if leading else 0)
            if not leading:
                controller.stop_acting()
        elector.on_change = on_change

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("started: polling every %gs in %s%s", settings.poll_interval,
             settings.describe_scope(),
             f"; leader election as {elector.identity} (lease {elector.namespace}/{elector.name})" if elector else "")
    # The elector keeps renewing until the controller has drained its in-flight steps: stopping it at SIGTERM would
    # let a standby take over (after the lease expires) while this replica still acts.
    elector_stop = asyncio.Event()
    elector_task = None
    if elector:
        def tick() -> None:
            health.election_ok = elector.healthy
            health.last_loop = time.monotonic() if not elector.is_leader else health.last_loop
        elector_task = asyncio.create_task(elector.run(elector_stop, tick))
    try:
        await controller.run(stop)
    finally:
        elector_stop.set()
        if elector_task is not None:
            await elector_task
    if elector:
        await elector.release()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    main()
