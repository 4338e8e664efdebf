"""A numpy evaluator for ONNX models that are one ``ai.onnx.ml`` TreeEnsembleClassifier.

Why: onnxruntime's import and sessions cost 38-40 MB of resident memory (docs/benchmarks.md,
edge), half the agent's 80 MB budget, to run two small tree ensembles. This reads the same
``model.onnx`` (a few-dozen-line protobuf reader: the ``onnx`` package would cost 11 MB) and
evaluates its trees with numpy, float32 comparisons as onnxruntime makes them. It is used only
when chosen (``runtime="numpy"``, or ``"auto"`` for a graph it supports); the model's card
self-test (probabilities computed by onnxruntime at export) must pass within its tolerance, as
for onnxruntime, so a model it would evaluate differently never becomes active.

Supported: a graph whose only node is TreeEnsembleClassifier (opset ai.onnx.ml 1-3), modes
BRANCH_LEQ/LT/GTE/GT/EQ/NEQ and LEAF, post_transform NONE, SOFTMAX or LOGISTIC, two or more
classes. Anything else raises ``UnsupportedModelError`` (``auto`` then uses onnxruntime).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]


class UnsupportedModelError(ValueError):
    """The graph is not one this evaluator runs."""


# -- a minimal protobuf reader (wire format only; ONNX field numbers below) ----------------
def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    out = shift = 0
    while True:
        if pos >= len(buf):
            raise UnsupportedModelError("truncated varint")
        b = buf[pos]
        pos += 1
        out |= (b & 0x7F) << shift
        if not b & 0x80:
            return out, pos
        shift += 7
        if shift > 63:
            raise UnsupportedModelError("varint too long")


def _fields(buf: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value): ints for varint/fixed, bytes for length-delimited."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        num, wt = key >> 3, key & 7
        val: Any
        if wt == 0:
            val, pos = _varint(buf, pos)
        elif wt == 1:
            val, pos = buf[pos : pos + 8], pos + 8
        elif wt == 2:
            n, pos = _varint(buf, pos)
            val, pos = buf[pos : pos + n], pos + n
        elif wt == 5:
            val, pos = buf[pos : pos + 4], pos + 4
        else:
            raise UnsupportedModelError(f"wire type {wt}")
        if pos > len(buf):
            raise UnsupportedModelError("truncated field")
        yield num, wt, val


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _attribute(buf: bytes) -> tuple[str, Any]:
    """AttributeProto: 1 name, 2 f, 3 i, 4 s, 7 floats, 8 ints, 9 strings."""
    name = ""
    floats: list[float] = []
    ints: list[int] = []
    strings: list[bytes] = []
    scalar: Any = None
    for num, wt, val in _fields(buf):
        if num == 1:
            name = bytes(val).decode()
        elif num == 2:
            scalar = struct.unpack("<f", val)[0]
        elif num == 3:
            scalar = _signed(val)
        elif num == 4:
            scalar = bytes(val)
        elif num == 7:
            if wt == 2:  # packed
                floats.extend(np.frombuffer(val, dtype="<f4").tolist())
            else:
                floats.append(struct.unpack("<f", val)[0])
        elif num == 8:
            if wt == 2:
                p = 0
                while p < len(val):
                    v, p = _varint(val, p)
                    ints.append(_signed(v))
            else:
                ints.append(_signed(val))
        elif num == 9:
            strings.append(bytes(val))
    value = floats or ints or strings or scalar
    return name, value


@dataclass(frozen=True)
class _Node:
    op_type: str
    domain: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: dict[str, Any]


def read_nodes(model: bytes) -> list[_Node]:
    """The nodes of ModelProto.graph (field 7; GraphProto.node is field 1)."""
    graphs = [val for num, wt, val in _fields(model) if num == 7 and wt == 2]
    if len(graphs) != 1:
        raise UnsupportedModelError("no single graph")
    nodes = []
    for num, wt, val in _fields(graphs[0]):
        if num != 1 or wt != 2:
            continue
        ins: list[str] = []
        outs: list[str] = []
        op = domain = ""
        attrs: dict[str, Any] = {}
        for n2, _wt2, v2 in _fields(val):
            if n2 == 1:
                ins.append(bytes(v2).decode())
            elif n2 == 2:
                outs.append(bytes(v2).decode())
            elif n2 == 4:
                op = bytes(v2).decode()
            elif n2 == 7:
                domain = bytes(v2).decode()
            elif n2 == 5:
                k, v = _attribute(v2)
                attrs[k] = v
        nodes.append(_Node(op, domain, tuple(ins), tuple(outs), attrs))
    return nodes


# -- the evaluator ------------------------------------------------------------------------
_MODES = {b"BRANCH_LEQ": 0, b"BRANCH_LT": 1, b"BRANCH_GTE": 2, b"BRANCH_GT": 3,
          b"BRANCH_EQ": 4, b"BRANCH_NEQ": 5, b"LEAF": -1}  # fmt: skip


class TreeEnsemble:
    """All trees evaluated together: one step per tree level, vectorised over trees and rows."""

    def __init__(self, path: Path, input_name: str, probabilities_output: str) -> None:
        nodes = read_nodes(path.read_bytes())
        if len(nodes) != 1 or nodes[0].op_type != "TreeEnsembleClassifier":
            raise UnsupportedModelError(
                f"graph {[n.op_type for n in nodes]} is not one tree ensemble"
            )
        node = nodes[0]
        if node.domain != "ai.onnx.ml" or node.inputs != (input_name,):
            raise UnsupportedModelError("unexpected domain or input")
        if probabilities_output not in node.outputs[1:2]:
            raise UnsupportedModelError(f"no output {probabilities_output!r}")
        a = node.attrs
        for key in ("nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_values",
                    "nodes_modes", "nodes_truenodeids", "nodes_falsenodeids", "class_treeids",
                    "class_nodeids", "class_ids", "class_weights"):  # fmt: skip
            if key not in a:
                raise UnsupportedModelError(
                    f"attribute {key} missing (tensor forms are not supported)"
                )
        labels = a.get("classlabels_int64s") or a.get("classlabels_strings") or []
        self.n_classes = len(labels)
        if self.n_classes < 2:
            raise UnsupportedModelError("fewer than two classes")
        self.post = bytes(a.get("post_transform", b"NONE"))
        if self.post not in (b"NONE", b"SOFTMAX", b"LOGISTIC"):
            raise UnsupportedModelError(f"post_transform {self.post!r}")
        tree = np.asarray(a["nodes_treeids"], dtype=np.int64)
        nid = np.asarray(a["nodes_nodeids"], dtype=np.int64)
        try:
            modes = np.asarray([_MODES[m] for m in a["nodes_modes"]], dtype=np.int8)
        except KeyError as err:
            raise UnsupportedModelError(f"node mode {err}") from err
        # global index of (tree, node id)
        index = {(int(t), int(n)): i for i, (t, n) in enumerate(zip(tree, nid, strict=True))}
        try:
            self.true = np.asarray([index[(int(t), int(n))] if m >= 0 else i for i, (t, n, m)
                                    in enumerate(zip(tree, a["nodes_truenodeids"], modes,
                                                     strict=True))], dtype=np.int64)  # fmt: skip
            self.false = np.asarray([index[(int(t), int(n))] if m >= 0 else i for i, (t, n, m)
                                     in enumerate(zip(tree, a["nodes_falsenodeids"], modes,
                                                      strict=True))], dtype=np.int64)  # fmt: skip
        except KeyError as err:
            raise UnsupportedModelError(f"a branch points at a missing node {err}") from err
        self.feature = np.where(modes < 0, 0, np.asarray(a["nodes_featureids"], dtype=np.int64))
        self.value = np.where(
            modes < 0, np.float32(np.inf), np.asarray(a["nodes_values"], dtype=np.float32)
        ).astype(np.float32)
        self.mode = modes
        self.uniform = bool(np.all((modes == 0) | (modes == -1)))  # only BRANCH_LEQ
        leaf = modes < 0
        # leaves point at themselves and always go "true": no leaf test in the walk
        self.true[leaf] = self.false[leaf] = np.flatnonzero(leaf)
        trees = sorted(set(tree.tolist()))
        self.roots = np.asarray([index[(t, 0)] for t in trees], dtype=np.int64)
        # leaf weights as a (nodes, classes) matrix
        self.weights = np.zeros((len(tree), self.n_classes), dtype=np.float32)
        cls = np.asarray(a["class_ids"], dtype=np.int64)
        if cls.size and (cls.min() < 0 or cls.max() >= self.n_classes):
            raise UnsupportedModelError("class id out of range")
        for t, n, c, w in zip(a["class_treeids"], a["class_nodeids"], cls, a["class_weights"],
                              strict=True):  # fmt: skip
            self.weights[index[(int(t), int(n))], c] += np.float32(w)
        base = a.get("base_values") or [0.0] * self.n_classes
        self.base = np.asarray(base, dtype=np.float32)
        self.depth = self._max_depth()
        self.n_features = int(self.feature[self.mode >= 0].max()) + 1 if self.uniform else None

    def _max_depth(self) -> int:
        """Levels of the deepest tree (a walk this long brings every row to a leaf)."""
        level = {int(r) for r in self.roots}
        depth = 0
        while True:
            nxt = {
                int(j) for i in level if self.mode[i] >= 0 for j in (self.true[i], self.false[i])
            }
            if not nxt:
                return depth
            level = nxt
            depth += 1
            if depth > 4096:
                raise UnsupportedModelError("a tree loops")

    def run(self, x: F32) -> F32:
        """Class probabilities (n, classes) for float32 features (n, f) (finite: the caller
        checks; a NaN would take the "false" branch where onnxruntime may track it "true").

        Every node's test is evaluated at once (one gather, one compare over all nodes), which
        gives each node its next node; the walk is then one gather per tree level."""
        n = x.shape[0]
        feat = x[:, self.feature]
        go = feat <= self.value if self.uniform else _compare(self.mode, feat, self.value)
        nxt = np.where(go, self.true, self.false)  # (n, nodes)
        rows = np.arange(n)[:, None]
        idx = np.broadcast_to(self.roots, (n, self.roots.size))
        for _ in range(self.depth):
            idx = nxt[rows, idx]
        scores = self.weights[idx].sum(axis=1, dtype=np.float32) + self.base
        if self.post == b"SOFTMAX":
            e = np.exp(scores - scores.max(axis=1, keepdims=True))
            out: F32 = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
        elif self.post == b"LOGISTIC":
            out = (1.0 / (1.0 + np.exp(-scores))).astype(np.float32)
        else:
            out = scores.astype(np.float32)
        return out


def _compare(mode: npt.NDArray[np.int8], x: F32, v: F32) -> npt.NDArray[np.bool_]:
    """Branch tests by mode; leaves (mode -1) go "true" (to themselves)."""
    out: npt.NDArray[np.bool_] = np.select(
        [mode == 0, mode == 1, mode == 2, mode == 3, mode == 4, mode == 5],
        [x <= v, x < v, x >= v, x > v, x == v, x != v],
        default=True,
    )
    return out
