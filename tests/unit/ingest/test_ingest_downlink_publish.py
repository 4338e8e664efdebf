"""The bridge's downlink commits a Kafka batch only once the broker acknowledged every publish:
a publish while MQTT is down, or an acknowledgement that does not come, leaves the batch to be
read again (it crashed the downlink thread before, which then never downlinked again)."""

from __future__ import annotations

import paho.mqtt.client as mqtt

from cloud.ingest.bridge import _all_published


def _info(
    mid: int, rc: int = mqtt.MQTT_ERR_SUCCESS, published: bool = True
) -> mqtt.MQTTMessageInfo:
    info = mqtt.MQTTMessageInfo(mid)
    info.rc = rc
    if published:
        info._set_as_published()
    return info


def test_every_publish_acknowledged_commits() -> None:
    assert _all_published([_info(1), _info(2), _info(3)])


def test_a_publish_while_disconnected_does_not_commit_and_does_not_raise() -> None:
    infos = [_info(1), _info(2, rc=mqtt.MQTT_ERR_NO_CONN, published=False), _info(3)]
    assert not _all_published(infos)


def test_an_acknowledgement_that_never_comes_does_not_commit() -> None:
    assert not _all_published([_info(1), _info(2, published=False)], timeout_s=0.2)


def test_nothing_to_publish_commits() -> None:
    assert _all_published([])
