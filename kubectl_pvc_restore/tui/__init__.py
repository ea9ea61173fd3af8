"""``kubectl pvc-restore tui``: a Textual app over the same Kube layer and domain code as the CLI."""
