"""Flota: the `flota` console command and the glue shared by every process.

This package only dispatches; the parts live in `edge_agent`, `firmware_bridge`, `cloud` and
`models`, and the wire contract both sides share lives in `flota_wire`.
"""

__version__ = "0.1.0"
