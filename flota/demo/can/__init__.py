"""The demo vehicle's CAN database (data only; see SOURCE.md)."""
