"""Receipts: the 3-field (before nv18) and 4-field (from nv18) layouts, and exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from fvm.conformance.vector import find_vectors, load_vector
from fvm.receipt import (
    RECEIPT_V0,
    RECEIPT_V1,
    ExitCode,
    Receipt,
    ReceiptError,
    is_system_error,
    receipt_version_for,
)
from store.cid import CID

# Lotus chain/types/message_receipt_test.go
RANDOM_CID = CID.parse("bafy2bzacecu7n7wbtogznrtuuvf73dsz7wasgyneqasksdblxupnyovmtwxxu")
RETURN = bytes([0x00, 0x01, 0x02, 0x04])


def test_version_0_receipt_is_a_3_array() -> None:
    receipt = Receipt(0, RETURN, 42, None, RECEIPT_V0)
    encoded = receipt.encode()
    assert encoded == bytes.fromhex("83004400010204182a")
    assert Receipt.decode(encoded) == receipt


def test_version_1_receipt_carries_the_events_root_or_null() -> None:
    with_root = Receipt(0, RETURN, 42, RANDOM_CID, RECEIPT_V1)
    encoded = with_root.encode()
    assert encoded == (bytes.fromhex("84004400010204182ad82a582700") + RANDOM_CID.to_bytes())
    assert Receipt.decode(encoded) == with_root
    without_root = Receipt(0, RETURN, 42)
    assert without_root.encode() == bytes.fromhex("84004400010204182af6")
    assert Receipt.decode(without_root.encode()) == without_root


def test_version_0_receipt_cannot_carry_an_events_root() -> None:
    with pytest.raises(ReceiptError, match="cannot carry an events root"):
        Receipt(0, RETURN, 42, RANDOM_CID, RECEIPT_V0).encode()


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ([0, b""], "3 or 4 fields"),
        ([0, b"", 1, None, None], "3 or 4 fields"),
        ([-1, b"", 1], "exit code"),
        ([1 << 32, b"", 1], "exit code"),
        ([0, "", 1], "return data"),
        ([0, b"", 1 << 64], "gas used"),
        ([0, b"", 1, b"\x01"], "events root"),
    ],
)
def test_malformed_receipts_are_rejected(value: list[object], error: str) -> None:
    with pytest.raises(ReceiptError, match=error):
        Receipt.from_cbor(value, "test")


def test_receipt_layout_follows_the_network_version() -> None:
    assert receipt_version_for(17) == RECEIPT_V0
    assert receipt_version_for(18) == RECEIPT_V1


def test_vector_receipts_encode_in_their_network_versions_layout(vectors_dir: Path) -> None:
    layouts: dict[int, int] = {}
    for path in find_vectors(vectors_dir):
        vector = load_vector(path)
        version = receipt_version_for(vector.variants[0].network_version)
        for expected in vector.receipts:
            receipt = Receipt(expected.exit_code, expected.return_data, expected.gas_used, None,
                              version)  # fmt: skip
            encoded = receipt.encode()
            assert encoded[0] == (0x83 if version == RECEIPT_V0 else 0x84)
            assert Receipt.decode(encoded) == receipt
            layouts[vector.variants[0].network_version] = version
    assert layouts == {17: RECEIPT_V0, 18: RECEIPT_V1}


def test_exit_codes_have_the_reference_values() -> None:
    assert ExitCode.SYS_OUT_OF_GAS.value == 7
    assert ExitCode.SYS_MISSING_RETURN.value == 11
    assert ExitCode.USR_ILLEGAL_ARGUMENT.value == 16
    assert ExitCode.USR_NOT_PAYABLE.value == 26
    assert is_system_error(ExitCode.SYS_ASSERTION_FAILED)
    assert is_system_error(ExitCode.OK)
    assert not is_system_error(ExitCode.USR_UNSPECIFIED)
    assert not is_system_error(1000)
