"""Messages: the unsigned ``Message`` the VM applies and the ``SignedMessage`` blocks carry.

Wire form (ref-fvm ``shared/src/message.rs``, Lotus ``chain/types/message.go``): the DAG-CBOR
array ``[version, to, from, sequence, value, gas_limit, gas_fee_cap, gas_premium, method_num,
params]`` with addresses and amounts as byte strings (see :mod:`fvm.address`,
:mod:`fvm.token`). A message's CID is the blake2b-256 DAG-CBOR CID of that encoding, computed
from the decoded fields (so non-canonical amounts inside a message do not survive into its CID,
as in both references).

``gas_limit`` is an ``i64`` in fvm_shared v2 and Lotus and a ``u64`` in fvm_shared v3; decoding
accepts either range and :meth:`Message.check` applies the rule both share (0 < limit ≤ 2^63-1).

``SignedMessage`` (Lotus ``chain/types/signedmessage.go``) is ``[message, signature]``. Its CID
is the CID of the unsigned message when the signature is BLS (BLS signatures are aggregated per
block and are not part of the message's identity), and of the signed encoding otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from fvm.address import BLS_ZERO_ADDRESS, Address, Protocol
from fvm.network_version import DELEGATED_ADDRESSES_FROM, NetworkVersion
from fvm.signature import Signature, SignatureType
from fvm.token import TOTAL_FILECOIN, TokenAmount, bigint_from_cbor, encode_bigint
from store import dag_cbor
from store.cid import CID
from store.errors import MalformedInput

MESSAGE_VERSION: Final = 0
MAX_U64: Final = (1 << 64) - 1
MAX_I64: Final = (1 << 63) - 1
MIN_I64: Final = -(1 << 63)
# Lotus ``buildconstants.BlockGasLimit``.
BLOCK_GAS_LIMIT: Final = 10_000_000_000
# cbor-gen's ``ByteArrayMaxLen``: Lotus refuses longer params when decoding a message.
LOTUS_MAX_BYTE_ARRAY: Final = 2 << 20

_MESSAGE_FIELDS: Final = 10


class MessageError(MalformedInput):
    """A message that does not decode, or that fails a validity rule."""


def _u64(value: Any, name: str, where: str | None) -> int:
    if type(value) is not int or not 0 <= value <= MAX_U64:
        raise MessageError(f"message {name} must be an unsigned 64-bit integer", where)
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """An unsigned message. ``from_`` is the sender (``from`` is a Python keyword)."""

    version: int = MESSAGE_VERSION
    to: Address
    from_: Address
    sequence: int = 0
    value: TokenAmount = 0
    gas_limit: int = 0
    gas_fee_cap: TokenAmount = 0
    gas_premium: TokenAmount = 0
    method_num: int = 0
    params: bytes = b""
    _encoded: bytes | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def nonce(self) -> int:
        """Lotus's name for :attr:`sequence`."""
        return self.sequence

    # -- CBOR -----------------------------------------------------------------------------

    def to_cbor(self) -> list[Any]:
        """The DAG-CBOR data-model value: the 10-element array."""
        for name in ("version", "sequence", "method_num"):
            value = getattr(self, name)
            if not 0 <= value <= MAX_U64:
                raise MessageError(f"message {name} {value} is outside the u64 range")
        if not MIN_I64 <= self.gas_limit <= MAX_U64:
            raise MessageError(f"message gas limit {self.gas_limit} cannot be encoded")
        return [
            self.version,
            self.to.to_bytes(),
            self.from_.to_bytes(),
            self.sequence,
            encode_bigint(self.value),
            self.gas_limit,
            encode_bigint(self.gas_fee_cap),
            encode_bigint(self.gas_premium),
            self.method_num,
            bytes(self.params),
        ]

    @classmethod
    def from_cbor(cls, value: Any, where: str | None = None) -> Message:
        """The message in a decoded DAG-CBOR value."""
        if type(value) is not list or len(value) != _MESSAGE_FIELDS:
            raise MessageError(f"message must be an array of {_MESSAGE_FIELDS} fields", where)
        (version, to, sender, sequence, amount, gas_limit, fee_cap, premium, method, params) = value
        if type(gas_limit) is not int or not MIN_I64 <= gas_limit <= MAX_U64:
            raise MessageError("message gas limit must be a 64-bit integer", where)
        if type(params) is not bytes:
            raise MessageError("message params must be a byte string", where)
        return cls(
            version=_u64(version, "version", where),
            to=Address.from_cbor(to, where),
            from_=Address.from_cbor(sender, where),
            sequence=_u64(sequence, "sequence", where),
            value=bigint_from_cbor(amount, where),
            gas_limit=gas_limit,
            gas_fee_cap=bigint_from_cbor(fee_cap, where),
            gas_premium=bigint_from_cbor(premium, where),
            method_num=_u64(method, "method number", where),
            params=params,
        )

    def encode(self) -> bytes:
        """The DAG-CBOR encoding (computed once)."""
        encoded = self._encoded
        if encoded is None:
            encoded = dag_cbor.encode(self.to_cbor())
            object.__setattr__(self, "_encoded", encoded)
        return encoded

    @classmethod
    def decode(cls, data: bytes, where: str | None = None) -> Message:
        """Parse a DAG-CBOR encoded message."""
        return cls.from_cbor(dag_cbor.decode(data, where), where)

    def cid(self) -> CID:
        return CID.hash_of(self.encode())

    def chain_length(self) -> int:
        """The encoded size, which on-chain message gas is charged for."""
        return len(self.encode())

    # -- validity -------------------------------------------------------------------------

    def check(self) -> None:
        """ref-fvm's ``Message::check``: the gas limit must be positive and fit an i64."""
        if self.gas_limit == 0:
            raise MessageError("message has no gas limit set")
        if self.gas_limit < 0:
            raise MessageError("message has negative gas limit")
        if self.gas_limit > MAX_I64:
            raise MessageError("message gas exceeds i64 max")

    def valid_for_block_inclusion(
        self, min_gas: int, network_version: int, block_gas_limit: int = BLOCK_GAS_LIMIT
    ) -> None:
        """Lotus's ``ValidForBlockInclusion``, plus what Lotus refuses when decoding.

        ``min_gas`` is the gas charged for storing the message on chain. Raises
        :class:`MessageError` naming the first rule broken.
        """
        if self.version != MESSAGE_VERSION:
            raise MessageError("'Version' unsupported")
        if self.to == BLS_ZERO_ADDRESS and network_version >= NetworkVersion.V7:
            raise MessageError("invalid 'To' address")
        for name, addr in (("To", self.to), ("From", self.from_)):
            if not address_valid_for_network_version(addr, network_version):
                raise MessageError(f"'{name}' address protocol unsupported for network version")
            if not addr.lotus_accepts():
                raise MessageError(f"'{name}' address ID does not fit in an int64")
        if self.value < 0:
            raise MessageError("'Value' field cannot be negative")
        if self.value > TOTAL_FILECOIN:
            raise MessageError("'Value' field cannot be greater than total filecoin supply")
        if self.gas_fee_cap < 0:
            raise MessageError("'GasFeeCap' field cannot be negative")
        if self.gas_premium < 0:
            raise MessageError("'GasPremium' field cannot be negative")
        if self.gas_premium > self.gas_fee_cap:
            raise MessageError("'GasFeeCap' less than 'GasPremium'")
        if self.gas_limit > block_gas_limit:
            raise MessageError(
                f"'GasLimit' field cannot be greater than a block's gas limit "
                f"({self.gas_limit} > {block_gas_limit})"
            )
        if self.gas_limit <= 0:
            raise MessageError(f"'GasLimit' field {self.gas_limit} must be positive")
        if self.gas_limit < min_gas:
            raise MessageError(
                f"'GasLimit' field cannot be less than the cost of storing a message on chain "
                f"{self.gas_limit} < {min_gas}"
            )
        if len(self.params) > LOTUS_MAX_BYTE_ARRAY:
            raise MessageError(f"params of {len(self.params)} bytes are too large for Lotus")

    # -- fees -----------------------------------------------------------------------------

    def required_funds(self) -> TokenAmount:
        """The most the sender can be charged for gas: fee cap times gas limit."""
        return self.gas_fee_cap * self.gas_limit

    def effective_gas_premium(self, base_fee: TokenAmount) -> TokenAmount:
        """The premium the block producer earns per gas unit: capped at fee cap - base fee."""
        available = max(self.gas_fee_cap - base_fee, 0)
        return self.gas_premium if self.gas_premium <= available else available


