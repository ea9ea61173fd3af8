"""Leader election with a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it.

Acquire and renew are PUTs guarded by resourceVersion. Another holder's lease counts as expired only when its record
has not changed for ``lease_duration`` of *our* clock (no trust in remote clocks). The leader renews every
``retry_period``; if it cannot renew for ``renew_deadline`` (shorter than ``lease_duration``) it steps down before
any other replica may take over. On shutdown the leader releases the lease so a successor takes over at once.

Stepping down happens in the election loop, which does not run while the process is paused (SIGSTOP, a frozen VM, a
stalled host): a reconcile in flight would carry on with its next write on waking, before the loop notices that
another replica took over meanwhile. ``fence`` therefore checks every write itself, by our clock, before it is sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore.model import now

log = logging.getLogger("pvc-restore.leader")
LEASE_NAME = "pvc-restore-controller"


class NotLeader(k.KubeError):
    """A write this replica refused to send: it may no longer hold the Lease."""


def micro_time() -> str:
    return now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(self, kube: k.Kube, namespace: str, identity: str, *, name: str = LEASE_NAME,
                 lease_duration: float = 15.0, renew_deadline: float = 10.0, retry_period: float = 2.0,
                 on_change: Callable[[bool], None] | None = None) -> None:
        if not retry_period < renew_deadline < lease_duration:
            raise ValueError("leader election needs retry period < renew deadline < lease duration")
        self.kube, self.namespace, self.identity, self.name = kube, namespace, identity, name
        self.lease_duration, self.renew_deadline, self.retry_period = lease_duration, renew_deadline, retry_period
        self.on_change = on_change
        self.is_leader = False
        self.healthy = True
        #: Monotonic time at which the last successful acquire/renew *began*: the record it wrote cannot have been
        #: seen by another replica before then, so none may take over before ``last_renew + lease_duration``.
        self.last_renew = 0.0
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0

    def may_write(self) -> bool:
        """Leading, and renewed within ``renew_deadline`` by our clock (a margin of ``lease_duration -
        renew_deadline`` for the write to reach the API server before another replica may take over)."""
        return self.is_leader and time.monotonic() - self.last_renew < self.renew_deadline

    def fence(self, kube: k.Kube) -> None:
        """Make ``kube`` refuse (NotLeader, before sending) every write but to our Lease unless ``may_write()``:
        asked before each attempt, resends included, and again right before its headers and its body go onto the
        connection (``Kube.write_guard``), so a replica that was paused cannot act on waking. What no client can
        refuse is a body already handed to the kernel: a pause in that last step lets it reach the API server
        after the pause (the window is one turn of the event loop)."""
        leases = k.LEASES.url(self.namespace)
        own = (leases, f"{leases}/{self.name}")

        def guard(url: str, what: str) -> None:
            if url not in own and not self.may_write():
                raise NotLeader(f"{what or url}: not sent: this replica ({self.identity}) has not renewed lease "
                                f"{self.namespace}/{self.name} within {self.renew_deadline:g}s and may no longer "
                                f"lead")

        kube.write_guard = guard

    def _set_leader(self, value: bool) -> None:
        if value != self.is_leader:
            self.is_leader = value
            log.info("%s leadership of lease %s/%s", "acquired" if value else "lost", self.namespace, self.name,
                     extra={"identity": self.identity})
            if self.on_change:
                self.on_change(value)

    async def try_acquire_or_renew(self) -> bool:
        lease = await self.kube.get_or_none(k.LEASES, self.name, self.namespace)
        stamp = micro_time()
        if lease is None:
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace},
                    "spec": {"holderIdentity": self.identity, "leaseDurationSeconds": int(self.lease_duration),
                             "acquireTime": stamp, "renewTime": stamp, "leaseTransitions": 0}}
            try:
                await self.kube.create(k.LEASES, body, self.namespace)
                return True
            except k.AlreadyExists:
                return False
        spec = dict(lease.get("spec") or {})
        holder = spec.get("holderIdentity") or ""
        record = (holder, spec.get("renewTime"), spec.get("leaseDurationSeconds"))
        if record != self._observed:
            self._observed, self._observed_at = record, time.monotonic()
        if holder and holder != self.identity:
            duration = float(spec.get("leaseDurationSeconds") or self.lease_duration)
            if time.monotonic() - self._observed_at < duration:
                return False  # held by another replica and not expired by our clock
        if holder != self.identity:
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
            spec["acquireTime"] = stamp
        spec.update(holderIdentity=self.identity, renewTime=stamp, leaseDurationSeconds=int(self.lease_duration))
        try:
            await self.kube.replace(k.LEASES, {**lease, "spec": spec}, resend=False)
            return True
        except k.Conflict:
            return False

    async def run(self, stop: asyncio.Event, tick: Callable[[], None] | None = None) -> None:
        while not stop.is_set():
            began = time.monotonic()
            try:
                ok = await self.try_acquire_or_renew()
                self.healthy = True
            except k.KubeError as exc:
                log.warning("lease %s/%s: %s", self.namespace, self.name, exc)
                ok, self.healthy = False, False
            if ok:
                self.last_renew = began
                self._set_leader(True)
            elif self.is_leader and time.monotonic() - self.last_renew > self.renew_deadline:
                self._set_leader(False)
            if tick:
                tick()
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.retry_period)
            except asyncio.TimeoutError:
                pass

    async def release(self) -> None:
        """Give the lease up (holder cleared, 1s duration) so another replica can take over at once."""
        if not self.is_leader:
            return
        self._set_leader(False)
        try:
            lease = await self.kube.get_or_none(k.LEASES, self.name, self.namespace)
            if lease and (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                spec = {**lease["spec"], "holderIdentity": None, "leaseDurationSeconds": 1, "renewTime": micro_time()}
                await self.kube.replace(k.LEASES, {**lease, "spec": spec}, resend=False)
                log.info("released lease %s/%s", self.namespace, self.name)
        except k.KubeError as exc:
            log.warning("could not release lease %s/%s: %s", self.namespace, self.name, exc)
