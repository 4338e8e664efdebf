"""Mosquitto credentials and ACL rendered from the device registry.

The broker, not the bridge, is what keeps one vehicle from writing another vehicle's telemetry
or reading another vehicle's commands, so the rules are generated from the same topic contract
(:mod:`flota_wire.topics`) that devices and the bridge use. Passwords are generated at random
the first time a user is seen and kept in a private secrets file, so re-rendering after an edit
of the registry keeps existing credentials; the repository never holds a secret.

Run as ``python -m cloud.ingest.mqtt_auth --registry devices.json --out-dir DIR``; it writes
``DIR/passwd`` (Mosquitto's PBKDF2-SHA512 format), ``DIR/acl``, ``DIR/secrets.json`` (all
passwords), ``DIR/devices.json`` (the registered devices with their credentials, for tests and
simulators), ``DIR/bridge.env`` and ``DIR/health.env``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import secrets
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from flota_wire import topics

BRIDGE_USER = "flota-bridge"
HEALTH_USER = "flota-health"
HEALTH_TOPIC_ROOT = "flota/health"

# Mosquitto 2's "$7$" password hash: PBKDF2-HMAC-SHA512, 12-byte salt, 101 iterations by default
# (what mosquitto_passwd writes); base64 with padding.
_HASH_ID = 7
_SALT_BYTES = 12
_ITERATIONS = 101


class RegistryError(ValueError):
    """The device registry file is missing, malformed, or names an illegal tenant or vehicle."""


@dataclass(frozen=True, slots=True)
class Device:
    """One registered vehicle. Its MQTT user name is ``{tenant}.{vehicle}``: ``.`` cannot occur
    in a topic segment, so the name is unambiguous."""

    tenant: str
    vehicle: str

    @property
    def username(self) -> str:
        return f"{self.tenant}.{self.vehicle}"


def load_registry(path: Path) -> list[Device]:
    """Read ``{"devices": [{"tenant": ..., "vehicle": ...}, ...]}``; reject duplicates and ids
    outside the topic alphabet."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        entries = raw["devices"]
        devices = [Device(str(e["tenant"]), str(e["vehicle"])) for e in entries]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise RegistryError(f"cannot read device registry {path}: {err}") from err
    seen: set[str] = set()
    for device in devices:
        try:
            topics.check_segment(device.tenant, "tenant")
            topics.check_segment(device.vehicle, "vehicle")
        except topics.TopicError as err:
            raise RegistryError(f"{path}: {err}") from err
        if device.username in seen:
            raise RegistryError(f"{path}: duplicate device {device.username}")
        seen.add(device.username)
    return devices


