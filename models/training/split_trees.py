"""Split one ONNX TreeEnsembleRegressor into groups of trees summed in float64.

onnxruntime sums a regressor's trees in float32. For outputs of tens (orders per hour), 150
float32 additions drift by about 1e-5 from sklearn's float64 sum. Each group's partial sum is
small, so its float32 error is small; the groups and the base value are added in float64 (Cast,
Sum), and the output becomes float64: parity then stays near 1e-6.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

NODE_KEYS = (
    "nodes_falsenodeids",
    "nodes_featureids",
    "nodes_hitrates",
    "nodes_missing_value_tracks_true",
    "nodes_modes",
    "nodes_nodeids",
    "nodes_truenodeids",
    "nodes_values",
)
TARGET_KEYS = ("target_ids", "target_nodeids", "target_weights")


def _values(attr: onnx.AttributeProto) -> Any:
    v = helper.get_attribute_value(attr)
    return list(v) if isinstance(v, list | tuple) else v


def split_regressor(model: onnx.ModelProto, trees_per_group: int = 10) -> onnx.ModelProto:
    """The same model with its single TreeEnsembleRegressor split; output renamed unchanged."""
    graph = model.graph
    (tree,) = [n for n in graph.node if n.op_type == "TreeEnsembleRegressor"]
    if len(graph.node) != 1:
        raise ValueError("expected a graph holding only the TreeEnsembleRegressor")
    attrs = {a.name: _values(a) for a in tree.attribute if a.type != onnx.AttributeProto.STRING}
    strings = {
        a.name: helper.get_attribute_value(a)
        for a in tree.attribute
        if a.type == onnx.AttributeProto.STRING
    }
    if attrs.get("n_targets", 1) != 1:
        raise ValueError("only single-target regressors are split")
    groups: dict[int, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for i, t in enumerate(attrs["nodes_treeids"]):
        g = groups[t // trees_per_group]
        g["nodes_treeids"].append(t)
        for k in NODE_KEYS:
            if k in attrs:
                g[k].append(attrs[k][i])
    for i, t in enumerate(attrs["target_treeids"]):
        g = groups[t // trees_per_group]
        g["target_treeids"].append(t)
        for k in TARGET_KEYS:
            g[k].append(attrs[k][i])
    inp, out = graph.input[0].name, graph.output[0].name
    nodes, parts = [], []
    for gi in sorted(groups):
        name = f"trees_{gi}"
        kwargs: dict[str, Any] = {
            "domain": "ai.onnx.ml",
            "n_targets": 1,
            "post_transform": strings.get("post_transform", b"NONE").decode(),
            "aggregate_function": strings.get("aggregate_function", b"SUM").decode(),
            **groups[gi],
        }
        nodes.append(helper.make_node("TreeEnsembleRegressor", [inp], [name], **kwargs))
        nodes.append(helper.make_node("Cast", [name], [f"{name}_f64"], to=TensorProto.DOUBLE))
        parts.append(f"{name}_f64")
    base = float(attrs.get("base_values", [0.0])[0])
    init = [numpy_helper.from_array(np.array([[base]], dtype=np.float64), "base")]
    nodes.append(helper.make_node("Sum", [*parts, "base"], [out]))
    new_graph = helper.make_graph(
        nodes,
        graph.name,
        list(graph.input),
        [helper.make_tensor_value_info(out, TensorProto.DOUBLE, [None, 1])],
        initializer=init,
    )
    new = helper.make_model(new_graph, opset_imports=list(model.opset_import))
    new.ir_version = model.ir_version
    new.producer_name = model.producer_name
    new.doc_string = model.doc_string
    onnx.checker.check_model(new)
    return new
