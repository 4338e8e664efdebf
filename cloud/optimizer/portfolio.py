"""Which engines run, in which processes, for how long, and who warm-starts whom.

A plan is a list of pipelines, one per process; a pipeline is a list of stages run in turn,
each stage warm-started from the previous stage's answer. The first pipeline runs in the
calling process, the others in spawned processes, all against one wall-clock deadline.
"""

from __future__ import annotations

import copy
import logging
import multiprocessing
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, replace

from cloud.optimizer.engines.common import Engine, Feature
from cloud.optimizer.errors import EngineError, NoEngineError
from cloud.optimizer.model import ProblemData
from cloud.optimizer.params import FIRST_SOLUTIONS, SolveParams
from cloud.optimizer.result import Answer
from cloud.optimizer.stop import StoppingCriterion

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage:
    engine: str
    share: float  # of the time left when the stage starts (the last stage takes the rest)
    params: SolveParams
    warm: bool = False  # start from the previous stage's answer


def engine(name: str) -> Engine:
    # Imported lazily: a process that never runs an engine never loads its library.
    if name == "ortools":
        from cloud.optimizer.engines.ortools_engine import OrToolsEngine

        return OrToolsEngine()
    from cloud.optimizer.engines.pyvrp_engine import PyvrpEngine

    return PyvrpEngine()


SUPPORT: dict[str, frozenset[Feature]] = {}


def supported(name: str) -> frozenset[Feature]:
    if name not in SUPPORT:
        SUPPORT[name] = engine(name).supported
    return SUPPORT[name]


def capable_engines(feats: frozenset[Feature], params: SolveParams) -> list[str]:
    """Engines that support every feature the problem uses, in preference order."""
    names = ["pyvrp", "ortools"] if params.engine == "auto" else [params.engine]
    able = [n for n in names if feats <= supported(n)]
    if not able:
        missing = {n: sorted(feats - supported(n)) for n in names}
        raise NoEngineError(f"no engine supports this problem; missing: {missing}")
    return able


def plan(feats: frozenset[Feature], params: SolveParams) -> list[list[Stage]]:
    able = capable_engines(feats, params)
    polish = params.ortools.polish_share
    pipelines: list[list[Stage]] = []
    for w in range(params.workers):
        p = replace(params, seed=params.seed + w)
        if able == ["pyvrp", "ortools"]:
            # Every process: PyVRP (its own seed), then OR-Tools improves that answer.
            pipelines.append([Stage("pyvrp", 1 - polish, p), Stage("ortools", 1.0, p, warm=True)])
        elif able == ["ortools"]:
            # Diversify the construction heuristic across processes.
            first = (params.ortools.first_solution, *FIRST_SOLUTIONS)[w % len(FIRST_SOLUTIONS)]
            p = replace(p, ortools=replace(params.ortools, first_solution=first))
            pipelines.append([Stage("ortools", 1.0, p)])
        else:
            pipelines.append([Stage(able[0], 1.0, p)])
    return pipelines


def run_pipeline(
    data: ProblemData, stages: list[Stage], stop: StoppingCriterion, deadline: float
) -> list[Answer]:
    """Run stages in turn; a failing stage is logged and skipped, never fatal."""
    answers: list[Answer] = []
    for k, stage in enumerate(stages):
        now = time.time()
        last = k == len(stages) - 1
        stage_deadline = deadline if last else now + (deadline - now) * stage.share
        if stage_deadline - now <= 0.01:
            continue
        initial = answers[-1] if stage.warm and answers else None
        try:
            answer = engine(stage.engine).solve(
                data, stage.params, copy.deepcopy(stop), stage_deadline, initial
            )
        except EngineError as err:
            log.warning("engine %s gave no answer (%s); continuing", stage.engine, err)
            continue
        except Exception:
            log.exception("engine %s failed; continuing with the others", stage.engine)
            continue
        if answer is not None:
            answers.append(answer)
    return answers


def run(
    data: ProblemData, pipelines: list[list[Stage]], stop: StoppingCriterion, deadline: float
) -> list[Answer]:
    """Every answer of every pipeline; pipeline 0 runs here, the rest in child processes."""
    if len(pipelines) == 1:
        return run_pipeline(data, pipelines[0], stop, deadline)
    ctx = multiprocessing.get_context("spawn")
    answers: list[Answer] = []
    with ProcessPoolExecutor(max_workers=len(pipelines) - 1, mp_context=ctx) as pool:
        futures: list[Future[list[Answer]]] = [
            pool.submit(run_pipeline, data, p, stop, deadline) for p in pipelines[1:]
        ]
        answers.extend(run_pipeline(data, pipelines[0], stop, deadline))
        for fut in futures:
            try:
                answers.extend(fut.result(timeout=max(1.0, deadline - time.time() + 5.0)))
            except Exception:
                log.exception("a portfolio worker failed; using the other answers")
    return answers
