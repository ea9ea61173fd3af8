"""Development tools (not shipped): the local control plane launcher and the volsync mover simulator, used by the
tests and the demo."""