def address_valid_for_network_version(addr: Address, network_version: int) -> bool:
    """go-state-types ``AddressValidForNetworkVersion``: f4 addresses only from version 18."""
    if addr.protocol is Protocol.DELEGATED:
        return network_version >= DELEGATED_ADDRESSES_FROM
    return True


@dataclass(frozen=True, slots=True)
class SignedMessage:
    message: Message
    signature: Signature

    def to_cbor(self) -> list[Any]:
        return [self.message.to_cbor(), self.signature.to_cbor()]

    @classmethod
    def from_cbor(cls, value: Any, where: str | None = None) -> SignedMessage:
        if type(value) is not list or len(value) != 2:
            raise MessageError("signed message must be the array [message, signature]", where)
        return cls(Message.from_cbor(value[0], where), Signature.from_cbor(value[1], where))

    def encode(self) -> bytes:
        return dag_cbor.encode(self.to_cbor())

    @classmethod
    def decode(cls, data: bytes, where: str | None = None) -> SignedMessage:
        return cls.from_cbor(dag_cbor.decode(data, where), where)

    def cid(self) -> CID:
        """The unsigned message's CID for BLS signatures, the signed encoding's otherwise."""
        if self.signature.sig_type is SignatureType.BLS:
            return self.message.cid()
        return CID.hash_of(self.encode())

    def chain_length(self) -> int:
        """Lotus ``ChainLength``: BLS messages are charged without their signature."""
        if self.signature.sig_type is SignatureType.BLS:
            return self.message.chain_length()
        return len(self.encode())
