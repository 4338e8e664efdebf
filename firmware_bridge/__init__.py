"""The serial link to the vehicle: MCU framing, ELM327 OBD-II, CAN decoding with DBC files.

Never imports `cloud`.
"""
