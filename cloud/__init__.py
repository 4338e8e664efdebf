"""The cloud side: ingest, API, optimizer. Never imports `edge_agent` or `firmware_bridge`."""
