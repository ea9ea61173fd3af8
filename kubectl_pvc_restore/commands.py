"""The plugin's commands: name -> (module in ``kubectl_pvc_restore.cli``, short help), and their aliases. Kept apart
from the CLI package (which imports click) so that completing a command's first word needs neither
(``kubectl_pvc_restore.entry``)."""

COMMANDS = {
    "start": ("start", "Start a restore of a PVC from its volsync backup."),
    "list": ("list_cmd", "List PVCRestores."),
    "describe": ("describe", "Show a PVCRestore in detail: phases, workloads, volsync state, events."),
    "watch": ("watch", "Follow a PVCRestore until it is Finished (exit code = success)."),
    "cancel": ("cancel", "Cancel a PVCRestore: delete it; the controller scales workloads back first."),
    "undo": ("undo", "Undo a restore started with --safety-backup (restore the backup taken just before it)."),
    "scale-back": ("scale_back", "Bring back the workloads a restore kept stopped after it ended on partial data."),
    "locks": ("locks", "List restore locks, or clear a stale one."),
    "snapshots": ("snapshots", "A PVC's backup state and its restic snapshots, and what each selector restores."),
    "doctor": ("doctor", "Check the installation (and a PVC's backup and restore state); say how to fix problems."),
    "completion": ("completion", "Install kubectl_complete-pvc_restore so kubectl completes this plugin."),
    "tui": ("tui", "A terminal UI: pick a snapshot, start a restore, watch it, clear stale locks."),
    "version": ("version", "Print the plugin's and the cluster's versions."),
}
ALIASES = {"ls": "list", "get": "list", "rm": "cancel", "delete": "cancel"}
