"""Travel speeds learned from the fleet's own fixes (per H3 cell and hour of week)."""

from cloud.optimizer.speeds.cache import SpeedCache
from cloud.optimizer.speeds.learn import ErrorFigures, LearnParams, Report, learn
from cloud.optimizer.speeds.model import LearnedSpeeds, hour_of_week

__all__ = [
    "ErrorFigures",
    "LearnParams",
    "LearnedSpeeds",
    "Report",
    "SpeedCache",
    "hour_of_week",
    "learn",
]
