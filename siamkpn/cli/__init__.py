"""Command lines of the project (console scripts `siamkpn-*`; `tools/*.py` are shims to these)."""
