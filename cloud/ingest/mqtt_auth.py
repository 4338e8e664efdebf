"""Mosquitto credentials and ACL rendered from the device registry.

The broker, not the bridge, is what keeps one vehicle from writing another vehicle's telemetry
or reading another vehicle's commands, so the rules are generated from the same topic contract
(:mod:`flota_wire.topics`) that devices and the bridge use. Passwords are generated at random
the first time a user is seen and kept in a private secrets file, so re-rendering after an edit
of the registry keeps existing credentials; the repository never holds a secret.

Run as ``python -m cloud.ingest.mqtt_auth --registry devices.json --out-dir DIR``; it writes
``DIR/dynamic-security.json`` (users with PBKDF2-SHA512 hashes and their rules, for Mosquitto's
dynamic-security plugin), ``DIR/secrets.json`` (all passwords), ``DIR/devices.json`` (the
registered devices with their credentials, for tests and simulators), ``DIR/bridge.env`` and
``DIR/health.env``.
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
DYNSEC_FILE = "dynamic-security.json"

# Passwords are stored as Mosquitto 2 stores them: PBKDF2-HMAC-SHA512 over a 12-byte salt,
# 101 iterations (mosquitto_passwd's and mosquitto_ctrl's default), base64.
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


@dataclass(frozen=True, slots=True)
class PasswordHash:
    """A password as the broker keeps it (base64 fields, as in Mosquitto's files)."""

    salt: str
    digest: str
    iterations: int = _ITERATIONS

    @classmethod
    def create(cls, password: str, salt: bytes | None = None) -> PasswordHash:
        salt = secrets.token_bytes(_SALT_BYTES) if salt is None else salt
        digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, _ITERATIONS)
        return cls(base64.b64encode(salt).decode(), base64.b64encode(digest).decode())

    def matches(self, password: str) -> bool:
        salt = base64.b64decode(self.salt)
        digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, self.iterations)
        return secrets.compare_digest(base64.b64encode(digest).decode(), self.digest)


def load_or_create_secrets(path: Path, usernames: Iterable[str]) -> dict[str, str]:
    """Passwords by user name: kept from ``path`` when present, generated for new users."""
    known: dict[str, str] = {}
    if path.exists():
        known = {str(k): str(v) for k, v in json.loads(path.read_text(encoding="utf-8")).items()}
    result = {name: known.get(name) or secrets.token_urlsafe(24) for name in usernames}
    if result != known:
        _write_private(path, json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result


def _acl(acltype: str, topic_filter: str) -> dict[str, object]:
    return {"acltype": acltype, "topic": topic_filter, "allow": True}


def render_roles(devices: Sequence[Device]) -> list[dict[str, object]]:
    """One role per user. The bridge reads every uplink and writes every downlink; a device
    sends only on its own uplink topics and subscribes to and receives only its own downlink;
    the health user owns a private subtree for the start script's round trip."""
    uplink = [topics.subscription(ch) for ch in sorted(topics.UPLINK)]
    downlink = [topics.subscription(ch) for ch in sorted(topics.DOWNLINK)]
    roles: list[dict[str, object]] = [
        {
            "rolename": BRIDGE_USER,
            # Shared subscriptions ($share/{group}/...) are checked with their prefix.
            "acls": [_acl("subscribePattern", f) for f in uplink]
            + [_acl("subscribePattern", f"$share/+/{f}") for f in uplink]
            + [_acl("publishClientReceive", f) for f in uplink]
            + [_acl("publishClientSend", f) for f in downlink]
            + [_acl("unsubscribePattern", "#"), _acl("unsubscribePattern", "$share/#")],
        },
        {
            "rolename": HEALTH_USER,
            "acls": [
                _acl(kind, f"{HEALTH_TOPIC_ROOT}/#")
                for kind in (
                    "subscribePattern",
                    "publishClientReceive",
                    "publishClientSend",
                    "unsubscribePattern",
                )
            ],
        },
    ]
    for device in devices:
        own_down = f"{topics.vehicle_prefix(device.tenant, device.vehicle)}/down/#"
        roles.append(
            {
                "rolename": device.username,
                "acls": [
                    _acl("publishClientSend", topics.topic(device.tenant, device.vehicle, ch))
                    for ch in sorted(topics.UPLINK)
                ]
                + [
                    _acl("subscribePattern", own_down),
                    _acl("publishClientReceive", own_down),
                    _acl("unsubscribePattern", own_down),
                ],
            }
        )
    return roles


def render_dynsec(
    devices: Sequence[Device],
    passwords: dict[str, str],
    previous: dict[str, PasswordHash] | None = None,
) -> str:
    """The dynamic-security plugin's file: clients, one role each, and deny-by-default.

    The plugin (not ``acl_file``) is used because it checks SUBSCRIBE against the rules and
    answers a forbidden subscription with a failure code; ``acl_file`` grants every subscription
    and only filters on delivery. A hash from ``previous`` that still matches its password is
    kept, so re-rendering an unchanged registry changes no byte."""
    previous = previous or {}
    clients = []
    for name, password in sorted(passwords.items()):
        kept = previous.get(name)
        pw = kept if kept is not None and kept.matches(password) else PasswordHash.create(password)
        clients.append(
            {
                "username": name,
                "password": pw.digest,
                "salt": pw.salt,
                "iterations": pw.iterations,
                "roles": [{"rolename": name}],
            }
        )
    config = {
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": False,
            "subscribe": False,
            "unsubscribe": True,
        },
        "clients": clients,
        "groups": [],
        "roles": render_roles(devices),
    }
    return json.dumps(config, indent=2) + "\n"


def _previous_hashes(path: Path) -> dict[str, PasswordHash]:
    if not path.exists():
        return {}
    try:
        clients = json.loads(path.read_text(encoding="utf-8")).get("clients", [])
        return {
            str(c["username"]): PasswordHash(
                str(c["salt"]), str(c["password"]), int(c["iterations"])
            )
            for c in clients
        }
    except (ValueError, KeyError, TypeError, AttributeError):
        return {}  # unreadable: every hash is made anew


def render(registry: Path, out_dir: Path) -> list[Device]:
    """Write every output file into ``out_dir``; return the registered devices."""
    devices = load_registry(registry)
    out_dir.mkdir(parents=True, exist_ok=True)
    users = [BRIDGE_USER, HEALTH_USER, *(d.username for d in devices)]
    passwords = load_or_create_secrets(out_dir / "secrets.json", users)
    dynsec = out_dir / DYNSEC_FILE
    _write_private(dynsec, render_dynsec(devices, passwords, _previous_hashes(dynsec)))
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
    print(f"mqtt_auth: {len(devices)} devices; users and rules written to {args.out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
