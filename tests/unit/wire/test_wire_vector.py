"""The test vector of docs/wire-protocol.md section 11, both ways."""

from __future__ import annotations

from pathlib import Path

from flota_wire import Fix, decode_telemetry_columns, encode_telemetry

VECTOR = bytes.fromhex(
    "110857a39fac25c3001aaa1e587ab116ebe43d024072b27e82e8e21b8c28ca019876d01b06c0"
)
FIXES = (
    Fix(1000, 1795780800000000, 60169900, 24938400, 3, 253, 1250, 9000, 90, 11),
    Fix(1001, 1795780801000000, 60169901, 24938625, 3, 254, 1262, 9010, 90, 11),
    Fix(1002, 1795780802000000, 60169903, 24938852, 3, 254, 1270, 9015, 90, 12),
)


def test_vector_encodes_exactly() -> None:
    assert encode_telemetry(FIXES) == VECTOR


def test_vector_decodes_exactly() -> None:
    assert decode_telemetry_columns(VECTOR).fixes() == FIXES


def test_vector_bits_match_the_annotated_layout() -> None:
    bits = bin(int.from_bytes(VECTOR[1:], "big"))[2:].zfill(8 * (len(VECTOR) - 1))
    assert bits.startswith("0000100" + "001010111101000" + "1" + "110")
    assert bits.endswith("0" + "0001" + "1" + "011" + "000000")


def test_the_spec_quotes_this_vector() -> None:
    spec = Path(__file__).resolve().parents[3] / "docs" / "wire-protocol.md"
    assert VECTOR.hex() in spec.read_text()
