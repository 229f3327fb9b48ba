"""Message receipts and the VM's exit codes.

A receipt records what applying one message did: exit code, return bytes, gas used and, from
network version 18 (FIP-0049), the root of the AMT of events it emitted. Wire forms (ref-fvm
``shared/src/receipt.rs``; Lotus ``chain/types/message_receipt_cbor.go``):

- version 0, before network version 18 (fvm_shared v2): ``[exit_code, return, gas_used]``;
- version 1, from network version 18 (fvm_shared v3+): ``[exit_code, return, gas_used,
  events_root]``, the root a CID or null; always four fields, null when no events.

Lotus tells the versions apart by the array length when decoding, and so does this module.
Exit codes are ref-fvm's ``ExitCode`` constants (``shared/src/error/mod.rs``); receipts hold
plain ints because actors may exit with any code from 16 up.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Final

from fvm.network_version import EVENTS_FROM
from store import dag_cbor
from store.cid import CID
from store.errors import MalformedInput

MAX_U32: Final = (1 << 32) - 1
MAX_U64: Final = (1 << 64) - 1
MIN_I64: Final = -(1 << 63)
FIRST_USER_EXIT_CODE: Final = 16

RECEIPT_V0: Final = 0
RECEIPT_V1: Final = 1


class ExitCode(IntEnum):
    """Exit codes with a meaning fixed by the VM (below 16) or by the builtin actors' convention."""

    OK = 0
    SYS_SENDER_INVALID = 1
    SYS_SENDER_STATE_INVALID = 2
    # Named in fvm_shared v2; reserved (unused) from v3 on.
    SYS_INVALID_METHOD = 3
    SYS_ILLEGAL_INSTRUCTION = 4
    SYS_INVALID_RECEIVER = 5
    SYS_INSUFFICIENT_FUNDS = 6
    SYS_OUT_OF_GAS = 7
    SYS_ILLEGAL_EXIT_CODE = 9
    SYS_ASSERTION_FAILED = 10
    SYS_MISSING_RETURN = 11
    USR_ILLEGAL_ARGUMENT = 16
    USR_NOT_FOUND = 17
    USR_FORBIDDEN = 18
    USR_INSUFFICIENT_FUNDS = 19
    USR_ILLEGAL_STATE = 20
    USR_SERIALIZATION = 21
    USR_UNHANDLED_MESSAGE = 22
    USR_UNSPECIFIED = 23
    USR_ASSERTION_FAILED = 24
    # From fvm_shared v3 (network version 18).
    USR_READ_ONLY = 25
    USR_NOT_PAYABLE = 26


def is_system_error(exit_code: int) -> bool:
    """True for codes reserved to the VM (including OK), which actors may not abort with."""
    return exit_code < FIRST_USER_EXIT_CODE


class ReceiptError(MalformedInput):
    """Bytes that are not a message receipt."""


def receipt_version_for(network_version: int) -> int:
    """The receipt layout in force at ``network_version``."""
    return RECEIPT_V1 if network_version >= EVENTS_FROM else RECEIPT_V0


@dataclass(frozen=True, slots=True)
class Receipt:
    exit_code: int
    return_data: bytes
    gas_used: int
    events_root: CID | None = None
    version: int = RECEIPT_V1

    def to_cbor(self) -> list[Any]:
        """The DAG-CBOR data-model value in this receipt's layout (see :attr:`version`)."""
        if self.version == RECEIPT_V0:
            if self.events_root is not None:
                raise ReceiptError("a version 0 receipt cannot carry an events root")
            return [self.exit_code, bytes(self.return_data), self.gas_used]
        return [self.exit_code, bytes(self.return_data), self.gas_used, self.events_root]

    @classmethod
    def from_cbor(cls, value: Any, where: str | None = None) -> Receipt:
        if type(value) is not list or len(value) not in (3, 4):
            raise ReceiptError("receipt must be an array of 3 or 4 fields", where)
        exit_code, return_data, gas_used = value[:3]
        if type(exit_code) is not int or not 0 <= exit_code <= MAX_U32:
            raise ReceiptError("receipt exit code must be an unsigned 32-bit integer", where)
        if type(return_data) is not bytes:
            raise ReceiptError("receipt return data must be a byte string", where)
        if type(gas_used) is not int or not MIN_I64 <= gas_used <= MAX_U64:
            raise ReceiptError("receipt gas used must be a 64-bit integer", where)
        if len(value) == 3:
            return cls(exit_code, return_data, gas_used, None, RECEIPT_V0)
        events_root = value[3]
        if events_root is not None and type(events_root) is not CID:
            raise ReceiptError("receipt events root must be a CID or null", where)
        return cls(exit_code, return_data, gas_used, events_root, RECEIPT_V1)

    def encode(self) -> bytes:
        return dag_cbor.encode(self.to_cbor())

    @classmethod
    def decode(cls, data: bytes, where: str | None = None) -> Receipt:
        return cls.from_cbor(dag_cbor.decode(data, where), where)
