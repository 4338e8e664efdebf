"""Windows and labels from simulated trips, through the agent's own aligner and features."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge_agent.inference import imu_features, obd_features
from edge_agent.inference.imu_features import AlignedWindows
from edge_agent.inference.orientation import BLOCK, Aligner
from models.sim import TripData
from models.training.splits import Split

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
IGNORE = -1  # windows that only graze an event: neither positive nor negative
MIN_EVENT_SAMPLES = 30  # 0.3 s of a harsh manoeuvre inside a 2 s window


@dataclass
class WindowSet:
    """Feature rows with labels, trip ids and window order (for merging alarms into episodes)."""

    x: F32
    y: I64
    trip: I64
    index: I64
    distance_km: float
    aligned: AlignedWindows | None = None  # IMU only, for the rule baseline
    raw: F64 | None = None  # OBD only, for the rule baseline
    skipped_unaligned: int = 0


def _window_label(
    labels: npt.NDArray[np.int8], n_classes: int, min_count: int, sticky: int | None
) -> I64:
    counts = np.stack([(labels == c).sum(1) for c in range(n_classes)], axis=1)
    events = counts[:, 1:]
    y = np.where(events.sum(1) > 0, IGNORE, 0)
    best = events.argmax(1)
    y = np.where(events.max(1) >= min_count, best + 1, y)
    if sticky is not None:  # a collision is an instant: any overlap counts
        y = np.where(counts[:, sticky] > 0, sticky, y)
    out: I64 = y.astype(np.int64)
    return out


def imu_windows(group: Iterable[tuple[int, TripData]], keep_aligned: bool = False) -> WindowSet:
    """2 s windows every 1 s, aligned by a per-device aligner carried across its trips."""
    xs, ys, trips, idxs, alis = [], [], [], [], []
    distance = 0.0
    skipped = 0
    aligner = Aligner()
    last_dev = -1
    for t_id, (dev, d) in enumerate(group):
        if dev != last_dev:
            aligner, last_dev = Aligner(), dev
        distance += d.distance_m
        nb = len(d.acc) // BLOCK
        acc = d.acc[: nb * BLOCK].astype(np.float64).reshape(nb, BLOCK, 3)
        gyro = d.gyro[: nb * BLOCK].astype(np.float64).reshape(nb, BLOCK, 3)
        lab = d.imu_label[: nb * BLOCK].reshape(nb, BLOCK)
        speed = d.speed_kmh / 3.6
        frames, grav, gbias, ok = [], [], [], []
        for b in range(nb):
            f = aligner.frame()
            ok.append(f is not None)
            frames.append(f if f is not None else np.eye(3))
            grav.append(aligner.gravity.copy())
            gbias.append(aligner.gyro_bias.copy())
            dv = float(speed[b + 1] - speed[b]) if b + 1 < len(speed) else None
            aligner.update(acc[b], gyro[b], dv)
        # window b covers blocks b-1 and b, in the frame known before block b-1 arrived
        sel = np.array([b for b in range(1, nb) if ok[b - 1]], dtype=np.int64)
        skipped += nb - 1 - len(sel)
        if len(sel) == 0:
            continue
        wa = np.concatenate([acc[sel - 1], acc[sel]], axis=1)
        wg = np.concatenate([gyro[sel - 1], gyro[sel]], axis=1)
        aligned = imu_features.align(
            wa,
            wg,
            np.asarray(frames)[sel - 1],
            np.asarray(grav)[sel - 1],
            np.asarray(gbias)[sel - 1],
        )
        xs.append(imu_features.features(aligned))
        ys.append(
            _window_label(np.concatenate([lab[sel - 1], lab[sel]], axis=1), 5, MIN_EVENT_SAMPLES, 4)
        )
        trips.append(np.full(len(sel), t_id))
        idxs.append(sel)
        if keep_aligned:
            alis.append(aligned)
    if not xs:  # no window had a known frame yet: nothing to learn from this group
        n_f = len(imu_features.FEATURE_NAMES)
        empty = np.zeros(0, dtype=np.int64)
        al = AlignedWindows(np.zeros((0, 200, 3)), np.zeros((0, 200)), np.zeros((0, 200)))
        return WindowSet(
            np.zeros((0, n_f), dtype=np.float32),
            empty,
            empty,
            empty,
            distance / 1000.0,
            aligned=al if keep_aligned else None,
            skipped_unaligned=skipped,
        )
    aligned_all = None
    if keep_aligned:
        aligned_all = AlignedWindows(
            lin=np.concatenate([a.lin for a in alis]),
            yaw=np.concatenate([a.yaw for a in alis]),
            gyro_norm=np.concatenate([a.gyro_norm for a in alis]),
        )
    return WindowSet(
        np.concatenate(xs),
        np.concatenate(ys),
        np.concatenate(trips),
        np.concatenate(idxs),
        distance / 1000.0,
        aligned=aligned_all,
        skipped_unaligned=skipped,
    )


def obd_windows(group: Iterable[tuple[int, TripData]], keep_raw: bool = False) -> WindowSet:
    """60 s windows of OBD values every 15 s."""
    xs, ys, trips, idxs, raws = [], [], [], [], []
    distance = 0.0
    w, hop = obd_features.WINDOW, obd_features.HOP
    for t_id, (_, d) in enumerate(group):
        distance += d.distance_m
        m = d.obd_matrix
        starts = np.arange(0, len(m) - w + 1, hop)
        if len(starts) == 0:
            continue
        win = np.stack([m[s : s + w] for s in starts])
        lab = np.stack([d.obd_label[s : s + w] for s in starts])
        xs.append(obd_features.features(win))
        ys.append(_window_label(lab, 4, w // 2, None))
        trips.append(np.full(len(starts), t_id))
        idxs.append(np.arange(len(starts)))
        if keep_raw:
            raws.append(win)
    return WindowSet(
        np.concatenate(xs),
        np.concatenate(ys),
        np.concatenate(trips),
        np.concatenate(idxs),
        distance / 1000.0,
        raw=np.concatenate(raws) if keep_raw else None,
    )


def concat(parts: list[WindowSet]) -> WindowSet:
    """Join window sets of consecutive trip groups (trip ids renumbered to stay unique)."""
    offset, trips = 0, []
    for p in parts:
        trips.append(p.trip + offset)
        offset += int(p.trip.max()) + 1 if len(p.trip) else 1
    aligned = None
    if all(p.aligned is not None for p in parts):
        al = [p.aligned for p in parts if p.aligned is not None]
        aligned = AlignedWindows(
            lin=np.concatenate([a.lin for a in al]),
            yaw=np.concatenate([a.yaw for a in al]),
            gyro_norm=np.concatenate([a.gyro_norm for a in al]),
        )
    raws = [p.raw for p in parts if p.raw is not None]
    return WindowSet(
        x=np.concatenate([p.x for p in parts]),
        y=np.concatenate([p.y for p in parts]),
        trip=np.concatenate(trips),
        index=np.concatenate([p.index for p in parts]),
        distance_km=sum(p.distance_km for p in parts),
        aligned=aligned,
        raw=np.concatenate(raws) if len(raws) == len(parts) else None,
        skipped_unaligned=sum(p.skipped_unaligned for p in parts),
    )


def split_windows(split: Split, keep_inputs: bool) -> dict[str, WindowSet]:
    """Both models' windows from one simulation of the split, one device at a time."""
    imu: list[WindowSet] = []
    obd: list[WindowSet] = []
    group: list[tuple[int, TripData]] = []
    for dev, trip in [*split.trips(), (-1, None)]:
        if group and dev != group[0][0]:
            imu.append(imu_windows(group, keep_inputs))
            obd.append(obd_windows(group, keep_inputs))
            group = []
        if trip is not None:
            group.append((dev, trip.data()))
    return {"harsh_driving": concat(imu), "engine_anomaly": concat(obd)}
