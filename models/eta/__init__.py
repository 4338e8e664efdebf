"""The ETA model: travel time and dwell time per stop, learned from trips (simulated or stored)."""