def hash_password(
    password: str, *, salt: bytes | None = None, iterations: int = _ITERATIONS
) -> str:
    """Mosquitto's ``$7$`` hash of ``password`` (what ``mosquitto_passwd`` would write)."""
    salt = secrets.token_bytes(_SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    b64 = base64.b64encode
    return f"${_HASH_ID}${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    """Check ``password`` against a ``$7$`` hash; used by the tests and for diagnosis."""
    parts = encoded.split("$")
    if len(parts) != 5 or parts[1] != str(_HASH_ID):
        return False
    salt = base64.b64decode(parts[3])
    return secrets.compare_digest(
        hash_password(password, salt=salt, iterations=int(parts[2])), encoded
    )


def load_or_create_secrets(path: Path, usernames: Iterable[str]) -> dict[str, str]:
    """Passwords by user name: kept from ``path`` when present, generated for new users."""
    known: dict[str, str] = {}
    if path.exists():
        known = {str(k): str(v) for k, v in json.loads(path.read_text(encoding="utf-8")).items()}
    result = {name: known.get(name) or secrets.token_urlsafe(24) for name in usernames}
    if result != known:
        _write_private(path, json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result


def render_passwd(passwords: dict[str, str], previous: str = "") -> str:
    """The password file: one ``user:$7$...`` line per user. A hash from ``previous`` that still
    matches the password is kept, so re-rendering an unchanged registry changes no byte."""
    old = dict(line.split(":", 1) for line in previous.splitlines() if ":" in line)
    lines = []
    for name, password in sorted(passwords.items()):
        kept = old.get(name, "")
        lines.append(
            f"{name}:{kept if verify_password(password, kept) else hash_password(password)}\n"
        )
    return "".join(lines)


def render_acl(devices: Sequence[Device]) -> str:
    """The ACL: each device writes only its own uplink topics and reads only its own downlink;
    the bridge reads every uplink and writes every downlink; the health user owns a private
    subtree used by the start script's round trip."""
    lines = [
        "# Generated by cloud.ingest.mqtt_auth from the device registry. Do not edit.",
        "# No rules outside a 'user' block: an unknown user may do nothing.",
        "",
        f"user {BRIDGE_USER}",
    ]
    lines += [f"topic read {topics.subscription(ch)}" for ch in sorted(topics.UPLINK)]
    lines += [f"topic write {topics.subscription(ch)}" for ch in sorted(topics.DOWNLINK)]
    lines += ["", f"user {HEALTH_USER}", f"topic readwrite {HEALTH_TOPIC_ROOT}/#"]
    for device in devices:
        prefix = topics.vehicle_prefix(device.tenant, device.vehicle)
        lines += ["", f"user {device.username}"]
        lines += [
            f"topic write {topics.topic(device.tenant, device.vehicle, ch)}"
            for ch in sorted(topics.UPLINK)
        ]
        lines += [
            f"topic read {topics.topic(device.tenant, device.vehicle, ch)}"
            for ch in sorted(topics.DOWNLINK)
        ]
        # Lets a device subscribe to its own "down/#" in one filter; still only its own prefix.
        lines.append(f"topic read {prefix}/down/#")
    return "\n".join(lines) + "\n"


def render(registry: Path, out_dir: Path) -> list[Device]:
    """Write every output file into ``out_dir``; return the registered devices."""
    devices = load_registry(registry)
    out_dir.mkdir(parents=True, exist_ok=True)
    users = [BRIDGE_USER, HEALTH_USER, *(d.username for d in devices)]
    passwords = load_or_create_secrets(out_dir / "secrets.json", users)
    passwd = out_dir / "passwd"
    previous = passwd.read_text(encoding="utf-8") if passwd.exists() else ""
    _write_private(passwd, render_passwd(passwords, previous))
    _write_private(out_dir / "acl", render_acl(devices))
    listing = [
        {
            "tenant": d.tenant,
            "vehicle": d.vehicle,
            "username": d.username,
            "password": passwords[d.username],
        }
        for d in devices
    ]
    devices_file = out_dir / "devices.json"
    _write_private(devices_file, json.dumps(listing, indent=2) + "\n")
    _write_private(
        out_dir / "bridge.env",
        f"FLOTA_MQTT_USERNAME={BRIDGE_USER}\n"
        f"FLOTA_MQTT_PASSWORD={passwords[BRIDGE_USER]}\n"
        f"FLOTA_MQTT_DEVICES_FILE={devices_file.resolve()}\n",
    )
    _write_private(
        out_dir / "health.env",
        f"HEALTH_USER={HEALTH_USER}\nHEALTH_PASSWORD={passwords[HEALTH_USER]}\n"
        f"HEALTH_TOPIC_ROOT={HEALTH_TOPIC_ROOT}\n",
    )
    return devices


def _write_private(path: Path, text: str) -> None:
    """Write atomically with mode 0600 (these files hold secrets or their hashes); leave an
    identical file untouched so the start script can tell whether anything changed."""
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cloud.ingest.mqtt_auth", description=__doc__)
    parser.add_argument("--registry", type=Path, required=True, help="devices.json to read")
    parser.add_argument("--out-dir", type=Path, required=True, help="where to write the files")
    args = parser.parse_args(argv)
    try:
        devices = render(args.registry, args.out_dir)
    except RegistryError as err:
        print(f"mqtt_auth: {err}", file=sys.stderr)
        return 2
    print(f"mqtt_auth: {len(devices)} devices, ACL and passwords written to {args.out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
