"""Commands: validation, versions, acks; model updates verified by sha256, swapped atomically,
rolled back when the new model fails its self-test."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from edge_agent.commands import (
    CommandProcessor,
    ConfigHandler,
    ModelUpdateHandler,
    RoutePlanHandler,
)
from edge_agent.inference import ModelSlot, OnnxModelConfig
from edge_agent.inference.card import sha256_file
from edge_agent.reporting import ReportingConfig
from flota_wire import AckStatus, Command, CommandKind

REPO = Path(__file__).resolve().parents[3]
MODEL = REPO / "models" / "onnx" / "harsh_driving"
NOW = 1_795_780_800_000_000

Acks = list[tuple[str, int, AckStatus, str | None]]


def _processor(tmp_path: Path, handlers: dict[str, Any]) -> tuple[CommandProcessor, Acks]:
    acks: Acks = []
    proc = CommandProcessor(
        tmp_path / "commands.json",
        handlers,
        lambda c, s, r: acks.append((c.id, c.version, s, r)),
        clock_us=lambda: NOW,
    )
    return proc, acks


def _cmd(kind: CommandKind, payload: Any, version: int = 1, cid: str = "c1", **kw: Any) -> Command:
    return Command(1, cid, version, kind, payload, NOW - 1, **kw)


PLAN = {"plan_id": "p1", "stops": [{"id": "s1", "lat": 60.17, "lon": 24.94, "eta_us": NOW}]}


def test_route_plan_applied_and_persisted(tmp_path: Path) -> None:
    plans = RoutePlanHandler(tmp_path / "plan.json")
    proc, acks = _processor(tmp_path, {"route_plan": plans})
    assert proc.handle(_cmd(CommandKind.ROUTE_PLAN, PLAN)) is AckStatus.APPLIED
    assert [a[2] for a in acks] == [AckStatus.ACCEPTED, AckStatus.APPLIED]
    assert RoutePlanHandler(tmp_path / "plan.json").current == plans.current
    assert plans.current is not None
    assert plans.current["stops"][0]["id"] == "s1"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"plan_id": "p", "stops": "none"}, "stops"),
        ({"plan_id": "p", "stops": [{"id": "a", "lat": 91, "lon": 0}]}, "out of range"),
        ({"plan_id": "p", "stops": [{"id": "a", "lat": True, "lon": 0}]}, "finite number"),
        ({"stops": [{"id": "a", "lat": 1, "lon": 1}]}, "plan_id"),
    ],
)
def test_bad_route_plans_rejected(tmp_path: Path, payload: Any, reason: str) -> None:
    proc, acks = _processor(tmp_path, {"route_plan": RoutePlanHandler(tmp_path / "plan.json")})
    assert proc.handle(_cmd(CommandKind.ROUTE_PLAN, payload)) is AckStatus.REJECTED
    assert len(acks) == 1
    assert reason in (acks[0][3] or "")


def test_versions_expiry_and_unknown_kind(tmp_path: Path) -> None:
    proc, acks = _processor(tmp_path, {"route_plan": RoutePlanHandler(tmp_path / "plan.json")})
    assert proc.handle(_cmd(CommandKind.ROUTE_PLAN, PLAN, version=2)) is AckStatus.APPLIED
    assert proc.handle(_cmd(CommandKind.ROUTE_PLAN, PLAN, version=2)) is AckStatus.REJECTED
    assert proc.handle(_cmd(CommandKind.ROUTE_PLAN, PLAN, version=1)) is AckStatus.REJECTED
    assert "not newer" in (acks[-1][3] or "")
    expired = _cmd(CommandKind.ROUTE_PLAN, PLAN, version=3, expires_at_us=NOW - 10)
    assert proc.handle(expired) is AckStatus.REJECTED
    assert acks[-1][3] == "expired"
    assert proc.handle(_cmd(CommandKind.CONFIG, {}, cid="c2")) is AckStatus.REJECTED
    # the version held survives a restart
    proc2, _ = _processor(tmp_path, {"route_plan": RoutePlanHandler(tmp_path / "plan.json")})
    assert proc2.handle(_cmd(CommandKind.ROUTE_PLAN, PLAN, version=2)) is AckStatus.REJECTED


def _config_handler(state: dict[str, float]) -> ConfigHandler:
    def check(values: dict[str, float]) -> None:
        ReportingConfig(
            max_interval_s=values["report_max_interval_s"],
            min_interval_s=values["report_min_interval_s"],
        )

    return ConfigHandler(lambda: dict(state), check, state.update)


def test_config_validated_then_applied(tmp_path: Path) -> None:
    state = {"report_max_interval_s": 30.0, "report_min_interval_s": 1.0}
    proc, acks = _processor(tmp_path, {"config": _config_handler(state)})
    ok = _cmd(CommandKind.CONFIG, {"report_max_interval_s": 10})
    assert proc.handle(ok) is AckStatus.APPLIED
    assert state["report_max_interval_s"] == 10.0
    bad = _cmd(CommandKind.CONFIG, {"report_min_interval_s": 20}, version=2)
    assert proc.handle(bad) is AckStatus.REJECTED
    assert state["report_min_interval_s"] == 1.0
    unknown = _cmd(CommandKind.CONFIG, {"wifi_password": "x"}, version=3)
    assert proc.handle(unknown) is AckStatus.REJECTED
    assert "unknown settings" in (acks[-1][3] or "")


# ---------------------------------------------------------------------------- model update


@pytest.fixture(scope="module")
def active_slot() -> ModelSlot:
    return ModelSlot(OnnxModelConfig(name="harsh_driving", path=MODEL))


def _update(tmp_path: Path, card: dict[str, Any], onnx: Path, version: str) -> Command:
    return _cmd(
        CommandKind.MODEL_UPDATE,
        {
            "model": "harsh_driving",
            "version": version,
            "url": onnx.as_uri(),
            "sha256": card["sha256"],
            "card": card,
        },
        version=int(version.split(".", maxsplit=1)[0]) if version[0].isdigit() else 1,
        cid="model-harsh",
    )


def _card() -> dict[str, Any]:
    card: dict[str, Any] = json.loads((MODEL / "card.json").read_text())
    assert card["sha256"] == sha256_file(MODEL / "model.onnx")
    return card


def test_model_sha256_mismatch_rejected(tmp_path: Path, active_slot: ModelSlot) -> None:
    corrupt = tmp_path / "corrupt.onnx"
    data = bytearray((MODEL / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    slots = {"harsh_driving": active_slot}
    proc, acks = _processor(tmp_path, {"model_update": ModelUpdateHandler(tmp_path / "m", slots)})
    before = active_slot.active.version
    assert proc.handle(_update(tmp_path, _card(), corrupt, "2.0.0")) is AckStatus.REJECTED
    assert "sha256 mismatch" in (acks[-1][3] or "")
    assert [a[2] for a in acks] == [AckStatus.REJECTED]
    assert active_slot.active.version == before
    assert not any((tmp_path / "m" / "harsh_driving").iterdir())  # staging removed


def test_model_failing_self_test_rolled_back(tmp_path: Path) -> None:
    slot = ModelSlot(OnnxModelConfig(name="harsh_driving", path=MODEL))
    slots: dict[str, Any] = {"harsh_driving": slot}
    proc, acks = _processor(tmp_path, {"model_update": ModelUpdateHandler(tmp_path / "m", slots)})
    bad = _card()
    bad["version"] = "2.0.0"
    bad["selftest"] = copy.deepcopy(bad["selftest"])
    row = bad["selftest"]["probabilities"][0]
    bad["selftest"]["probabilities"][0] = row[::-1]  # what the model will not answer
    assert proc.handle(_update(tmp_path, bad, MODEL / "model.onnx", "2.0.0")) is AckStatus.FAILED
    assert [a[2] for a in acks] == [AckStatus.ACCEPTED, AckStatus.FAILED]
    assert "rolled back to 1.0.0" in (acks[-1][3] or "")
    assert slot.active.version == "1.0.0"
    base = tmp_path / "m" / "harsh_driving"
    assert not (base / "current").exists()
    assert list(base.iterdir()) == []


def test_model_update_applied_and_promoted(tmp_path: Path) -> None:
    slot = ModelSlot(OnnxModelConfig(name="harsh_driving", path=MODEL))
    slots: dict[str, Any] = {"harsh_driving": slot}
    src = tmp_path / "served"
    shutil.copytree(MODEL, src)
    proc, acks = _processor(tmp_path, {"model_update": ModelUpdateHandler(tmp_path / "m", slots)})
    card = _card()
    card["version"] = "3.1.0"
    assert proc.handle(_update(tmp_path, card, src / "model.onnx", "3.1.0")) is AckStatus.APPLIED
    assert slot.active.version == "3.1.0"
    assert acks[-1][3] == "replaced 1.0.0"
    current = tmp_path / "m" / "harsh_driving" / "current"
    assert current.is_symlink()
    assert json.loads((current / "card.json").read_text())["version"] == "3.1.0"
    assert sha256_file(current / "model.onnx") == card["sha256"]
