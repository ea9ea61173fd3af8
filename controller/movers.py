"""Watching volsync's mover pods: a failed attempt fails the restore at once, with the end of its log."""

from __future__ import annotations

from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import volsync

from .run import Failed, Run

#: How much of a failed mover's log is read to tell whether its restore began (the log is read from its start).
MOVER_LOG_HEAD = 256 * 1024


async def check_mover(run: Run, *, destination: str | None = None, source: str | None = None,
                      what: str = "the volsync mover failed") -> None:
    """Fail at the first failed attempt of the restore's mover (or of its safety backup's), with the end of its log:
    volsync itself retries the Job 8 times over about 20 minutes before it reports anything. Untouched (workloads come
    back) when the mover's complete log shows that it never began to restore, e.g. a wrong repository password."""
    pods = await run.kube.list(k.PODS, run.ns,
                               label_selector=volsync.mover_pod_selector(destination=destination, source=source))
    failed = volsync.failed_mover(pods, destination=destination, source=source)
    if failed is None:
        return
    pod, how = failed
    pod_name = pod["metadata"]["name"]
    head: str | None = None
    try:
        head = await run.kube.pod_log(pod_name, run.ns, limit_bytes=MOVER_LOG_HEAD)
        tail = volsync.log_tail(head if len(head.encode()) < MOVER_LOG_HEAD
                                else await run.kube.pod_log(pod_name, run.ns, tail_lines=10))
    except k.KubeError as exc:
        tail = f"(its log could not be read: {exc})"
    untouched = source is not None or not volsync.restore_began(head)
    raise Failed(f"{what}: mover pod {pod_name} ended with {how}:\n{tail}", untouched=untouched)
