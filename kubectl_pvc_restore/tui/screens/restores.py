"""All restores with phase and age; open one."""

from __future__ import annotations

from textual.binding import Binding

from ...formatting import age
from ...model import Spec
from ..widgets import TableScreen


class RestoresScreen(TableScreen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back"), Binding("enter", "open", "Open", show=True)]
    COLUMNS = ["NAMESPACE", "NAME", "PVC", "SELECTOR", "PHASE", "ERROR", "AGE"]
    TABLE_ID = "restores"
    SUBTITLE = "restores"

    async def load(self) -> None:
        items = await self.app.call_api(lambda source: source.restores())
        if items is None:
            return
        self.table.refill([
            (f"{i['metadata']['namespace']}/{i['metadata']['name']}", [
                i["metadata"]["namespace"], i["metadata"]["name"], (i.get("spec") or {}).get("pvc"),
                Spec.from_dict(i.get("spec") or {}).describe_selector(),
                (i.get("status") or {}).get("phase") or "Pending", ((i.get("status") or {}).get("error") or "")[:40],
                age(i["metadata"].get("creationTimestamp"), unknown="")]) for i in items])

    def action_open(self) -> None:
        key = self.current_key
        if key:
            namespace, name = key.split("/", 1)
            self.app.open_restore(namespace, name)
