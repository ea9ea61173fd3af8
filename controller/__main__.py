"""``pvc-restore-controller``: flags -> Settings -> run the poll loop until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import click

from .settings import Settings


@click.command(context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "PVC_RESTORE"})
@click.option("--kubeconfig", type=click.Path(dir_okay=False), help="Kubeconfig file (default: in-cluster, "
              "then $KUBECONFIG, then ~/.kube/config).")
@click.option("--context", help="Kubeconfig context to use.")
@click.option("--namespace", help="Only handle this namespace (default: all namespaces).")
@click.option("--poll-interval", type=click.FloatRange(min=0.05), default=5.0, show_default=True,
              help="Seconds between polls.")
@click.option("--restore-timeout", type=click.FloatRange(min=1), default=300.0, show_default=True,
              help="Seconds the Restore phase waits for the volsync mover before failing.")
@click.option("--scale-down-timeout", type=click.FloatRange(min=1), default=300.0, show_default=True,
              help="Seconds ScaleDown waits for the pods that mount the PVC to stop before failing.")
@click.option("--lock-stale-after", type=click.FloatRange(min=0), default=300.0, show_default=True,
              help="Delete a lock whose holder is gone or Finished once it is this many seconds old.")
@click.option("--cache-storage-class", help="StorageClass for the restic cache volume of every restore "
              "(overrides the ReplicationSource's cacheStorageClassName).")
@click.option("--api-timeout", type=click.FloatRange(min=0.5), default=15.0, show_default=True,
              help="HTTP timeout of each Kubernetes API call, in seconds.")
@click.option("--workers", type=click.IntRange(min=1), default=16, show_default=True,
              help="Restores reconciled concurrently.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info",
              show_default=True)
def main(log_level: str, **options) -> None:
    """Restore PersistentVolumeClaims from volsync backups: reconciles PVCRestore resources and the
    pvc-restore.homelab-helper.benfiola.com/restore annotation on PVCs."""
    logging.basicConfig(level=getattr(logging, log_level.upper()), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
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
