"""Commands from the cloud: validated, applied, acknowledged.

Every command gets acknowledgements on ``up/acks``: ``rejected`` (expired, not newer than the
version held, unknown kind, invalid payload, a model whose sha256 does not match), else
``accepted`` and then ``applied`` or ``failed``. The version held per command id is persisted
(atomic file replace) before the command is applied, so a redelivered command is not applied
twice and an older revision never overrides a newer one.

Payloads (owned here; new keys are a compatible change of the wire contract):

- ``route_plan``: checked by ``flota_wire.route_plan`` (the one definition the dispatcher
  writes to): ``{"plan_id": str, "stops": [{"id": str, "lat": deg, "lon": deg,
  "eta_us"?: int, "service_s"?: s}, ...]}``, 0..1000 stops; stored as the current plan.
- ``config``: any of ``report_max_interval_s``, ``report_stopped_interval_s``,
  ``report_min_distance_m``, ``report_heading_deg``, ``report_min_speed_mps``,
  ``report_min_interval_s``, ``batch_interval_s``, ``sensor_interval_s``,
  ``stop_arrive_radius_m``, ``stop_arrive_speed_mps``, ``stop_arrive_dwell_s`` (may be 0),
  ``stop_depart_radius_m`` (numbers > 0; checked together with the values held).
- ``model_update``: ``{"model": name, "version": str, "url": file/http(s) URL of model.onnx,
  "sha256": hex, "card": {card.json}}``; the download must hash to ``sha256`` and the card must
  name the same digest, else rejected; then the model is installed in a new folder, loaded,
  warmed up and self-tested aside (``ModelSlot.swap``); on failure the old model keeps serving
  and the folder is removed (``failed``), on success the ``current`` link moves atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from flota_wire import AckStatus, Command

log = logging.getLogger(__name__)

MAX_MODEL_BYTES = 64 * 1024 * 1024
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_VERSION = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class CommandRejectedError(Exception):
    """The command is refused before anything changed."""


class CommandFailedError(Exception):
    """The command was valid but applying it failed; the previous state is kept."""


class Handler(Protocol):
    def validate(self, payload: Mapping[str, Any]) -> Any:
        """Return what ``apply`` needs, or raise CommandRejectedError."""
        ...

    def apply(self, validated: Any) -> str | None:
        """Put it in effect (raise CommandFailedError); may return a note for the ack's reason."""
        ...


AckSink = Callable[[Command, AckStatus, str | None], None]


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync it, rename over ``path``, fsync the
    folder: readers see the old or the new file, never a torn one, even after a power cut."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class CommandProcessor:
    """Routes commands to handlers by kind; persists the version held per command id."""

    def __init__(
        self,
        state_path: Path,
        handlers: Mapping[str, Handler],
        ack: AckSink,
        clock_us: Callable[[], int] = lambda: time.time_ns() // 1000,
    ) -> None:
        self.state_path = state_path
        self.handlers = dict(handlers)
        self.ack = ack
        self.clock_us = clock_us
        self.counters: Counter[str] = Counter()
        self.versions: dict[str, int] = {}
        try:
            raw = json.loads(state_path.read_text())
            self.versions = {str(k): int(v) for k, v in raw.items()}
        except FileNotFoundError:
            pass
        except (OSError, ValueError, AttributeError) as err:
            log.error("command state %s unreadable (%s): starting without it", state_path, err)

    def handle(self, cmd: Command) -> AckStatus:
        status, reason = self._handle(cmd)
        self.counters[str(status)] += 1
        log.info("command %s v%d (%s): %s %s", cmd.id, cmd.version, cmd.kind, status,
                 reason or "")  # fmt: skip
        self.ack(cmd, status, reason)
        return status

    def _handle(self, cmd: Command) -> tuple[AckStatus, str | None]:
        now = self.clock_us()
        if cmd.expires_at_us is not None and now > cmd.expires_at_us:
            return AckStatus.REJECTED, "expired"
        held = self.versions.get(cmd.id)
        if held is not None and cmd.version <= held:
            return AckStatus.REJECTED, f"not newer than version {held} held"
        handler = self.handlers.get(str(cmd.kind))
        if handler is None:
            return AckStatus.REJECTED, f"no handler for {cmd.kind} on this vehicle"
        if not isinstance(cmd.payload, Mapping):
            return AckStatus.REJECTED, "payload must be an object"
        try:
            validated = handler.validate(cmd.payload)
        except CommandRejectedError as err:
            return AckStatus.REJECTED, str(err)[:256]
        except Exception as err:  # a validator bug: refuse the command, keep the agent
            log.exception("validating %s failed", cmd.id)
            return AckStatus.REJECTED, f"invalid: {type(err).__name__}: {err}"[:256]
        self.versions[cmd.id] = cmd.version
        write_atomic(self.state_path, json.dumps(self.versions, sort_keys=True).encode())
        self.ack(cmd, AckStatus.ACCEPTED, None)
        try:
            note = handler.apply(validated)
        except CommandFailedError as err:
            return AckStatus.FAILED, str(err)[:256]
        except Exception as err:  # a handler bug must not kill the agent; report it
            log.exception("applying %s failed", cmd.id)
            return AckStatus.FAILED, f"{type(err).__name__}: {err}"[:256]
        return AckStatus.APPLIED, note


