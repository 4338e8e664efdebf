"""Exact size of the MQTT PUBLISH packet that carries a payload (for the wire-size figures).

QoS 1 PUBLISH = fixed header byte + Remaining Length (variable byte integer) + topic name
(2-byte length + UTF-8) + packet identifier (2 bytes) [+ MQTT 5 properties] + payload.
With an MQTT 5 topic alias, every publish after the first on a connection sends an empty topic
name and the 3-byte Topic Alias property instead of the topic.
"""

from __future__ import annotations


def _varint_len(n: int) -> int:
    size = 1
    while n >= 128:
        n >>= 7
        size += 1
    return size


def publish_size(
    topic: str, payload_len: int, *, qos: int = 1, mqtt5: bool = False, alias: bool = False
) -> int:
    """Bytes on the wire for one PUBLISH (TCP/TLS overhead not included).

    ``alias``: MQTT 5 only; the topic is replaced by a 2-byte Topic Alias (after the first
    publish per connection, which carries both the topic and the alias).
    """
    if alias and not mqtt5:
        raise ValueError("topic aliases need MQTT 5")
    topic_len = 0 if alias else len(topic.encode())
    variable = 2 + topic_len + (2 if qos else 0)
    if mqtt5:
        props = 3 if alias else 0  # 0x23 Topic Alias + 2-byte value
        variable += _varint_len(props) + props
    remaining = variable + payload_len
    return 1 + _varint_len(remaining) + remaining
