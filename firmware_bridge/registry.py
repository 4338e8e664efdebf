"""The device families of the bridge, each a framer, a decoder and an encoder, in one place.

A new family (another MCU protocol, a different OBD adapter) adds its own small modules and
one entry here; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cantools

from firmware_bridge.canbus import candump, dbc
from firmware_bridge.elm327 import client as elm_client
from firmware_bridge.elm327 import response as elm_response
from firmware_bridge.mcu import decoder as mcu_decoder
from firmware_bridge.mcu import encoder as mcu_encoder
from firmware_bridge.mcu import frame as mcu_frame
from firmware_bridge.mcu import link as mcu_link


@dataclass(frozen=True, slots=True)
class Family:
    """The stages of one device family: bytes -> frames, frames -> messages/records,
    messages -> bytes, and the session object that runs a port of this family."""

    name: str
    description: str
    framer: Callable[..., Any]
    decoder: Callable[..., Any]
    encoder: Callable[..., Any]
    session: Callable[..., Any]


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            "mcu",
            "vehicle microcontroller: COBS frames, CRC-16, IMU/CAN/inputs/heartbeat",
            framer=(mcu_frame.Framer),
            decoder=(mcu_decoder.decode_payload),
            encoder=(mcu_encoder.encode_payload),
            session=(mcu_link.McuLink),
        ),
        Family(
            "elm327",
            "ELM327 OBD-II adapter: AT commands, text answers up to the '>' prompt",
            framer=(elm_response.clean_lines),
            decoder=(elm_response.messages),
            encoder=(elm_client.Elm327Client.command),
            session=(elm_client.Elm327Client),
        ),
        Family(
            "candump",
            "CAN frames from can-utils candump text, signals from a DBC file",
            framer=(candump.read),
            decoder=(dbc.DbcDecoder),
            encoder=cantools.database.can.Message.encode,
            session=(dbc.DbcDecoder),
        ),
    )
}
