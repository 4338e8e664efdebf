"""Demand per H3 cell and hour (a cloud model): synthetic order history, features, training."""
