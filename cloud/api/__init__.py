"""FastAPI service for shippers, fleet ops and drivers."""
