"""The poll loop. Each poll makes a constant number of LIST calls, whatever the number of PVCs:

1. PVCs, metadata only (the annotation is all the trigger needs);
2. lock ConfigMaps, by label;
3. PVCRestores.

Across all namespaces that is three LISTs; limited to a list of namespaces (``Settings.namespaces``) it is three per
namespace, so the controller needs no cluster-wide permission. A namespace whose lists fail (say its Role is missing)
is skipped for that poll and logged; the other namespaces carry on.

Annotated PVCs become PVCRestores; stale locks are deleted; and every PVCRestore that is not Finished gets a
reconcile task. Tasks run concurrently (bounded by ``workers``) and a poll never waits for them, so one slow restore
never delays another; a restore whose previous task is still running is skipped until it ends.

Between polls the leader follows the PVCs' changes and new PVCRestores (watches bounded by the interval): a new
request ends the wait and starts the next poll at once. A restore that waits for something (pods to stop, the mover)
keeps its task and follows that change (wake.py); on it, it reconciles again at once, without a worker slot while it
waits. So the interval bounds how long a change nobody follows goes unnoticed, not how long each step takes.

A restore whose Finalize the API server refuses (401/403: a permission removed, credentials no longer valid) keeps
its workloads scaled down until that is fixed, so it is not only a retried warning: a Warning Event
``FinalizeBlocked`` on the PVCRestore names the refused permission (at most once per
``Settings.finalize_blocked_event_interval`` per restore), the gauge ``pvc_restore_finalize_blocked`` counts such
restores, and ``/readyz`` answers 503 while there is one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
from typing import Any

from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import locks
from kubectl_pvc_restore.model import FINALIZER, Phase, PVCRestore

from . import metrics, observed, phases, wake
from .health import Health
from .history import prune as prune_history
from .leader import LeaderElector
from .lock_cleanup import clean_locks
from .settings import Settings
from .triggers import Triggers, asked_by_someone, new_request, wants_restore
from .watched_list import WatchedList

Objects = list[dict[str, Any]]
log = logging.getLogger("pvc-restore.loop")
#: Namespaces listed at the same time in one poll when the controller is limited to a list of namespaces.
LIST_CONCURRENCY = 8
#: Annotated PVCs turned into PVCRestores at the same time in one poll.
TRIGGER_CONCURRENCY = 8
#: The API server's RBAC denial: ``User "..." cannot patch resource "deployments/scale" in API group "apps" in the
#: namespace "ns"``.
_DENIED = re.compile(r'cannot (?P<verb>[a-z]+) resource "(?P<resource>[^"]+)" in API group "(?P<group>[^"]*)"'
                     r'(?: in the namespace "(?P<namespace>[^"]+)")?')


@dataclasses.dataclass
class Blocked:
    """A restore whose last Finalize attempt the API server refused (401/403)."""

    key: str             # namespace/name
    problem: str         # what was refused, for /readyz and the log
    last_event: float    # monotonic time of its last FinalizeBlocked event


def blocked_message(run: phases.Run, exc: k.Forbidden) -> tuple[str, str]:
    """(the refused permission in a few words, the FinalizeBlocked event's message)."""
    r = run.r
    text = str(exc)
    what = text.split(": permission denied", 1)[0]
    denied = _DENIED.search(text)
    if exc.code == 401:
        problem = "the API server rejects the controller's credentials (HTTP 401: token expired or revoked?)"
    elif denied:
        group = denied["group"]
        where = f" in namespace {denied['namespace']}" if denied["namespace"] else " (cluster-wide)"
        problem = (f"the controller may not {denied['verb']} {denied['resource']}"
                   f"{f' (API group {group})' if group else ''}{where} (HTTP 403)")
    else:
        problem = f"permission denied (HTTP {exc.code or 403}): {text}"
    message = (f"Finalize cannot finish: {problem} (refused: {what}). The workloads of PVC {r.spec.pvc} stay "
               f"scaled down until this is fixed; the controller keeps retrying. "
               f"See: kubectl pvc-restore describe -n {r.namespace} {r.name}")
    return problem, message


class Controller:
    def __init__(self, kube: k.Kube, settings: Settings, *, health: Health | None = None,
                 elector: LeaderElector | None = None) -> None:
        self.kube = kube
        self.settings = settings
        self.health = health
        self.elector = elector
        self.triggers = Triggers(kube)
        self.tasks: dict[str, asyncio.Task] = {}
        self.workers = asyncio.Semaphore(settings.workers)
        #: uid -> (consecutive API failures, monotonic time before which it is not retried)
        self.backoff: dict[str, tuple[int, float]] = {}
        #: uid -> monotonic time its last reconcile ended (a list asked for before that may be stale for it)
        self.finished_at: dict[str, float] = {}
        #: uid -> when a permission was first refused to it, until a reconcile of it succeeds (Run.forbidden_since).
        self.forbidden_since: dict[str, float] = {}
        #: namespace -> the error that kept it out of the last poll (only when limited to several namespaces)
        self.skipped: dict[str, str] = {}
        #: uid -> restores in Finalize whose last reconcile the API server refused (401/403)
        self.blocked: dict[str, Blocked] = {}
        #: scope -> its PVCs, kept current between polls by following their changes (watched_list.py)
        self.pvc_lists: dict[str | None, WatchedList] = {}
        #: scope -> the resourceVersion of its last PVCRestore list (new ones are noticed between polls from there)
        self.restore_versions: dict[str | None, str] = {}
        #: uids of the restores whose reconcile task waits for a change (wake.py), between two steps.
        self.waking: set[str] = set()
        #: Polls begun (for the log and the tests).
        self.polls = 0
        #: Set between polls when a new request was noticed: the wait ends and the next poll starts at once.
        self.poll_now = asyncio.Event()
        #: Set by ``drain`` (SIGTERM): no reconcile starts, and none goes on to wait for a change, from then on.
        self.draining = False

    @property
    def active(self) -> bool:
        """Only the leader acts (always, without leader election), and only while its renew is fresh by its clock."""
        return self.elector is None or self.elector.may_write()

    def stop_acting(self) -> None:
        """Leadership lost: cancel every reconcile in flight so nothing acts after another replica may lead."""
        for task in self.tasks.values():
            task.cancel()
        self.blocked.clear()  # another replica acts now: its own signal counts
        for pvc_list in self.pvc_lists.values():
            pvc_list.invalidate()  # while another replica led, changes went unfollowed
        self._publish_blocked()
        metrics.publish_state(None)  # the new leader reports the state; a stale copy here would be counted twice

    @staticmethod
    def _needs_work(restore: PVCRestore) -> bool:
        return not restore.finished or FINALIZER in restore.finalizers

    async def poll(self) -> None:
        self.polls += 1
        started = time.monotonic()
        try:
            await self._poll()
        finally:
            metrics.POLL_DURATION.observe(time.monotonic() - started)

    async def _list_scope(self, ns: str | None) -> tuple[Objects, Objects, Objects]:
        """The three lists of one namespace (``None``: all namespaces). Locks are listed before PVCRestores so that a
        lock taken between the two is seen with its holder."""
        # Only a scope whose lists all succeeded is followed for new PVCRestores between polls: following from an old
        # version would bring back one seen already, and a failing scope would start polls back to back.
        self.restore_versions.pop(ns, None)
        pvcs = await self._pvc_list(ns).read_matching()  # only the annotated ones: all a poll acts on
        lock_objs = await self.kube.list(k.CONFIGMAPS, ns, label_selector=f"{locks.LOCK_LABEL}=true")
        restores, self.restore_versions[ns] = await self.kube.list_versioned(k.PVC_RESTORES, ns)
        return pvcs, lock_objs, restores

    def _pvc_list(self, ns: str | None) -> WatchedList:
        if ns not in self.pvc_lists:
            self.pvc_lists[ns] = WatchedList(self.kube, k.PVCS, ns, metadata_only=True,
                                             relist_after=self.settings.relist_interval, index=wants_restore)
        return self.pvc_lists[ns]

    async def _follow_changes(self, seconds: float) -> None:
        """Between polls, for at most ``seconds``: follow the PVCs' changes (the next poll reads them from memory),
        and poll at once for a new request (a restore annotation set, a PVCRestore created) rather than at the end of
        the interval."""
        def notice(pvc: dict[str, Any]) -> None:
            if new_request(pvc):
                self.poll_now.set()

        async def new_restores(ns: str | None, version: str) -> None:
            created = wake.Wake(k.PVC_RESTORES, ns, version, kinds=frozenset({"ADDED"}), accept=asked_by_someone)
            if await wake.woken(self.kube, created, seconds):
                self.poll_now.set()

        # Each ends by itself within ``seconds``; one that fails must not leave the others running into the next
        # wait (they would follow the same lists twice), and a failure only means the next poll lists again.
        results = await asyncio.gather(
            *(pvc_list.follow(seconds, notice) for pvc_list in self.pvc_lists.values()),
            *(new_restores(ns, version) for ns, version in self.restore_versions.items()), return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                log.error("following changes failed unexpectedly; the next poll lists again",
                          exc_info=(type(result), result, result.__traceback__))

    async def _list(self) -> tuple[Objects, Objects, Objects, bool]:
        """PVCs, locks and PVCRestores of every watched namespace, and whether every namespace answered."""
        scopes = self.settings.scopes
        if len(scopes) == 1:
            listed = await self._list_scope(scopes[0])
            return listed[0], listed[1], listed[2], True
        gate = asyncio.Semaphore(LIST_CONCURRENCY)
        namespaces = [ns for ns in scopes if ns]  # several scopes are always namespaces

        async def one(ns: str) -> tuple[Objects, Objects, Objects]:
            async with gate:
                return await self._list_scope(ns)

        results = await asyncio.gather(*(one(ns) for ns in namespaces), return_exceptions=True)
        pvcs: list[dict[str, Any]] = []
        lock_objs: list[dict[str, Any]] = []
        restores: list[dict[str, Any]] = []
        errors = []
        for ns, result in zip(namespaces, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, k.KubeError):
                    raise result
                errors.append(result)
                if self.skipped.get(ns) != str(result):  # once per namespace and error, not every poll
                    log.warning("namespace %s is skipped until it can be listed: %s", ns, result)
                self.skipped[ns] = str(result)
                continue
            if self.skipped.pop(ns, None) is not None:
                log.info("namespace %s can be listed again", ns)
            pvcs += result[0]
            lock_objs += result[1]
            restores += result[2]
        if errors and len(errors) == len(scopes):
            raise errors[0]
        return pvcs, lock_objs, restores, not errors

    async def _poll(self) -> None:
        listed_at = time.monotonic()
        pvcs, lock_objs, restores, complete = await self._list()

        await self._handle_triggers(pvcs, restores)

        by_key = {(r["metadata"]["namespace"], r["metadata"]["name"]): r for r in restores}
        await clean_locks(self.kube, lock_objs, by_key, stale_after=self.settings.lock_stale_after)

        models = [PVCRestore.from_dict(r) for r in restores]
        await prune_history(self.kube, models, max_age=self.settings.history_max_age,
                            max_count=self.settings.history_max_count)
        metrics.set_in_progress([m.phase.value for m in models if not m.finished])
        if complete:  # a namespace that did not answer would make the counts look lower: keep the last whole view
            metrics.publish_state(observed.compute(restores, lock_objs))
        self._forget_unblocked(models, complete, listed_at)
        moment = time.monotonic()
        for obj, model in zip(restores, models, strict=True):
            if not self._needs_work(model):
                continue
            task = self.tasks.get(model.uid)
            if task is not None and not task.done():
                continue
            if self.finished_at.get(model.uid, float("-inf")) >= listed_at:
                # Its last reconcile ended after this list was asked for: the listed copy may be older than what
                # that reconcile wrote (e.g. still Restore after Finalize deleted the destination). Acting on it
                # could undo that work; the next poll's list is at least as new as the last write.
                continue
            if self.backoff.get(model.uid, (0, 0.0))[1] > moment:
                continue
            siblings = [m for m in models if m.namespace == model.namespace and m.spec.pvc == model.spec.pvc]
            self.tasks[model.uid] = asyncio.create_task(self._reconcile(obj, siblings), name=model.key)
        if not complete:
            return  # a namespace did not answer: its finished tasks and back-off are forgotten on a later poll
        live = {m.uid for m in models}
        for uid in [u for u, t in self.tasks.items() if t.done() and u not in live]:
            del self.tasks[uid]
            self.backoff.pop(uid, None)
            self.finished_at.pop(uid, None)
            self.forbidden_since.pop(uid, None)
        metrics.LAST_POLL.set(time.time())

    async def _handle_triggers(self, pvcs: Objects, restores: Objects) -> None:
        """Turn the annotated PVCs into PVCRestores (added to ``restores``), several at once: each takes 3 writes, and
        50 asked for together should not wait for one another."""
        wanted = [pvc for pvc in pvcs if wants_restore(pvc)]
        if not wanted:
            return
        taken: dict[str, set[str]] = {}  # namespace -> PVCRestore names in use (a claim adds its own at once)
        for r in restores:
            taken.setdefault(r["metadata"]["namespace"], set()).add(r["metadata"]["name"])
        gate = asyncio.Semaphore(TRIGGER_CONCURRENCY)

        async def one(pvc: dict[str, Any]) -> dict[str, Any] | None:
            meta = pvc["metadata"]
            # The trigger writes to the PVC: the next poll reads it again rather than act on an older copy.
            for scope, pvc_list in self.pvc_lists.items():
                if scope in (None, meta["namespace"]):
                    pvc_list.reread(meta["namespace"], meta["name"])
            async with gate:
                try:
                    return await self.triggers.handle(pvc, taken.setdefault(meta["namespace"], set()))
                except k.KubeError as exc:
                    log.warning("PVC %s/%s: annotation not handled yet: %s", meta["namespace"], meta["name"], exc)
                    return None

        restores += [created for created in await asyncio.gather(*(one(pvc) for pvc in wanted)) if created]

    async def _reconcile(self, obj: dict[str, Any], siblings: list[PVCRestore]) -> None:
        """Reconcile one restore; while it waits for a change it named (``Run.wake``), follow that change until the
        next poll and, once it comes, reconcile again at once on a fresh read of the PVCRestore."""
        uid = obj["metadata"].get("uid")
        try:
            while True:
                run = await self._reconcile_once(obj, siblings)
                if run is None or run.wake is None or not self.active or self.draining:
                    return
                self.waking.add(uid)
                try:
                    if not await wake.woken(self.kube, run.wake, self.settings.poll_interval):
                        return  # nothing changed: the next poll looks again
                finally:
                    self.waking.discard(uid)
                try:
                    fresh = await self.kube.get_or_none(k.PVC_RESTORES, run.r.name, run.ns)
                except k.KubeError:
                    return
                if fresh is None or fresh["metadata"].get("uid") != run.r.uid:
                    return
                obj = fresh
        finally:
            self.finished_at[uid] = time.monotonic()

    async def _reconcile_once(self, obj: dict[str, Any], siblings: list[PVCRestore]) -> phases.Run | None:
        """One reconcile; the Run when it ended without an error (it may be waiting), else None."""
        async with self.workers:
            if self.draining:  # it waited for a worker until shutdown: the next controller takes it from here
                return None
            run = phases.Run(self.kube, self.settings, obj, siblings)
            run.forbidden_since = self.forbidden_since.get(run.r.uid)
            version = run.r.resource_version
            accepted = [0]
            counting = k.WRITES_ACCEPTED.set(accepted)
            try:
                await phases.reconcile(run)
                self.backoff.pop(run.r.uid, None)
                self.forbidden_since.pop(run.r.uid, None)
                self._unblock(run.r.uid)
                return run
            except k.Conflict:
                log.debug("changed while reconciling; retrying on the next poll", extra=run.fields())
            except k.Forbidden as exc:
                self.forbidden_since.setdefault(run.r.uid, time.monotonic())
                delay = self._back_off(run.r.uid)
                if run.r.phase == Phase.FINALIZE:
                    await self._finalize_blocked(run, exc, delay)
                else:
                    log.warning("%s (retrying in %.1fs)", exc, delay, extra=run.fields())
            except k.KubeError as exc:
                # It got somewhere before it failed (its status saved, a workload scaled back, a lock released):
                # back off afresh.
                if accepted[0] or run.r.resource_version != version:
                    self.backoff.pop(run.r.uid, None)
                delay = self._back_off(run.r.uid)
                log.warning("%s (retrying in %.1fs)", exc, delay, extra=run.fields())
            except Exception:  # a bug must not stop the other restores
                delay = self._back_off(run.r.uid)
                log.exception("unexpected error (retrying in %.1fs)", delay, extra=run.fields())
            finally:
                k.WRITES_ACCEPTED.reset(counting)
                await run.events_sent()
            return None

    # -- Finalize refused by the API server ---------------------------------------------------------------------

    async def _finalize_blocked(self, run: phases.Run, exc: k.Forbidden, delay: float) -> None:
        """Finalize of this restore was refused (401/403): its workloads stay scaled down until someone fixes the
        permission. Say so loudly: a Warning Event (at most once per interval), the gauge, /readyz."""
        problem, message = blocked_message(run, exc)
        uid = run.r.uid
        entry = self.blocked.get(uid)
        moment = time.monotonic()
        if entry is None:
            entry = self.blocked[uid] = Blocked(run.r.key, problem, float("-inf"))
        entry.problem = problem
        self._publish_blocked()
        if moment - entry.last_event >= self.settings.finalize_blocked_event_interval:
            entry.last_event = moment
            log.error("%s (%s; retrying in %.1fs)", message, exc, delay, extra=run.fields())
            await run.event("FinalizeBlocked", message, warning=True)  # best effort: events may be refused too
        else:
            log.warning("Finalize still blocked: %s (retrying in %.1fs)", exc, delay, extra=run.fields())

    def _unblock(self, uid: str) -> None:
        entry = self.blocked.pop(uid, None)
        if entry is not None:
            log.info("Finalize of %s is no longer refused", entry.key)
            self._publish_blocked()

    def _forget_unblocked(self, models: list[PVCRestore], complete: bool, listed_at: float) -> None:
        """Each poll: drop restores that left Finalize (or are gone), then publish the gauge and /readyz. A restore
        whose reconcile runs, or ended after the list was asked for, is judged by that reconcile, not the list."""
        phase = {m.uid: m.phase for m in models}
        for uid in list(self.blocked):
            task = self.tasks.get(uid)
            if (task is not None and not task.done()) or self.finished_at.get(uid, float("-inf")) >= listed_at:
                continue
            if (uid in phase and phase[uid] != Phase.FINALIZE) or (uid not in phase and complete):
                self._unblock(uid)
        self._publish_blocked()

    def _publish_blocked(self) -> None:
        metrics.FINALIZE_BLOCKED.set(len(self.blocked))
        if self.health is not None:
            self.health.finalize_blocked = tuple(sorted(f"{b.key}: {b.problem}" for b in self.blocked.values()))

    def _back_off(self, uid: str) -> float:
        count = self.backoff.get(uid, (0, 0.0))[0] + 1
        delay = min(self.settings.poll_interval * 2 ** (count - 1), 60.0)
        self.backoff[uid] = (count, time.monotonic() + delay)
        return delay

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        while not stop.is_set():
            if self.active:
                try:
                    await self.poll()
                except k.KubeError as exc:
                    log.warning("poll failed: %s", exc)
                except Exception:  # a bug or an answer nobody foresaw: the next poll starts afresh
                    log.exception("poll failed unexpectedly")
            if self.health:
                self.health.last_loop = time.monotonic()
            await self._wait(stop)
        await self.drain()

    async def _wait(self, stop: asyncio.Event) -> None:
        """The wait between polls (ends early on stop), during which the leader follows the PVCs' changes."""
        interval = self.settings.poll_interval
        follow = asyncio.ensure_future(self._follow_changes(interval)) if self.active else None
        early = (asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.poll_now.wait()))
        try:
            await asyncio.wait(early, timeout=interval, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in early:
                waiter.cancel()
            self.poll_now.clear()
            if follow is not None:
                follow.cancel()
                await asyncio.gather(follow, return_exceptions=True)

    async def drain(self) -> None:
        """Let in-flight reconciles finish their current step (each is bounded by HTTP timeouts); those only waiting
        for a change (between two steps) end now, and none starts or begins to wait after this."""
        self.draining = True
        for uid in self.waking:
            self.tasks[uid].cancel()
        pending = [t for t in self.tasks.values() if not t.done()]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
