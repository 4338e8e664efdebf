"""Solver parameters: validated dataclasses, loadable from a JSON or TOML file."""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from cloud.optimizer.errors import ParamsError

ENGINES = ("ortools", "pyvrp")
FIRST_SOLUTIONS = (
    "PARALLEL_CHEAPEST_INSERTION",
    "SAVINGS",
    "PATH_CHEAPEST_ARC",
    "LOCAL_CHEAPEST_INSERTION",
    "SEQUENTIAL_CHEAPEST_INSERTION",
    "CHRISTOFIDES",
    "SWEEP",
    "AUTOMATIC",
)
METAHEURISTICS = ("GUIDED_LOCAL_SEARCH", "SIMULATED_ANNEALING", "TABU_SEARCH", "AUTOMATIC")


@dataclass(frozen=True)
class OrToolsParams:
    """OR-Tools routing search settings (the designated engine)."""

    first_solution: str = "PARALLEL_CHEAPEST_INSERTION"
    metaheuristic: str = "GUIDED_LOCAL_SEARCH"
    gls_lambda: float = 0.1
    # Share of the budget OR-Tools gets to improve PyVRP's answer (0 = no polish). Measured on
    # the 56 Solomon instances, the polish cost PyVRP more than it won back: off by default.
    polish_share: float = 0.0

    def __post_init__(self) -> None:
        if self.first_solution not in FIRST_SOLUTIONS:
            raise ParamsError(f"first_solution must be one of {FIRST_SOLUTIONS}")
        if self.metaheuristic not in METAHEURISTICS:
            raise ParamsError(f"metaheuristic must be one of {METAHEURISTICS}")
        if not 0 < self.gls_lambda <= 10:
            raise ParamsError("gls_lambda must be in (0, 10]")
        if not 0 <= self.polish_share < 1:
            raise ParamsError("polish_share must be in [0, 1)")


@dataclass(frozen=True)
class PyvrpParams:
    """PyVRP settings (general-case defaults, not tuned per instance).

    num_neighbours: size of the granular neighbourhood. load_scaling: multiply amounts and
    capacities so that PyVRP's load penalties sit in the range its defaults were tuned for
    whatever the units (kg against metres x scale would make overloading nearly free).
    give_up_share: share of the budget after which PyVRP, still without a feasible plan,
    stops so that OR-Tools gets the rest.
    """

    num_neighbours: int = 50
    load_scaling: bool = True
    give_up_share: float = 0.5

    def __post_init__(self) -> None:
        if not 1 <= self.num_neighbours <= 1000:
            raise ParamsError("num_neighbours must be in 1..1000")
        if not 0 < self.give_up_share <= 1:
            raise ParamsError("give_up_share must be in (0, 1]")


@dataclass(frozen=True)
class SolveParams:
    """How to solve.

    engine: "auto" runs the portfolio over every engine that supports the problem's
    constraints; "ortools" or "pyvrp" forces one. workers: processes the portfolio may use
    (1 = everything in this process, the time budget split between engines).
    scale: engines work in integers; distances and times are multiplied by this and times are
    rounded conservatively, so an integer-feasible plan is feasible in real numbers.
    """

    engine: str = "auto"
    workers: int = 1
    seed: int = 0
    time_limit: float = 10.0
    scale: int = 1000
    distance_weight: float = 1.0
    duration_weight: float = 0.0
    mandatory_penalty: float | None = None
    safety_margin: float = 0.25
    ortools: OrToolsParams = field(default_factory=OrToolsParams)
    pyvrp: PyvrpParams = field(default_factory=PyvrpParams)

    def __post_init__(self) -> None:
        if self.engine not in ("auto", *ENGINES):
            raise ParamsError(f"engine must be 'auto' or one of {ENGINES}")
        if not 1 <= self.workers <= 64:
            raise ParamsError("workers must be in 1..64")
        if not (math.isfinite(self.time_limit) and self.time_limit > 0):
            raise ParamsError("time_limit must be > 0 s")
        if not 1 <= self.scale <= 1_000_000:
            raise ParamsError("scale must be in 1..1e6")
        if self.distance_weight < 0 or self.duration_weight < 0:
            raise ParamsError("cost weights must be >= 0")
        if self.distance_weight == 0 and self.duration_weight == 0:
            raise ParamsError("at least one cost weight must be > 0")
        if self.mandatory_penalty is not None and not self.mandatory_penalty > 0:
            raise ParamsError("mandatory_penalty must be > 0")
        if not 0 <= self.safety_margin < self.time_limit:
            raise ParamsError("safety_margin must be in [0, time_limit)")

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> SolveParams:
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ParamsError(f"unknown parameters: {sorted(unknown)}")
        values = dict(raw)
        subs: dict[str, type[OrToolsParams] | type[PyvrpParams]] = {
            "ortools": OrToolsParams,
            "pyvrp": PyvrpParams,
        }
        for name, kind in subs.items():
            if name not in values:
                continue
            sub = values[name]
            if not isinstance(sub, dict):
                raise ParamsError(f"[{name}] must be a table")
            try:
                values[name] = kind(**sub)
            except TypeError as err:
                raise ParamsError(f"bad [{name}] parameters: {err}") from err
        try:
            return cls(**values)
        except TypeError as err:
            raise ParamsError(f"bad parameters: {err}") from err

    @classmethod
    def from_file(cls, path: str | Path) -> SolveParams:
        """Load from `.toml` or `.json`."""
        path = Path(path)
        try:
            text = path.read_bytes()
            raw = tomllib.loads(text.decode()) if path.suffix == ".toml" else json.loads(text)
        except (OSError, ValueError) as err:
            raise ParamsError(f"cannot read parameters from {path}: {err}") from err
        if not isinstance(raw, dict):
            raise ParamsError(f"{path}: expected a table of parameters")
        return cls.from_dict(raw)
