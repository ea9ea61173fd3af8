"""One restore, live: phase progress with times, workloads, volsync state, error, events; cancel."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Header, Static

from rich.markup import escape as esc

from ... import volsync
from ...model import Phase
from ...formatting import age, short_time
from ..widgets import PolledScreen, MessageBar

PHASES = [p.value for p in Phase]


def render(obj: dict, events: list[dict], destination: dict | None) -> str:
    meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    phase = status.get("phase") or "Pending"
    from ...durations import format_duration
    from ...model import timeline

    entered = {name: (at, lasted) for name, at, lasted in timeline(status, events)}
    current = PHASES.index(phase) if phase in PHASES else -1
    steps = []
    for i, name in enumerate(PHASES):
        mark = "✔" if i < current or phase == "Finished" else ("▶" if i == current else "·")
        at, lasted = entered.get(name, (None, None))
        took = format_duration(lasted) if lasted is not None else ""
        steps.append(f"  {mark} {name:<10} {short_time(at) if at else '':<16} {took}".rstrip())
    from ...model import Spec, requested_by

    lines = [f"[b]{esc(meta['namespace'])}/{esc(meta['name'])}[/b]  PVC [b]{esc(spec.get('pvc') or '')}[/b], "
             f"{Spec.from_dict(spec).describe_selector()} snapshot, created {age(meta.get('creationTimestamp'), unknown='')} ago",
             f"requested by {esc(requested_by(meta))}", "", "[b]Progress[/b]", *steps]
    if status.get("message"):
        lines.append(f"  {esc(status['message'])}")
    if status.get("error"):
        lines += ["", f"[b red]Error:[/b red] {esc(status['error'])}"]
    if status.get("lockHolder"):
        lines.append(f"  waiting for the lock held by {esc(status['lockHolder'])}")
    lines += ["", "[b]Workloads[/b]"]
    owners = status.get("pvcOwners")
    lines += [f"  {esc(o['kind'])} {esc(o['name'])}: {o['replicas']} replica(s)" for o in owners or []] or \
        ["  (not recorded yet)" if owners is None else "  (none mounted the PVC)"]
    lines += ["", "[b]volsync[/b]", f"  ReplicationSource: {esc(status.get('replicationSource') or '-')}",
              f"  ReplicationDestination: {esc(status.get('replicationDestination') or '-')}"]
    if status.get("restoredSnapshot"):
        lines.append(f"  restored snapshot: {esc(status['restoredSnapshot'])}")
    mover = ((destination or {}).get("status") or {}).get("latestMoverStatus") or {}
    if mover:
        lines.append(f"  mover: {mover.get('result')}")
        lines += [f"    {esc(line)}" for line in volsync.log_tail(mover.get("logs") or "", 5).splitlines()]
    lines += ["", "[b]Events[/b]"]
    lines += [f"  {short_time(e.get('lastTimestamp') or e['metadata']['creationTimestamp'])}  {e['type']:<7} "
              f"{e['reason']:<18} {esc(e['message'][:200])}" for e in events] or ["  (none)"]
    return "\n".join(lines)


class RestoreScreen(PolledScreen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back"), Binding("c", "cancel", "Cancel restore"),
                Binding("question_mark", "help", "Help")]

    def __init__(self, namespace: str, name: str) -> None:
        super().__init__()
        self.namespace, self.restore_name = namespace, name
        self.obj: dict | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            yield Static("loading...", id="detail")
        yield MessageBar()
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"restore {self.namespace}/{self.restore_name}"
        self.start_polling()


    async def load(self) -> None:
        async def fetch(source):
            obj = await source.restore(self.namespace, self.restore_name)
            if obj is None:
                return None, [], None
            events = await source.events(self.namespace, self.restore_name)
            rd_name = (obj.get("status") or {}).get("replicationDestination")
            destination = await source.destination(self.namespace, rd_name) if rd_name else None
            return obj, events, destination

        result = await self.app.call_api(fetch)
        if result is None:
            return
        obj, events, destination = result
        detail = self.query_one("#detail", Static)
        if obj is None:
            detail.update(f"PVCRestore {self.namespace}/{self.restore_name} no longer exists "
                          "(cancelled, or removed after it finished)")
            self.obj = None
            return
        self.obj = obj
        detail.update(render(obj, events, destination))

    def action_cancel(self) -> None:
        if self.obj is None or (self.obj.get("status") or {}).get("phase") == "Finished":
            self.app.status_message = "nothing to cancel: the restore is finished or gone"
            return
        from .common import Confirm

        def done(yes: bool | None) -> None:
            if yes:
                self.run_worker(self._cancel(), group="cancel")

        self.app.push_screen(Confirm(f"Cancel restore {self.restore_name}? The controller scales the workloads "
                                     "back and removes the ReplicationDestination."), done)

    async def _cancel(self) -> None:
        async def cancel(source) -> bool:
            await source.cancel(self.namespace, self.restore_name)
            return True

        if await self.app.call_api(cancel):
            self.app.status_message = f"cancelling {self.restore_name}: the controller is cleaning up"
        self.reload()

    def action_help(self) -> None:
        from .common import Help

        self.app.push_screen(Help())
