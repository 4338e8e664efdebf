"""`flota ingest geo`: per-vehicle processors over telemetry and vehicle events.

Trips and stops, an odometer that ignores GPS jumps, speeding, idling and geofences (H3 index
with an exact test near borders). Every result is a :class:`~cloud.ingest.geo.events.DomainEvent`
published on the domain-events topic and stored by the sink. See docs/geo.md.
"""
