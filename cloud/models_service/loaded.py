"""One model loaded from its folder: the ONNX bytes checked against the card, then self-tested.

The bytes that were hashed are the bytes the session is built from, so a file replaced between
the check and the load cannot slip through.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cloud.models_service.errors import ModelLoadError

Stamp = tuple[int, int, int, int]  # card (mtime ns, size), model (mtime ns, size)


def stamp(folder: Path) -> Stamp | None:
    """What changes when either file is rewritten; None while a file is missing."""
    try:
        card = (folder / "card.json").stat()
        onnx_file = json.loads((folder / "card.json").read_text()).get("onnx_file", "model.onnx")
        model = (folder / str(onnx_file)).stat()
    except (OSError, ValueError):
        return None
    return (card.st_mtime_ns, card.st_size, model.st_mtime_ns, model.st_size)


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: str
    sha256: str
    card: dict[str, Any]
    session: Any  # onnxruntime.InferenceSession (thread-safe for run)
    input_name: str
    output_names: tuple[str, ...]
    stamp: Stamp | None

    def run(self, x: np.ndarray[Any, np.dtype[np.float32]]) -> list[np.ndarray[Any, Any]]:
        out: list[np.ndarray[Any, Any]] = self.session.run(
            list(self.output_names), {self.input_name: x}
        )
        return out


def load_model(folder: Path, expected_name: str, threads: int = 1) -> LoadedModel:
    """Load and verify ``folder``; raises `ModelLoadError` saying why it cannot be served."""
    import onnxruntime as ort

    before = stamp(folder)
    try:
        card = json.loads((folder / "card.json").read_text())
        data = (folder / str(card.get("onnx_file", "model.onnx"))).read_bytes()
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"{expected_name}: cannot read card or model: {err}") from err
    if card.get("name") != expected_name:
        raise ModelLoadError(f"{expected_name}: the card names {card.get('name')!r}")
    digest = hashlib.sha256(data).hexdigest()
    if digest != card.get("sha256"):
        raise ModelLoadError(
            f"{expected_name}: model sha256 {digest[:12]} does not match the card's "
            f"{str(card.get('sha256'))[:12]}"
        )
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    try:
        sess = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own Fail/InvalidGraph types
        raise ModelLoadError(f"{expected_name}: onnxruntime refused the model: {err}") from err
    input_name = sess.get_inputs()[0].name
    outputs = tuple(o.name for o in sess.get_outputs())
    model = LoadedModel(
        name=expected_name,
        version=str(card.get("version", "?")),
        sha256=digest,
        card=card,
        session=sess,
        input_name=input_name,
        output_names=outputs,
        stamp=before,
    )
    _selftest(model)
    return model


def _selftest(model: LoadedModel) -> None:
    st = model.card.get("selftest")
    if not st:
        raise ModelLoadError(f"{model.name}: the card has no self-test")
    try:
        x = np.asarray(st["inputs"], dtype=np.float32)
        want = np.asarray(st["outputs"], dtype=np.float64)
        got = [np.asarray(o, np.float64).ravel() for o in model.run(x)]
    except Exception as err:
        raise ModelLoadError(f"{model.name}: self-test could not run: {err}") from err
    rows = [want] if want.ndim == 1 else list(want)
    if len(rows) != len(got) or any(
        r.shape != g.shape or np.max(np.abs(r - g)) > float(st.get("tolerance", 1e-4))
        for r, g in zip(rows, got, strict=False)
    ):
        raise ModelLoadError(f"{model.name}: self-test outputs differ from the card's")
