"""Which engines run, in which processes, for how long, and who warm-starts whom.

A plan is a list of pipelines, one per process; a pipeline is a list of stages run in turn,
each stage warm-started from the previous stage's answer. The first pipeline runs in the
calling process, the others in spawned processes, all against one wall-clock deadline.
"""

from __future__ import annotations

import copy
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, replace

from cloud.optimizer.engines.common import SUPPORT, Engine, Feature
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
    fallback: bool = False  # run only when the stages before it gave no answer


def engine(name: str) -> Engine:
    # Imported lazily: a process that never runs an engine never loads its library.
    if name == "ortools":
        from cloud.optimizer.engines.ortools_engine import OrToolsEngine

        return OrToolsEngine()
    from cloud.optimizer.engines.pyvrp_engine import PyvrpEngine

    return PyvrpEngine()


def supported(name: str) -> frozenset[Feature]:
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
    """One pipeline per worker.

    Where PyVRP can model the problem, every worker runs PyVRP (its own seed) for the whole
    budget, then OR-Tools either as a fallback (PyVRP found nothing feasible; it gives up
    early to leave time) or, with `polish_share > 0`, as an improver of PyVRP's answer.
    On Solomon, OR-Tools' own search is an order of magnitude weaker than PyVRP's, and a core
    given to it (or a share of the budget) was worth less than a second PyVRP seed.
    """
    able = capable_engines(feats, params)
    polish = params.ortools.polish_share
    pipelines: list[list[Stage]] = []
    for w in range(params.workers):
        p = replace(params, seed=params.seed + w)
        if able == ["pyvrp", "ortools"]:
            if polish > 0:
                pipelines.append(
                    [Stage("pyvrp", 1 - polish, p), Stage("ortools", 1.0, p, warm=True)]
                )
            else:
                pipelines.append([Stage("pyvrp", 1.0, p), Stage("ortools", 1.0, p, fallback=True)])
        elif able == ["ortools"]:
            # Diversify the construction heuristic across processes.
            order = list(dict.fromkeys((params.ortools.first_solution, *FIRST_SOLUTIONS)))
            first = order[w % len(order)]
            p = replace(p, ortools=replace(params.ortools, first_solution=first))
            pipelines.append([Stage("ortools", 1.0, p)])
        else:
            pipelines.append([Stage(able[0], 1.0, p)])
    return pipelines


def warm_up(feats: frozenset[Feature], params: SolveParams) -> None:
    """Import the libraries of the engines a solve will start with, before its clock starts.

    A one-shot command (`flota optimize solve`) otherwise spends ~0.4 s (PyVRP) to ~1 s
    (OR-Tools) of the search budget importing; forked workers inherit the imports.
    """
    for pipeline in plan(feats, params):
        for stage in pipeline:
            if not stage.fallback:
                engine(stage.engine)


def run_pipeline(
    data: ProblemData, stages: list[Stage], stop: StoppingCriterion, deadline: float
) -> list[Answer]:
    """Run stages in turn; a failing stage is logged and skipped, never fatal."""
    answers: list[Answer] = []
    for k, stage in enumerate(stages):
        now = time.time()
        last = k == len(stages) - 1
        stage_deadline = deadline if last else now + (deadline - now) * stage.share
        if stage_deadline - now <= 0.01 or (stage.fallback and answers):
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


def start_method() -> str:
    """`fork` when this process has no other threads: a forked worker starts in milliseconds
    with every library already imported, where a spawned one spent ~1 s of its budget importing
    (measured); a threaded process (the dispatch service's Kafka client) must not fork."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return "fork"
    return "forkserver" if "forkserver" in methods else "spawn"


HELPER_NICENESS = 10


def _lower_priority() -> None:
    """Helper workers take spare CPU only: on a busy machine the first pipeline (the same
    search PyVRP alone would run) keeps the CPU it would get alone; on an idle one a helper
    still gets a whole core."""
    try:
        os.nice(HELPER_NICENESS)
    except OSError:
        log.debug("cannot lower the priority of a portfolio worker")


def run(
    data: ProblemData, pipelines: list[list[Stage]], stop: StoppingCriterion, deadline: float
) -> list[Answer]:
    """Every answer of every pipeline; pipeline 0 runs here, the rest in child processes."""
    if len(pipelines) == 1:
        return run_pipeline(data, pipelines[0], stop, deadline)
    ctx = multiprocessing.get_context(start_method())
    answers: list[Answer] = []
    with ProcessPoolExecutor(
        max_workers=len(pipelines) - 1, mp_context=ctx, initializer=_lower_priority
    ) as pool:
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
