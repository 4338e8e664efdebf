"""The whole path from serial bytes to fixes: framer -> sentence -> observation -> epoch."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import date

from edge_agent.gps.assembler import DEFAULT_MIN_DATE, EpochAssembler
from edge_agent.gps.counters import Counters
from edge_agent.gps.fields import FieldError
from edge_agent.gps.fix import GpsFix
from edge_agent.gps.framer import NmeaFramer
from edge_agent.gps.observation import observe
from edge_agent.gps.sentence import SentenceError, decode, split_address


class NmeaDecoder:
    """Feed raw bytes, get fixes. Never raises on input; every drop is counted by reason."""

    def __init__(
        self,
        counters: Counters | None = None,
        *,
        early_emit: bool = True,
        accept_missing_checksum: bool = False,
        skip_comments: bool = False,
        min_date: date = DEFAULT_MIN_DATE,
        reference_clock: Callable[[], float] | None = None,
    ) -> None:
        self.counters = counters if counters is not None else Counters()
        self.framer = NmeaFramer(
            self.counters,
            accept_missing_checksum=accept_missing_checksum,
            skip_comments=skip_comments,
        )
        self.assembler = EpochAssembler(
            self.counters,
            early_emit=early_emit,
            min_date=min_date,
            reference_clock=reference_clock,
        )

    def feed(self, data: bytes) -> list[GpsFix]:
        out: list[GpsFix] = []
        for sentence in self.framer.feed(data):
            out.extend(self.sentence(sentence))
        return out

    def flush(self) -> list[GpsFix]:
        out: list[GpsFix] = []
        for sentence in self.framer.flush():
            out.extend(self.sentence(sentence))
        out.extend(self.assembler.flush())
        return out

    def sentence(self, sentence: str) -> list[GpsFix]:
        """One framed, checksum-valid sentence."""
        counters = self.counters
        counters.add("sentences")
        try:
            raw = decode(sentence)
        except SentenceError as err:
            counters.add(err.reason, sentence, warn=err.reason == "unparseable")
            return self.assembler.push_other(split_address(sentence))
        try:
            obs = observe(raw)
        except FieldError as err:
            counters.add(err.reason, sentence, warn=True)
            return self.assembler.push_other(raw.address)
        for issue in obs.issues:
            counters.add(issue, sentence)
        counters.add("used_" + raw.kind)
        return self.assembler.push(obs)


def decode_chunks(chunks: Iterable[bytes], decoder: NmeaDecoder | None = None) -> Iterator[GpsFix]:
    """Decode a finite stream of byte chunks, flushing at the end."""
    decoder = decoder if decoder is not None else NmeaDecoder()
    for chunk in chunks:
        yield from decoder.feed(chunk)
    yield from decoder.flush()
