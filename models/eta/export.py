"""Two fitted regressors (travel, dwell) as one ONNX graph: one input, two named outputs."""

from __future__ import annotations

from typing import Any

import onnx
from onnx import compose, helper

OPSET = {"": 17, "ai.onnx.ml": 3}
INPUT = "features"
OUTPUTS = ("travel_log_ratio", "dwell_log_ratio")


def _single(model: Any, n_features: int) -> onnx.ModelProto:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    proto: onnx.ModelProto = to_onnx(
        model, initial_types=[(INPUT, FloatTensorType([None, n_features]))], target_opset=OPSET
    )
    return proto


def to_onnx_bytes(travel: Any, dwell: Any, n_features: int, doc: str) -> bytes:
    parts = [
        compose.add_prefix(_single(m, n_features), prefix=f"{name}_")
        for name, m in (("travel", travel), ("dwell", dwell))
    ]
    nodes = []
    for part, out in zip(parts, OUTPUTS, strict=True):
        nodes.append(helper.make_node("Identity", [INPUT], [part.graph.input[0].name]))
        nodes.extend(part.graph.node)
        nodes.append(helper.make_node("Identity", [part.graph.output[0].name], [out]))
    graph = helper.make_graph(
        nodes,
        "eta",
        [helper.make_tensor_value_info(INPUT, onnx.TensorProto.FLOAT, [None, n_features])],
        [helper.make_tensor_value_info(o, onnx.TensorProto.FLOAT, [None, 1]) for o in OUTPUTS],
        initializer=[i for p in parts for i in p.graph.initializer],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(d, v) for d, v in OPSET.items()],
        producer_name="flota models train",
    )
    model.ir_version = parts[0].ir_version
    model.doc_string = doc
    onnx.checker.check_model(model)
    data: bytes = model.SerializeToString()
    return data
