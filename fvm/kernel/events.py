"""Actor events (FIP-0049): decoding and validating what an actor emits, and stamping it.

From network version 18 an actor may emit events through ``event.emit_event``, passing a
DAG-CBOR ``ActorEvent``: an array of entries, each ``[flags, key, codec, value]``. ref-fvm v3
(``fvm/src/kernel/default.rs`` ``emit_event``/``validate_actor_event``, types in
``shared/src/event/mod.rs`` at ``fvm@v3.13.3``) refuses an event that does not decode, has more
than 256 entries, a key over 32 bytes, a value codec other than raw (``IllegalCodec``) or more
than 8 KiB of values in total (all ``IllegalArgument`` otherwise). An accepted event is stamped
with the emitting actor's ID; the receipt commits to the stamped events of the message in an AMT.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from fvm.syscalls.abi import ErrorNumber, SyscallError
from store import dag_cbor
from store.cid import RAW
from store.errors import MalformedInput

MAX_ENCODED_EVENT_BYTES: Final = 1 << 20
MAX_EVENT_ENTRIES: Final = 256
MAX_EVENT_VALUES_BYTES: Final = 8 << 10
MAX_EVENT_KEY_BYTES: Final = 32
MAX_U64: Final = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class EventEntry:
    """One entry: indexing flags, a UTF-8 key, the value's codec and the value."""

    flags: int
    key: str
    codec: int
    value: bytes

    @property
    def key_size(self) -> int:
        return len(self.key.encode())

    def to_cbor(self) -> list[Any]:
        return [self.flags, self.key, self.codec, self.value]


@dataclass(frozen=True, slots=True)
class StampedEvent:
    """An accepted event and the actor that emitted it (ref-fvm ``StampedEvent``)."""

    emitter: int
    entries: tuple[EventEntry, ...]

    def to_cbor(self) -> list[Any]:
        return [self.emitter, [entry.to_cbor() for entry in self.entries]]


def _illegal(message: str) -> SyscallError:
    return SyscallError(ErrorNumber.ILLEGAL_ARGUMENT, message)


def _u64(value: Any) -> bool:
    return type(value) is int and 0 <= value <= MAX_U64


def decode_actor_event(raw: bytes) -> tuple[EventEntry, ...]:
    """The entries of a DAG-CBOR ``ActorEvent``; ``IllegalArgument`` when it is not one."""
    try:
        decoded = dag_cbor.decode(raw, "actor event")
    except MalformedInput as exc:
        raise _illegal(f"failed to decode actor event: {exc}") from None
    if type(decoded) is not list:
        raise _illegal("actor event must be an array of entries")
    entries: list[EventEntry] = []
    for item in decoded:
        if type(item) is not list or len(item) != 4:
            raise _illegal("event entry must be [flags, key, codec, value]")
        flags, key, codec, value = item
        if not _u64(flags) or type(key) is not str or not _u64(codec) or type(value) is not bytes:
            raise _illegal("event entry must be [flags, key, codec, value]")
        entries.append(EventEntry(flags, key, codec, value))
    return tuple(entries)


def validate_actor_event(entries: tuple[EventEntry, ...]) -> None:
    """ref-fvm ``validate_actor_event``: the limits on entries, keys, codecs and values."""
    if len(entries) > MAX_EVENT_ENTRIES:
        raise _illegal(f"event exceeded max entries: {len(entries)} > {MAX_EVENT_ENTRIES}")
    total_value_size = 0
    for entry in entries:
        if entry.key_size > MAX_EVENT_KEY_BYTES:
            raise _illegal(
                f"event key exceeded max size: {entry.key_size} > {MAX_EVENT_KEY_BYTES}"
            )
        if entry.codec != RAW:
            raise SyscallError(
                ErrorNumber.ILLEGAL_CODEC, f"event codec must be IPLD_RAW, was: {entry.codec}"
            )
        total_value_size += len(entry.value)
    if total_value_size > MAX_EVENT_VALUES_BYTES:
        raise _illegal(
            f"event total values exceeded max size: {total_value_size} > {MAX_EVENT_VALUES_BYTES}"
        )
