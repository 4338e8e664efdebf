"""ELM327 OBD-II adapters over serial: AT set-up, mode 01 PIDs, mode 03 DTCs, mode 09 VIN."""
