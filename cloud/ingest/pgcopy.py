"""PostgreSQL binary COPY rows for ``fixes``, built column-wise with numpy (no per-row Python).

The store's fast path copies a batch straight into ``fixes``; the rows are grouped by vehicle
and by which optional columns are NULL, so every group has one fixed record layout (a NULL in
the binary format is a length of -1 with no bytes). Values are converted exactly as the staging
path converts them: degrees = e6 / 1e6 in float64, the float4 columns rounded from float64 once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from cloud.ingest.screen import NULL

PG_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
PG_TRAILER = b"\xff\xff"
PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01T00:00:00Z, PostgreSQL's timestamp origin

FIX_COLUMNS = (
    "tenant_id", "vehicle_id", "time", "seq", "lat", "lon", "alt_m", "speed_mps", "track_deg",
    "hdop", "sats", "fix_mode",
)  # fmt: skip
# (column, decoded column, divisor, big-endian type); NULL where the decoded value is NULL
_OPTIONAL = (
    ("alt_m", "alt_dm", 10.0, ">f4"),
    ("speed_mps", "speed_cmps", 100.0, ">f4"),
    ("track_deg", "track_cdeg", 100.0, ">f4"),
    ("hdop", "hdop_c", 100.0, ">f4"),
    ("sats", "sats", 0.0, ">i2"),
)

Arr = npt.NDArray[Any]


def fixes_copy(keys: list[tuple[str, str]], vix: Arr, cols: dict[str, Arr]) -> bytes:
    """The rows ``(keys[vix[i]], cols[..][i])`` in COPY ... (FORMAT BINARY) form, columns in
    the order of ``FIX_COLUMNS``, with header and trailer."""
    n = len(vix)
    if n == 0:
        return PG_HEADER + PG_TRAILER
    nulls = [cols[src] == NULL for _, src, _, _ in _OPTIONAL]
    mask = np.zeros(n, dtype=np.int64)
    for bit, isnull in enumerate(nulls):
        mask |= isnull.astype(np.int64) << bit
    group = vix.astype(np.int64) * (1 << len(_OPTIONAL)) + mask
    order = np.argsort(group, kind="stable")
    g_sorted = group[order]
    starts = np.flatnonzero(np.r_[True, g_sorted[1:] != g_sorted[:-1]])
    ends = np.r_[starts[1:], n]
    fixed = {
        "time": (cols["time_us"] - PG_EPOCH_US, ">i8"),
        "seq": (cols["seq"], ">i8"),
        "lat": (cols["lat_e6"] / 1e6, ">f8"),
        "lon": (cols["lon_e6"] / 1e6, ">f8"),
    }
    out = [PG_HEADER]
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        rows = order[a:b]
        g = int(g_sorted[a])
        v, m = divmod(g, 1 << len(_OPTIONAL))
        tenant, vehicle = (s.encode() for s in keys[v])
        fields: list[tuple[str, Any]] = [
            ("n", ">i2"),
            ("l_tenant", ">i4"),
            ("tenant", f"S{len(tenant)}"),
            ("l_vehicle", ">i4"),
            ("vehicle", f"S{len(vehicle)}"),
        ]
        for name, (_, t) in fixed.items():
            fields += [(f"l_{name}", ">i4"), (name, t)]
        for bit, (name, _, _, t) in enumerate(_OPTIONAL):
            fields.append((f"l_{name}", ">i4"))
            if not (m >> bit) & 1:
                fields.append((name, t))
        fields += [("l_fix_mode", ">i4"), ("fix_mode", ">i2")]
        rec = np.empty(len(rows), dtype=np.dtype(fields))
        rec["n"] = len(FIX_COLUMNS)
        rec["l_tenant"], rec["tenant"] = len(tenant), tenant
        rec["l_vehicle"], rec["vehicle"] = len(vehicle), vehicle
        for name, (values, t) in fixed.items():
            rec[f"l_{name}"] = np.dtype(t).itemsize
            rec[name] = values[rows]
        for bit, (name, src, scale, t) in enumerate(_OPTIONAL):
            if (m >> bit) & 1:
                rec[f"l_{name}"] = -1
            else:
                rec[f"l_{name}"] = np.dtype(t).itemsize
                raw = cols[src][rows]
                rec[name] = raw / scale if scale else raw
        rec["l_fix_mode"] = 2
        rec["fix_mode"] = cols["fix_mode"][rows]
        out.append(rec.tobytes())
    out.append(PG_TRAILER)
    return b"".join(out)
