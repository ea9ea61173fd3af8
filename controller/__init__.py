"""The pvc-restore controller: a polling reconcile loop over PVC annotations, PVCRestores and lock ConfigMaps."""
