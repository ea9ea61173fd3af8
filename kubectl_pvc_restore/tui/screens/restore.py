"""One restore, live: phase progress with times, workloads, volsync state, error, events; cancel."""

from __future__ import annotations

from rich.markup import escape as esc
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Header, Static

from ... import restore_view
from ...formatting import age, short_time
from ...model import Spec, requested_by
from ..widgets import MessageBar, PolledScreen


def render(obj: dict, events: list[dict], destination: dict | None) -> str:
    meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    steps = [f"  {mark} {name:<10} {short_time(at) if at else '':<16} {took}".rstrip()
             for mark, name, at, took in restore_view.progress(status, events)]
    lines = [f"[b]{esc(meta['namespace'])}/{esc(meta['name'])}[/b]  PVC [b]{esc(spec.get('pvc') or '')}[/b], "
             f"{Spec.from_dict(spec).describe_selector()} snapshot, created "
             f"{age(meta.get('creationTimestamp'), unknown='?')} ago",
             f"requested by {esc(requested_by(meta))}", "", "[b]Progress[/b]", *steps]
    if status.get("message"):
        lines.append(f"  {esc(status['message'])}")
    if status.get("error"):
        lines += ["", f"[b red]Error:[/b red] {esc(status['error'])}"]
    data = restore_view.data_state(status, spec)
    if data:
        lines.append(f"[b red]Data:[/b red] {esc(data)}")
    if status.get("lockHolder"):
        lines.append(f"  waiting for the lock held by {esc(status['lockHolder'])}")
    lines += ["", "[b]Workloads[/b]", *(f"  {esc(line)}" for line in restore_view.workloads(status))]
    lines += ["", "[b]volsync[/b]", f"  ReplicationSource: {esc(status.get('replicationSource') or '-')}",
              f"  ReplicationDestination: {esc(status.get('replicationDestination') or '-')}"]
    if status.get("restoredSnapshot"):
        lines.append(f"  restored snapshot: {esc(status['restoredSnapshot'])}")
    lines += [f"  {esc(line)}" for line in restore_view.mover(destination, 5)]
    lines += ["", "[b]Events[/b]"]
    lines += [f"  {short_time(e.get('lastTimestamp') or e['metadata']['creationTimestamp'])}  {e['type']:<7} "
              f"{e['reason']:<18} {esc(e['message'][:200])}" for e in events] or ["  (none)"]
    return "\n".join(lines)


class RestoreScreen(PolledScreen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back"), Binding("c", "cancel", "Cancel restore"),
                Binding("question_mark", "app.show_help", "Help")]

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
            events = await source.events(self.namespace, self.restore_name, obj["metadata"].get("uid"))
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
        self.app.ask(f"Cancel restore {self.restore_name}? The controller scales the workloads back and removes the "
                     "ReplicationDestination.", lambda: self.run_worker(self._cancel(), group="cancel"))

    async def _cancel(self) -> None:
        async def cancel(source) -> bool:
            await source.cancel(self.namespace, self.restore_name)
            return True

        if await self.app.call_api(cancel):
            self.app.status_message = f"cancelling {self.restore_name}: the controller is cleaning up"
        self.reload()
