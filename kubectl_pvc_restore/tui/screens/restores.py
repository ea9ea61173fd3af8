"""All restores with phase and age; open one."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Header

from ...model import Spec
from ...formatting import age
from ..widgets import PolledScreen, KeyedTable, MessageBar


class RestoresScreen(PolledScreen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back"), Binding("enter", "open", "Open", show=True)]

    def compose(self) -> ComposeResult:
        yield Header()
        yield KeyedTable(["NAMESPACE", "NAME", "PVC", "SELECTOR", "PHASE", "ERROR", "AGE"], id="restores")
        yield MessageBar()
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "restores"
        self.query_one(KeyedTable).focus()
        self.start_polling()


    async def load(self) -> None:
        items = await self.app.call_api(lambda source: source.restores())
        if items is None:
            return
        self.query_one(KeyedTable).refill([
            (f"{i['metadata']['namespace']}/{i['metadata']['name']}", [
                i["metadata"]["namespace"], i["metadata"]["name"], (i.get("spec") or {}).get("pvc"),
                Spec.from_dict(i.get("spec") or {}).describe_selector(),
                (i.get("status") or {}).get("phase") or "Pending", ((i.get("status") or {}).get("error") or "")[:40],
                age(i["metadata"].get("creationTimestamp"), unknown="")]) for i in items])

    def on_data_table_row_selected(self, event) -> None:
        self.action_open()

    def action_open(self) -> None:
        key = self.query_one(KeyedTable).current_key
        if key:
            from .restore import RestoreScreen

            namespace, name = key.split("/", 1)
            self.app.push_screen(RestoreScreen(namespace, name))
