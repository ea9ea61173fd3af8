"""``pvc-restore-controller``: flags -> Settings -> run the poll loop until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import click

from .durations import Duration
from .settings import Settings


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--kubeconfig", envvar="KUBECONFIG", type=click.Path(dir_okay=False),
              help="Kubeconfig file [env KUBECONFIG; in-cluster config when empty].")
@click.option("--context", envvar="KUBE_CONTEXT", help="Kubeconfig context to use [env KUBE_CONTEXT].")
@click.option("--namespace", envvar="WATCH_NAMESPACE", default="",
              help="Only handle this namespace [env WATCH_NAMESPACE; all namespaces when empty].")
@click.option("--poll-interval", envvar="POLL_INTERVAL", type=Duration(0.05), default="5s", show_default=True,
              help="Time between polls [env POLL_INTERVAL].")
@click.option("--restore-timeout", envvar="RESTORE_TIMEOUT", type=Duration(1), default="5m", show_default=True,
              help="How long the Restore phase waits for the volsync mover before failing [env RESTORE_TIMEOUT].")
@click.option("--scale-down-timeout", envvar="SCALE_DOWN_TIMEOUT", type=Duration(1), default="5m",
              show_default=True,
              help="How long ScaleDown waits for the pods that mount the PVC to stop [env SCALE_DOWN_TIMEOUT].")
@click.option("--lock-ttl", "lock_stale_after", envvar="LOCK_TTL", type=Duration(0), default="5m",
              show_default=True,
              help="Delete a lock whose holder is gone or Finished once it is this old [env LOCK_TTL].")
@click.option("--cache-storage-class", envvar="CACHE_STORAGE_CLASS", default="",
              help="StorageClass for the restic cache volume of every restore, overriding the ReplicationSource's "
                   "cacheStorageClassName [env CACHE_STORAGE_CLASS].")
@click.option("--api-timeout", envvar="API_TIMEOUT", type=Duration(0.5), default="15s", show_default=True,
              help="HTTP timeout of each Kubernetes API call [env API_TIMEOUT].")
@click.option("--workers", envvar="WORKERS", type=click.IntRange(min=1), default=16, show_default=True,
              help="Restores reconciled concurrently [env WORKERS].")
@click.option("--log-level", envvar="LOG_LEVEL", type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True, help="[env LOG_LEVEL]")
def main(log_level: str, **options) -> None:
    """Restore PersistentVolumeClaims from volsync backups: reconciles PVCRestore resources and the
    pvc-restore.homelab-helper.benfiola.com/restore annotation on PVCs."""
    logging.basicConfig(level=getattr(logging, log_level.upper()), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    options["namespace"] = options["namespace"] or None
    options["cache_storage_class"] = options["cache_storage_class"] or None
    options["kubeconfig"] = options["kubeconfig"] or None
    settings = Settings(**options)
    sys.exit(asyncio.run(_run(settings)))


async def _run(settings: Settings) -> int:
    from kubectl_pvc_restore import kube as k

    from .loop import Controller

    try:
        kube = await k.Kube.connect(kubeconfig=settings.kubeconfig, context=settings.context,
                                    timeout=settings.api_timeout)
    except k.KubeError as exc:
        logging.getLogger("pvc-restore").error("%s", exc)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    logging.getLogger("pvc-restore").info("polling every %gs (%s)", settings.poll_interval,
                                           f"namespace {settings.namespace}" if settings.namespace else
                                           "all namespaces")
    await Controller(kube, settings).run(stop)
    return 0


if __name__ == "__main__":
    main()
