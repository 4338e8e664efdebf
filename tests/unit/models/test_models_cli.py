"""`flota models ...` and `flota bench models` print what they promise."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from flota.cli import app

runner = CliRunner()


def test_evaluate_json_is_one_object_keyed_by_model() -> None:
    result = runner.invoke(app, ["models", "evaluate", "--json", "--scale", "0.05"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out) == {"harsh_driving", "engine_anomaly", "demand", "eta"}
    for name, value in out.items():
        assert set(value) == {"metric", "value", "baseline", "higher_is_better"}
        if name in {"demand", "eta"}:
            assert value["metric"] == ("mae" if name == "demand" else "stop_mae_s")
            assert value["higher_is_better"] is False
            assert value["value"] < value["baseline"]
            continue
        assert value["metric"] == "macro_f1_events"
        assert value["higher_is_better"] is True
        assert 0.0 <= value["baseline"] <= 1.0
        assert 0.0 <= value["value"] <= 1.0


def test_list_checks_every_sha256() -> None:
    result = runner.invoke(app, ["models", "list"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 4
    assert all(line.endswith(" ok") for line in lines)


def test_bench_models_json_has_latency_and_memory() -> None:
    result = runner.invoke(
        app, ["bench", "models", "--json", "--windows", "100", "--requests", "20"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    for name in ("harsh_driving", "engine_anomaly"):
        assert out[name]["onnx_only"]["p99_us"] >= out[name]["onnx_only"]["p50_us"] > 0
    assert out["threads"] == 1
    assert out["memory"]["rss_mb_with_models"] > out["memory"]["rss_mb_with_numpy"]
    assert out["memory"]["sklearn_imported"] is False
    for name in ("eta", "demand"):
        assert out[name]["onnx_only"]["p99_us"] >= out[name]["onnx_only"]["p50_us"] > 0
        assert out[name]["batch100_us_per_item"] > 0
    cases = out["service"]["cases"]
    assert set(cases) == {"eta_1_leg", "eta_10_legs", "demand_1_cell", "demand_37_cells"}
    assert all(c["p99_us"] >= c["p50_us"] > 0 for c in cases.values())
    assert out["service"]["rss_mb"] > 0
