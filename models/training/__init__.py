"""Training, evaluation and export of the edge models (never imported by the agent)."""
