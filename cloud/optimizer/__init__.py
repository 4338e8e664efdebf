"""Vehicle routing: model builder -> immutable data -> `solve(...)` -> checked result."""

from cloud.optimizer.checker import Violation, check
from cloud.optimizer.errors import (
    EngineError,
    ModelError,
    NoEngineError,
    OptimizerError,
    ParamsError,
    ProblemFormatError,
)
from cloud.optimizer.matrix import ConstantSpeed, EuclideanMatrix, GreatCircleMatrix
from cloud.optimizer.model import Break, Job, JobKind, Model, ProblemData, Task, TimeWindow
from cloud.optimizer.params import OrToolsParams, SolveParams
from cloud.optimizer.result import Reason, Result
from cloud.optimizer.solve import solve
from cloud.optimizer.stop import (
    FirstFeasible,
    MaxIterations,
    MaxRuntime,
    MultipleCriteria,
    NoImprovement,
)

__all__ = [
    "Break",
    "ConstantSpeed",
    "EngineError",
    "EuclideanMatrix",
    "FirstFeasible",
    "GreatCircleMatrix",
    "Job",
    "JobKind",
    "MaxIterations",
    "MaxRuntime",
    "Model",
    "ModelError",
    "MultipleCriteria",
    "NoEngineError",
    "NoImprovement",
    "OptimizerError",
    "OrToolsParams",
    "ParamsError",
    "ProblemData",
    "ProblemFormatError",
    "Reason",
    "Result",
    "SolveParams",
    "Task",
    "TimeWindow",
    "Violation",
    "check",
    "solve",
]
