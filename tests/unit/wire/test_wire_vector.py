"""The test vector of docs/wire-protocol.md section 11, both ways."""

from __future__ import annotations

from flota_wire import Fix, decode_telemetry_columns, encode_telemetry

VECTOR = bytes.fromhex(
    "110857a39fac25c3001aaa0de587ab116da7c87a0480e5613f41730e21b8c0f1940330e21a00560d80"
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
    assert bits.endswith("0" + "0001" + "1" + "011" + "0000000")