# ---------------------------------------------------------------------------- handlers


def _number(raw: Any, what: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise CommandRejectedError(f"{what} must be a finite number")
    return float(raw)


@dataclass(frozen=True)
class Stop:
    id: str
    lat: float
    lon: float
    eta_us: int | None = None
    service_s: float | None = None


class RoutePlanHandler:
    """Keeps the current plan in ``path`` (and in ``current``) for the driver's display;
    ``on_plan`` (the stop tracker) hears of each plan applied."""

    def __init__(self, path: Path, on_plan: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.path = path
        self.on_plan = on_plan
        self.current: dict[str, Any] | None = None
        if path.exists():
            try:
                self.current = json.loads(path.read_text())
            except (OSError, ValueError) as err:
                log.error("route plan %s unreadable: %s", path, err)

    def validate(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The wire contract's check (``flota_wire.route_plan``); zero stops is a valid plan."""
        from flota_wire.errors import WireError
        from flota_wire.route_plan import check_route_plan

        try:
            plan = check_route_plan(payload)
        except WireError as err:
            raise CommandRejectedError(str(err)) from err
        stops = [{k: s[k] for k in ("id", "lat", "lon", "eta_us", "service_s")}
                 for s in plan["stops"]]  # fmt: skip
        return {**plan, "stops": stops}

    def apply(self, plan: dict[str, Any]) -> str | None:
        write_atomic(self.path, json.dumps(plan).encode())
        self.current = plan
        if self.on_plan is not None:
            self.on_plan(plan)
        return None


CONFIG_KEYS = (
    "report_max_interval_s",
    "report_stopped_interval_s",
    "report_min_distance_m",
    "report_heading_deg",
    "report_min_speed_mps",
    "report_min_interval_s",
    "batch_interval_s",
    "sensor_interval_s",
    # Thresholds of route-plan progress (edge_agent.stops): a site's size is known where the
    # plan is made, so the cloud may tune them per vehicle as it tunes reporting.
    "stop_arrive_radius_m",
    "stop_arrive_speed_mps",
    "stop_arrive_dwell_s",
    "stop_depart_radius_m",
)
ZERO_ALLOWED = frozenset({"report_min_speed_mps", "stop_arrive_dwell_s"})


class ConfigHandler:
    """Live configuration: ``check`` validates a full candidate, ``apply_fn`` puts it in effect."""

    def __init__(
        self,
        current: Callable[[], dict[str, float]],
        check: Callable[[dict[str, float]], None],
        apply_fn: Callable[[dict[str, float]], None],
    ) -> None:
        self.current = current
        self.check = check
        self.apply_fn = apply_fn

    def validate(self, payload: Mapping[str, Any]) -> dict[str, float]:
        unknown = set(payload) - set(CONFIG_KEYS)
        if unknown:
            raise CommandRejectedError(f"unknown settings: {sorted(unknown)}")
        if not payload:
            raise CommandRejectedError("no settings given")
        candidate = dict(self.current())
        for key, raw in payload.items():
            value = _number(raw, key)
            if value < 0 or (value == 0 and key not in ZERO_ALLOWED):
                raise CommandRejectedError(
                    f"{key} must be {'>= 0' if key in ZERO_ALLOWED else '> 0'}"
                )
            candidate[key] = value
        try:
            self.check(candidate)
        except ValueError as err:
            raise CommandRejectedError(str(err)) from err
        return candidate

    def apply(self, candidate: dict[str, float]) -> str | None:
        self.apply_fn(candidate)
        return None


@dataclass(frozen=True)
class ModelUpdate:
    model: str
    version: str
    staged: Path  # a folder holding the verified model.onnx and its card.json


class ModelUpdateHandler:
    """Installs models under ``models_dir/<name>/<version>-<sha8>/``; ``models_dir/<name>/
    current`` is a symlink the agent loads from at start."""

    def __init__(
        self,
        models_dir: Path,
        slots: dict[str, Any],
        known: tuple[str, ...] = ("harsh_driving", "engine_anomaly"),
        on_new_slot: Callable[[str, Any], None] | None = None,
        runtime: str = "onnxruntime",
    ) -> None:
        self.models_dir = models_dir
        self.runtime = runtime  # edge_agent.inference.config.RUNTIMES
        self.slots = slots  # name -> edge_agent.inference.ModelSlot
        self.known = known
        self.on_new_slot = on_new_slot

    def validate(self, payload: Mapping[str, Any]) -> ModelUpdate:
        from edge_agent.inference.card import ModelCard

        model, version = payload.get("model"), payload.get("version")
        url, digest, card = payload.get("url"), payload.get("sha256"), payload.get("card")
        if model not in self.known:
            raise CommandRejectedError(f"unknown model {model!r}")
        if not isinstance(version, str) or not _VERSION.match(version):
            raise CommandRejectedError("version must match [A-Za-z0-9._-]{1,64}")
        if not isinstance(digest, str) or not _HEX64.match(digest):
            raise CommandRejectedError("sha256 must be 64 lower-case hex digits")
        if not isinstance(url, str) or url.split(":", 1)[0] not in {"file", "http", "https"}:
            raise CommandRejectedError("url must be file:, http: or https:")
        if not isinstance(card, Mapping):
            raise CommandRejectedError("card must be an object")
        try:
            parsed = ModelCard.from_json(dict(card))
        except (ValueError, KeyError, TypeError) as err:
            raise CommandRejectedError(f"bad card: {err}") from err
        if parsed.sha256 != digest or parsed.name != model:
            raise CommandRejectedError("card names another model or another sha256")
        staged = self.models_dir / str(model) / f".staging-{version}-{os.getpid()}"
        shutil.rmtree(staged, ignore_errors=True)
        staged.mkdir(parents=True)
        try:
            got = _download(url, staged / parsed.onnx_file)
            if got != digest:
                raise CommandRejectedError(f"sha256 mismatch: got {got}")
            write_atomic(staged / "card.json", json.dumps(dict(card)).encode())
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
        return ModelUpdate(str(model), version, staged)

    def apply(self, update: ModelUpdate) -> str | None:
        from edge_agent.inference import ModelSlot, OnnxModelConfig
        from edge_agent.inference.errors import InferenceError
        from edge_agent.inference.slot import promote

        base = self.models_dir / update.model
        digest = json.loads((update.staged / "card.json").read_text())["sha256"]
        final = base / f"{update.version}-{digest[:8]}"
        if final.exists():
            shutil.rmtree(final)
        os.replace(update.staged, final)
        fsync_dir(base)
        config = OnnxModelConfig(name=update.model, path=final, runtime=self.runtime)
        slot = self.slots.get(update.model)
        if slot is None:
            try:
                slot = ModelSlot(config)
            except InferenceError as err:
                shutil.rmtree(final, ignore_errors=True)
                raise CommandFailedError(f"new model failed its load or self-test: {err}") from err
            self.slots[update.model] = slot
            if self.on_new_slot is not None:
                self.on_new_slot(update.model, slot)
            previous = None
        else:
            result = slot.swap(config)
            if not result.ok:
                shutil.rmtree(final, ignore_errors=True)
                raise CommandFailedError(
                    f"rolled back to {result.active_version}: new model failed: {result.error}"
                )
            previous = result.previous_version
        promote(final, base / "current")
        fsync_dir(base)
        return f"replaced {previous}" if previous else None


def _download(url: str, dest: Path) -> str:
    """Fetch ``url`` to ``dest`` (fsynced); return its sha256. Refuses over MAX_MODEL_BYTES."""
    import urllib.request  # here: http, email and friends cost ~2 MB resident on the vehicle

    h = hashlib.sha256()
    size = 0
    try:
        with urllib.request.urlopen(url, timeout=60) as src, dest.open("wb") as out:
            while chunk := src.read(1 << 16):
                size += len(chunk)
                if size > MAX_MODEL_BYTES:
                    raise CommandRejectedError(f"model larger than {MAX_MODEL_BYTES} bytes")
                h.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except OSError as err:
        raise CommandRejectedError(f"cannot fetch {url}: {err}") from err
    return h.hexdigest()
