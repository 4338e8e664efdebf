"""The HTTP layer: FastAPI (already the cloud API's framework) over the registry's models.

Routes: POST /v1/eta, POST /v1/demand, GET /v1/models, GET /healthz, GET /metrics. A bad request
is answered 4xx with a reason, counted per reason, and never takes the process down; a model that
cannot be loaded is a 503 for its route only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from cloud.models_service.errors import InputError, ModelUnavailableError
from cloud.models_service.loaded import LoadedModel
from cloud.models_service.metrics import ServiceMetrics
from cloud.models_service.predict import CellQuery, LegQuery, predict_demand, predict_eta
from cloud.models_service.registry import ModelRegistry
from cloud.models_service.schemas import (
    CellOut,
    DemandRequest,
    DemandResponse,
    EtaRequest,
    EtaResponse,
    LegOut,
)
from cloud.models_service.settings import ModelsServiceSettings

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 16 * 1024 * 1024
ROUTES = {"/v1/eta", "/v1/demand", "/v1/models", "/healthz", "/metrics"}


def _iso(t_s: float) -> str:
    return datetime.fromtimestamp(t_s, tz=UTC).isoformat().replace("+00:00", "Z")


def _route(request: Request) -> str:
    """The route label for metrics: known paths only, so no caller can grow the label set."""
    return request.url.path if request.url.path in ROUTES else "other"


def _reason(err: RequestValidationError) -> tuple[str, list[dict[str, Any]]]:
    errors = [
        {
            "loc": [str(p) for p in e.get("loc", ())],
            "msg": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in err.errors()
    ]
    first = errors[0] if errors else {"type": "invalid", "loc": [], "msg": ""}
    kind = "malformed_json" if first["type"] == "json_invalid" else "invalid_field"
    return kind, errors


class Tracker:
    """Keeps the model-info gauge and reload counters in step with the registry."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self.metrics = metrics
        self.current: dict[str, tuple[str, str]] = {}

    def __call__(self, name: str, result: str, model: LoadedModel | None) -> None:
        self.metrics.reloads.labels(name, result).inc()
        if model is None:
            return
        if name in self.current:
            self.metrics.info.remove(name, *self.current[name])
        self.current[name] = (model.version, model.sha256)
        self.metrics.info.labels(name, model.version, model.sha256).set(1)


def create_app(
    settings: ModelsServiceSettings, registry: ModelRegistry | None = None
) -> tuple[FastAPI, ModelRegistry, ServiceMetrics]:
    """The app, its registry (loaded; not yet watching: call ``registry.start``) and metrics."""
    metrics = ServiceMetrics()
    tracker = Tracker(metrics)
    if registry is None:
        registry = ModelRegistry(settings.root, threads=settings.threads, on_load=tracker)
    app = FastAPI(title="flota models", docs_url=None, redoc_url=None, openapi_url=None)

    def reject(route: str, status: int, reason: str, body: dict[str, Any]) -> JSONResponse:
        metrics.rejected.labels(route, reason).inc()
        log.info("models: %s refused (%s): %s", route, reason, body.get("detail", ""))
        return JSONResponse({"error": reason, **body}, status_code=status)

    @app.middleware("http")
    async def observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        route = _route(request)
        t0 = time.perf_counter()
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            response: Response = reject(
                route, 413, "too_large", {"detail": f"body over {MAX_BODY_BYTES} bytes"}
            )
        else:
            try:
                response = await call_next(request)
            except Exception:  # a bug must cost one request, not the service
                log.exception("models: %s failed", route)
                response = JSONResponse({"error": "internal"}, status_code=500)
        metrics.latency.labels(route).observe(time.perf_counter() - t0)
        metrics.requests.labels(route, str(response.status_code)).inc()
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        kind, errors = _reason(err)
        first = errors[0] if errors else {"loc": [], "msg": ""}
        where = "body" if kind == "malformed_json" else ".".join(first["loc"][1:]) or "body"
        detail = f"{where}: {first['msg']}"
        return reject(_route(request), 422, kind, {"detail": detail, "errors": errors[:20]})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        # FastAPI raises these itself: 400 for a body it cannot decode, 404, 405
        reason = {400: "malformed_body", 404: "not_found", 405: "method_not_allowed"}.get(
            err.status_code, f"http_{err.status_code}"
        )
        return reject(_route(request), err.status_code, reason, {"detail": str(err.detail)})

    @app.exception_handler(InputError)
    async def bad_input(request: Request, err: InputError) -> JSONResponse:
        return reject(_route(request), 422, err.reason, {"detail": err.detail})

    @app.exception_handler(ModelUnavailableError)
    async def unavailable(request: Request, err: ModelUnavailableError) -> JSONResponse:
        return JSONResponse({"error": "model_unavailable", "detail": str(err)}, status_code=503)

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        versions = registry.versions()
        ok = all(v is not None for v in versions.values())
        body: dict[str, Any] = {"status": "ok" if ok else "degraded", "models": versions}
        if not ok:
            body["errors"] = registry.errors()
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in registry.names:
            try:
                m = registry.get(name)
            except ModelUnavailableError as err:
                out[name] = {"available": False, "error": str(err)}
                continue
            out[name] = {
                "available": True,
                "version": m.version,
                "sha256": m.sha256,
                "inputs": m.card.get("inputs"),
                "outputs": m.card.get("outputs"),
                "headline": m.card.get("headline"),
            }
        return out

    @app.post("/v1/eta")
    def eta(req: EtaRequest) -> EtaResponse:
        if len(req.legs) > settings.max_legs:
            raise InputError("too_many_legs", f"{len(req.legs)} legs; at most {settings.max_legs}")
        model = registry.get("eta")
        queries = [
            LegQuery(
                leg.origin.lat,
                leg.origin.lon,
                leg.dest.lat,
                leg.dest.lon,
                leg.depart_time.timestamp() if leg.depart_time else None,
            )
            for leg in req.legs
        ]
        answers = predict_eta(model, req.depart_time.timestamp(), queries)
        metrics.predictions.labels("eta").inc(len(answers))
        return EtaResponse(
            model=model.name,
            version=model.version,
            sha256=model.sha256,
            legs=[
                LegOut(
                    depart_time=_iso(a.depart_s),
                    travel_s=round(a.travel_s, 3),
                    arrive_time=_iso(a.arrive_s),
                    dwell_s=round(a.dwell_s, 3),
                    leave_time=_iso(a.leave_s),
                    reference_travel_s=round(a.reference_travel_s, 3),
                )
                for a in answers
            ],
            total_s=round(answers[-1].leave_s - answers[0].depart_s, 3),
        )

    @app.post("/v1/demand")
    def demand(req: DemandRequest) -> DemandResponse:
        if len(req.cells) > settings.max_cells:
            raise InputError(
                "too_many_cells", f"{len(req.cells)} cells; at most {settings.max_cells}"
            )
        model = registry.get("demand")
        queries = [
            CellQuery(c.cell, c.hour_start.hour, c.hour_start.weekday(), c.history)
            for c in req.cells
        ]
        orders = predict_demand(model, queries)
        metrics.predictions.labels("demand").inc(len(orders))
        return DemandResponse(
            model=model.name,
            version=model.version,
            sha256=model.sha256,
            predictions=[
                CellOut(cell=c.cell, hour_start=c.hour_start.isoformat(), orders=round(o, 4))
                for c, o in zip(req.cells, orders, strict=True)
            ],
        )

    return app, registry, metrics
