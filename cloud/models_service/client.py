"""A small client other cloud code calls: `ModelServiceClient(url).eta(...)` / `.demand(...)`.

Standard library only (urllib), one request per call, JSON in and out. A refused request raises
`ClientError` with the HTTP status and the service's reason; no answer at all is status 0
(retriable).
"""

from __future__ import annotations

import itertools
import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cloud.models_service.errors import ClientError


@dataclass(frozen=True)
class StopEta:
    """One leg's answer: seconds, and times as ISO-8601 UTC strings."""

    depart_time: str
    travel_s: float
    arrive_time: str
    dwell_s: float
    leave_time: str
    reference_travel_s: float


@dataclass(frozen=True)
class EtaAnswer:
    version: str
    sha256: str
    stops: list[StopEta]
    total_s: float


@dataclass(frozen=True)
class DemandAnswer:
    version: str
    sha256: str
    orders: dict[str, float]  # per cell


def _iso(t: datetime | float) -> str:
    if isinstance(t, datetime):
        if t.tzinfo is None:
            raise ValueError("datetimes must carry a timezone")
        return t.isoformat()
    return datetime.fromtimestamp(t, tz=UTC).isoformat()


class ModelServiceClient:
    def __init__(self, base_url: str, timeout_s: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"content-type": "application/json"} if data is not None else {},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as err:
            try:
                detail = json.loads(err.read())
            except ValueError:
                detail = {}
            raise ClientError(
                f"{method} {path}: {err.code} {detail.get('error', '')}: "
                f"{detail.get('detail', '')}",
                status=err.code,
            ) from err
        except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
            raise ClientError(f"{method} {path}: no answer: {err}") from err

    def health(self) -> dict[str, Any]:
        try:
            out: dict[str, Any] = self._call("GET", "/healthz")
        except ClientError as err:
            if err.status == 503:
                return {"status": "degraded"}
            raise
        return out

    def eta(
        self,
        depart: datetime | float,
        stops: Sequence[tuple[float, float]],
        origin: tuple[float, float],
    ) -> EtaAnswer:
        """ETA at each of ``stops`` ((lat, lon) degrees) driven in order from ``origin``,
        leaving at ``depart`` (an aware datetime or Unix seconds)."""
        points = [origin, *stops]
        legs = [
            {"origin": {"lat": a[0], "lon": a[1]}, "dest": {"lat": b[0], "lon": b[1]}}
            for a, b in itertools.pairwise(points)
        ]
        out = self._call("POST", "/v1/eta", {"depart_time": _iso(depart), "legs": legs})
        return EtaAnswer(
            version=out["version"],
            sha256=out["sha256"],
            stops=[StopEta(**leg) for leg in out["legs"]],
            total_s=float(out["total_s"]),
        )

    def demand(self, hour_start: datetime, history: dict[str, Sequence[float]]) -> DemandAnswer:
        """Expected orders in the hour starting at ``hour_start`` (local, aware) per H3 cell,
        from each cell's hourly counts before it (oldest first, at least 4 weeks)."""
        cells = [
            {"cell": c, "hour_start": _iso(hour_start), "history": list(h)}
            for c, h in history.items()
        ]
        out = self._call("POST", "/v1/demand", {"cells": cells})
        return DemandAnswer(
            version=out["version"],
            sha256=out["sha256"],
            orders={p["cell"]: float(p["orders"]) for p in out["predictions"]},
        )
