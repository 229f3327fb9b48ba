"""A block's message lists and a tipset's receipts as the chain stores them: legacy v0 AMTs.

Lotus builds a block's ``Messages`` link with ``computeMsgMeta`` (``chain/sync.go``): the CIDs
of the BLS messages and of the secp256k1 messages each go into an array made with
``blockadt.MakeEmptyArray``, where ``blockadt`` is specs-actors v0's ``actors/util/adt``, i.e.
go-amt-ipld v2: the legacy AMT whose root is ``[height, count, node]`` with the bit width fixed
at 3. The two roots form ``MsgMeta`` ``[BlsMessages, SecpkMessages]``, whose CID the header
carries. ``ChainStore.ReadMsgMetaCids`` / ``readAMTCids`` (``chain/store/messages.go``) read it
back the same way, checking that the array holds as many CIDs as its count says.

The receipts a tipset's execution produces go into the same kind of array
(``ApplyBlocks`` in ``chain/consensus/compute_state.go``: ``blockadt.MakeEmptyArray``, one
receipt per applied message in order); the next tipset's headers carry its root as
``ParentMessageReceipts``. Real data fixes the layout: the mainnet and calibnet genesis blocks
link to ``bafy2bzacedswlcz5ddgqnyo3sak3jmhmkxashisnlpq6ujgyhe4mlobzpnhs6`` for both message
lists and for the receipts, the block ``83 00 00 83 41 00 80 80`` — an empty *legacy* AMT (a
v3 root would start with the bit width, ``84 03``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from chainsync.chain_types import ChainTypeError, MsgMeta
from fvm.message import Message, MessageError, SignedMessage
from fvm.receipt import Receipt, ReceiptError
from fvm.signature import SignatureType
from store.amt import Amt
from store.blockstore import Blockstore, get_required, put
from store.cid import CID
from store.errors import BlockNotFound, MalformedInput

T = TypeVar("T")


class BlockMessagesError(MalformedInput):
    """A MsgMeta, message-list AMT, message or receipts array that is not well formed."""


class MissingBlockMessages(BlockNotFound):
    """A block of a block's message lists (MsgMeta, AMT node, message) the store lacks."""

    def __init__(self, cid: object, what: str) -> None:
        super().__init__(cid)
        self.what = what

    def __str__(self) -> str:
        return f"{self.what} not found: {self.cid}"


def compute_msg_meta(store: Blockstore, bls_cids: Sequence[CID], secp_cids: Sequence[CID]) -> CID:
    """Store both CID arrays and their MsgMeta in ``store``; return the MsgMeta's CID (what a
    block header's ``Messages`` must be)."""
    bls_root = Amt.from_list(store, list(bls_cids), legacy=True).flush()
    secp_root = Amt.from_list(store, list(secp_cids), legacy=True).flush()
    return put(store, MsgMeta(bls_root, secp_root).encode())


def message_storage_block(message: Message | SignedMessage) -> tuple[CID, bytes]:
    """The block a message is stored as (Lotus ``ToStorageBlock``): a BLS-signed message is
    stored unsigned, under the unsigned message's CID."""
    if isinstance(message, SignedMessage) and message.signature.sig_type is not SignatureType.BLS:
        return message.cid(), message.encode()
    unsigned = message.message if isinstance(message, SignedMessage) else message
    return unsigned.cid(), unsigned.encode()


def read_msg_meta_cids(store: Blockstore, messages_cid: CID) -> tuple[list[CID], list[CID]]:
    """The BLS and secp256k1 message CIDs that the MsgMeta at ``messages_cid`` lists."""
    raw = _get(store, messages_cid, "MsgMeta")
    try:
        meta = MsgMeta.decode(raw, str(messages_cid))
    except ChainTypeError as exc:
        raise BlockMessagesError(exc.what, exc.where) from None
    return (
        _read_cid_array(store, meta.bls_messages_root, "BLS message list"),
        _read_cid_array(store, meta.secp_messages_root, "secp256k1 message list"),
    )


def load_block_messages(
    store: Blockstore, messages_cid: CID
) -> tuple[list[Message], list[SignedMessage]]:
    """A block's BLS messages (unsigned) and secp256k1 messages (signed), in block order."""
    bls_cids, secp_cids = read_msg_meta_cids(store, messages_cid)
    bls: list[Message] = []
    for cid in bls_cids:
        try:
            bls.append(Message.decode(_get(store, cid, "BLS message"), str(cid)))
        except MessageError as exc:
            raise BlockMessagesError(f"BLS message: {exc.what}", str(cid)) from None
    secp: list[SignedMessage] = []
    for cid in secp_cids:
        try:
            secp.append(SignedMessage.decode(_get(store, cid, "secp256k1 message"), str(cid)))
        except MalformedInput as exc:
            raise BlockMessagesError(f"signed message: {exc.what}", str(cid)) from None
    return bls, secp


def receipts_root(store: Blockstore, receipts: Sequence[Receipt]) -> CID:
    """Store the receipts array and return its root (a header's ``ParentMessageReceipts``)."""
    return Amt.from_list(store, [receipt.to_cbor() for receipt in receipts], legacy=True).flush()


def load_receipts(store: Blockstore, root: CID) -> list[Receipt]:
    """The receipts in the array at ``root`` (Lotus ``ReadReceipts``)."""

    def receipt(index: int, value: Any) -> Receipt:
        try:
            return Receipt.from_cbor(value, f"{root}[{index}]")
        except ReceiptError as exc:
            raise BlockMessagesError(exc.what, exc.where) from None

    return _read_legacy_array(store, root, "receipts array", receipt)


def _get(store: Blockstore, cid: CID, what: str) -> bytes:
    try:
        return get_required(store, cid)
    except BlockNotFound:
        raise MissingBlockMessages(cid, what) from None


def _load_legacy_amt(store: Blockstore, root: CID, what: str) -> Amt:
    try:
        return Amt(store, root, legacy=True)
    except BlockNotFound:
        raise MissingBlockMessages(root, what) from None
    except MalformedInput as exc:
        raise BlockMessagesError(f"{what}: {exc.what}", exc.where or str(root)) from None


def _read_cid_array(store: Blockstore, root: CID, what: str) -> list[CID]:
    def cid(index: int, value: Any) -> CID:
        if type(value) is not CID:
            raise BlockMessagesError(f"{what} entry {index} is not a CID", str(root))
        return value

    return _read_legacy_array(store, root, what, cid)


def _read_legacy_array(
    store: Blockstore, root: CID, what: str, entry: Callable[[int, Any], T]
) -> list[T]:
    """Every entry of the legacy AMT at ``root``, converted, checked against the root's count."""
    amt = _load_legacy_amt(store, root, what)
    entries: list[T] = []
    try:
        for index, value in amt.items():
            entries.append(entry(index, value))
    except BlockNotFound as exc:
        raise MissingBlockMessages(exc.cid, f"{what} node") from None
    except BlockMessagesError:
        raise
    except MalformedInput as exc:
        raise BlockMessagesError(f"{what}: {exc.what}", exc.where or str(root)) from None
    if len(entries) != len(amt):
        raise BlockMessagesError(
            f"{what} holds {len(entries)} entries, its count says {len(amt)}", str(root)
        )
    return entries
