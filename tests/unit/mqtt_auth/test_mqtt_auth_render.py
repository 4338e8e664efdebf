"""The Mosquitto users-and-rules renderer: hashes, rules per device, stable re-rendering."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from cloud.ingest import mqtt_auth
from cloud.ingest.mqtt_auth import Device, PasswordHash, RegistryError
from flota_wire import topics

REGISTRY = {
    "devices": [{"tenant": "acme", "vehicle": "truck-1"}, {"tenant": "acme", "vehicle": "van-2"}]
}


def _registry(tmp_path: Path, content: object) -> Path:
    path = tmp_path / "devices.json"
    path.write_text(json.dumps(content), encoding="utf-8")
    return path


def test_hash_is_mosquittos_pbkdf2_sha512() -> None:
    salt = bytes(range(12))
    pw = PasswordHash.create("s3cret", salt=salt)
    expected = hashlib.pbkdf2_hmac("sha512", b"s3cret", salt, 101)
    assert base64.b64decode(pw.digest) == expected
    assert base64.b64decode(pw.salt) == salt
    assert pw.matches("s3cret")
    assert not pw.matches("s3cret ")


@pytest.mark.parametrize(
    "content",
    [
        {"devices": [{"tenant": "acme", "vehicle": "a/b"}]},
        {"devices": [{"tenant": "ac+me", "vehicle": "x"}]},
        {"devices": [{"tenant": "acme", "vehicle": "x"}, {"tenant": "acme", "vehicle": "x"}]},
        {"devices": [{"tenant": "acme"}]},
        {"vehicles": []},
    ],
)
def test_bad_registry_is_rejected(tmp_path: Path, content: object) -> None:
    with pytest.raises(RegistryError):
        mqtt_auth.load_registry(_registry(tmp_path, content))


def test_rules_confine_each_device_to_its_own_topics(tmp_path: Path) -> None:
    out = tmp_path / "out"
    mqtt_auth.render(_registry(tmp_path, REGISTRY), out)
    config = json.loads((out / mqtt_auth.DYNSEC_FILE).read_text(encoding="utf-8"))
    assert config["defaultACLAccess"]["publishClientSend"] is False
    assert config["defaultACLAccess"]["subscribe"] is False
    roles = {r["rolename"]: r["acls"] for r in config["roles"]}
    truck = roles["acme.truck-1"]
    sends = {a["topic"] for a in truck if a["acltype"] == "publishClientSend"}
    assert sends == {topics.topic("acme", "truck-1", ch) for ch in topics.UPLINK}
    assert "flota/v1/acme/truck-1/up/telemetry" in sends
    assert "flota/v1/acme/truck-1/state" in sends
    assert not any("/down/" in t for t in sends)
    assert {a["topic"] for a in truck if a["acltype"] == "subscribePattern"} == {
        "flota/v1/acme/truck-1/down/#"
    }
    assert all("van-2" not in a["topic"] for a in truck)
    assert all(a["allow"] is True for acls in roles.values() for a in acls)


def test_rerender_keeps_passwords_and_bytes(tmp_path: Path) -> None:
    registry = _registry(tmp_path, REGISTRY)
    out = tmp_path / "out"
    mqtt_auth.render(registry, out)
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    mqtt_auth.render(registry, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first
    assert all((p.stat().st_mode & 0o077) == 0 for p in out.iterdir())


def test_new_device_gets_a_password_and_old_ones_keep_theirs(tmp_path: Path) -> None:
    out = tmp_path / "out"
    mqtt_auth.render(_registry(tmp_path, REGISTRY), out)
    before = json.loads((out / "secrets.json").read_text(encoding="utf-8"))
    bigger = {"devices": [*REGISTRY["devices"], {"tenant": "globex", "vehicle": "bus-7"}]}
    devices = mqtt_auth.render(_registry(tmp_path, bigger), out)
    after = json.loads((out / "secrets.json").read_text(encoding="utf-8"))
    assert Device("globex", "bus-7") in devices
    assert {k: after[k] for k in before} == before
    assert len(after["globex.bus-7"]) >= 24
    listed = json.loads((out / "devices.json").read_text(encoding="utf-8"))
    assert [d["username"] for d in listed] == ["acme.truck-1", "acme.van-2", "globex.bus-7"]
    clients = json.loads((out / mqtt_auth.DYNSEC_FILE).read_text(encoding="utf-8"))["clients"]
    by_name = {c["username"]: c for c in clients}
    pw = PasswordHash(by_name["globex.bus-7"]["salt"], by_name["globex.bus-7"]["password"])
    assert pw.matches(after["globex.bus-7"])
