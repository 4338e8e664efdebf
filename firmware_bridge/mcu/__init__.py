"""The framed binary link to the vehicle microcontroller (docs/firmware-protocol.md)."""
