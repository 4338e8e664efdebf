"""GPS for the agent: NMEA from a serial port (or gpsd's JSON socket) -> one GpsFix per epoch.

serial bytes -> framer (NMEA line) -> sentence (pynmea2 adapter) -> observation -> assembler.
"""

from edge_agent.gps.fix import GpsFix

__all__ = ["GpsFix"]
