"""The in-vehicle agent: GPS source, fix assembly, reporting policy, outbox, MQTT uplink.

Never imports `cloud`; talks to it only through `flota_wire`.
"""

__version__ = "0.1.0"
