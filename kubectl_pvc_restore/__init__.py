"""pvc-restore: restore a Kubernetes PersistentVolumeClaim from its volsync backup in one safe step.

This package holds the kubectl plugin and the domain code it shares with the controller (``controller/``).
Nothing here imports kr8s or textual at import time, so ``--help`` and shell completion stay fast.
"""

__version__ = "0.1.0"
