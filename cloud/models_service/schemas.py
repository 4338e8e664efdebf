"""The service's JSON: requests are validated here (a bad one is a 422 naming the field)."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class Point(BaseModel):
    model_config = _STRICT
    lat: float = Field(ge=-90, le=90, description="degrees WGS84")
    lon: float = Field(ge=-180, le=180, description="degrees WGS84")


class EtaLeg(BaseModel):
    model_config = _STRICT
    origin: Point
    dest: Point
    depart_time: AwareDatetime | None = Field(
        default=None, description="default: when the previous stop's dwell ends"
    )


class EtaRequest(BaseModel):
    model_config = _STRICT
    depart_time: AwareDatetime = Field(description="when the first leg leaves (with offset)")
    legs: list[EtaLeg] = Field(min_length=1)


class LegOut(BaseModel):
    depart_time: str
    travel_s: float
    arrive_time: str
    dwell_s: float
    leave_time: str
    reference_travel_s: float = Field(description="the optimizer's default estimate")


class EtaResponse(BaseModel):
    model: str
    version: str
    sha256: str
    legs: list[LegOut]
    total_s: float = Field(description="from the first departure to leaving the last stop")


class DemandCell(BaseModel):
    model_config = _STRICT
    cell: str = Field(min_length=15, max_length=16, description="H3 index (resolution 8)")
    hour_start: AwareDatetime = Field(description="the hour forecast, in local time with offset")
    history: list[float] = Field(
        max_length=24 * 7 * 8, description="hourly order counts before hour_start, oldest first"
    )


class DemandRequest(BaseModel):
    model_config = _STRICT
    cells: list[DemandCell] = Field(min_length=1)


class CellOut(BaseModel):
    cell: str
    hour_start: str
    orders: float = Field(description="expected orders in the hour")


class DemandResponse(BaseModel):
    model: str
    version: str
    sha256: str
    predictions: list[CellOut]
