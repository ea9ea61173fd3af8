"""``kubectl pvc-restore --help`` as click renders it, by help width (written by ``python -m devtools.help_text``;
tests/test_cli_imports.py checks it against click)."""

HELP = {
    78: (
        'Usage: kubectl pvc-restore [OPTIONS] COMMAND [ARGS]...\n'
        '\n'
        '  Restore a PersistentVolumeClaim from its volsync backup, safely.\n'
        '\n'
        '  Examples:\n'
        '    kubectl pvc-restore start my-data --previous 1 --wait\n'
        '    kubectl pvc-restore start my-data --as-of "2024-05-01 10:00" --dry-run\n'
        '    kubectl pvc-restore list -A\n'
        '    kubectl pvc-restore describe my-data-1714557600\n'
        '\n'
        'Options:\n'
        '  -n, --namespace TEXT           Namespace (default: the kubeconfig\n'
        "                                 context's).\n"
        '  --context TEXT                 Kubeconfig context to use.\n'
        '  --kubeconfig FILE              Kubeconfig file (default: $KUBECONFIG, then\n'
        '                                 ~/.kube/config).\n'
        '  --request-timeout FLOAT RANGE  Seconds to wait for each API call (default\n'
        '                                 15).  [x>=0.5]\n'
        '  -h, --help                     Show this message and exit.\n'
        '\n'
        'Commands:\n'
        '  start       Start a restore of a PVC from its volsync backup.\n'
        '  list        List PVCRestores.\n'
        '  describe    Show a PVCRestore in detail: phases, workloads, volsync state,\n'
        '              events.\n'
        '  watch       Follow a PVCRestore until it is Finished (exit code = success).\n'
        '  cancel      Cancel a PVCRestore: delete it; the controller scales workloads\n'
        '              back first.\n'
        '  undo        Undo a restore started with --safety-backup (restore the backup\n'
        '              taken just before it).\n'
        '  scale-back  Bring back the workloads a restore kept stopped after it ended\n'
        '              on partial data.\n'
        '  locks       List restore locks, or clear a stale one.\n'
        "  snapshots   A PVC's backup state and its restic snapshots, and what each\n"
        '              selector restores.\n'
        "  doctor      Check the installation (and a PVC's backup and restore state);\n"
        '              say how to fix problems.\n'
        '  completion  Install kubectl_complete-pvc_restore so kubectl completes this\n'
        '              plugin.\n'
        '  tui         A terminal UI: pick a snapshot, start a restore, watch it, clear\n'
        '              stale locks.\n'
        "  version     Print the plugin's and the cluster's versions.\n"
    ),
    108: (
        'Usage: kubectl pvc-restore [OPTIONS] COMMAND [ARGS]...\n'
        '\n'
        '  Restore a PersistentVolumeClaim from its volsync backup, safely.\n'
        '\n'
        '  Examples:\n'
        '    kubectl pvc-restore start my-data --previous 1 --wait\n'
        '    kubectl pvc-restore start my-data --as-of "2024-05-01 10:00" --dry-run\n'
        '    kubectl pvc-restore list -A\n'
        '    kubectl pvc-restore describe my-data-1714557600\n'
        '\n'
        'Options:\n'
        "  -n, --namespace TEXT           Namespace (default: the kubeconfig context's).\n"
        '  --context TEXT                 Kubeconfig context to use.\n'
        '  --kubeconfig FILE              Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).\n'
        '  --request-timeout FLOAT RANGE  Seconds to wait for each API call (default 15).  [x>=0.5]\n'
        '  -h, --help                     Show this message and exit.\n'
        '\n'
        'Commands:\n'
        '  start       Start a restore of a PVC from its volsync backup.\n'
        '  list        List PVCRestores.\n'
        '  describe    Show a PVCRestore in detail: phases, workloads, volsync state, events.\n'
        '  watch       Follow a PVCRestore until it is Finished (exit code = success).\n'
        '  cancel      Cancel a PVCRestore: delete it; the controller scales workloads back first.\n'
        '  undo        Undo a restore started with --safety-backup (restore the backup taken just before it).\n'
        '  scale-back  Bring back the workloads a restore kept stopped after it ended on partial data.\n'
        '  locks       List restore locks, or clear a stale one.\n'
        "  snapshots   A PVC's backup state and its restic snapshots, and what each selector restores.\n"
        "  doctor      Check the installation (and a PVC's backup and restore state); say how to fix problems.\n"
        '  completion  Install kubectl_complete-pvc_restore so kubectl completes this plugin.\n'
        '  tui         A terminal UI: pick a snapshot, start a restore, watch it, clear stale locks.\n'
        "  version     Print the plugin's and the cluster's versions.\n"
    ),
}
