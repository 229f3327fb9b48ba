"""Filecoin addresses: the five protocols, their byte form, their string form and their CBOR form.

Ported from ref-fvm's ``fvm_shared::address`` (``shared/src/address/``: ``mod.rs``,
``payload.rs``, ``protocol.rs``, ``network.rs``, ``errors.rs``) at fvm_shared v3, whose
acceptance rules the FVM applies to every address an actor hands it; the string form also
matches go-address (Lotus).

Byte form: one protocol byte, then the payload:

- ID (0): the actor ID as an unsigned LEB128 varint (at most 10 bytes, minimally encoded);
- SECP256K1 (1) and ACTOR (2): a 20-byte blake2b-160 hash (of the public key / of actor data);
- BLS (3): the 48-byte public key;
- DELEGATED (4): the namespace (an actor ID) as a varint, then a sub-address of at most 54 bytes.

String form: network prefix ``f`` (mainnet) or ``t`` (testnet), the protocol digit, then the
decimal ID for ID addresses, or the lowercase unpadded base32 of payload + checksum, where the
checksum is the 4-byte blake2b of the byte form; a delegated address is ``f4<namespace>f<base32
of sub-address + checksum>``. In DAG-CBOR an address is a byte string holding the byte form.

Strictness is ref-fvm's, on purpose, including its quirks: ID and namespace varints may use the
full 64 bits; a 10-byte varint whose last byte carries more than the 64th bit is accepted and the
extra bits are dropped (``unsigned_varint`` shifts them out), so such input does not re-encode
to itself; the decimal ID in a string may carry a leading ``+`` (Rust's ``u64::from_str``).
go-address (Lotus) additionally refuses IDs and namespaces of 2^63 and more: see
:meth:`Address.lotus_accepts`. Protocol 4 exists from network version 18 (fvm_shared v3); v2
rejected it as an unknown protocol.
"""

from __future__ import annotations

import base64
import hashlib
from enum import Enum, IntEnum
from typing import Any, Final

from store import dag_cbor
from store.errors import MalformedInput
from store.varint import encode_uvarint

PAYLOAD_HASH_LEN: Final = 20
SECP_PUB_LEN: Final = 65
BLS_PUB_LEN: Final = 48
MAX_SUBADDRESS_LEN: Final = 54
CHECKSUM_HASH_LEN: Final = 4
# Longest byte form: protocol byte + 10-byte varint namespace + 54-byte sub-address.
MAX_ADDRESS_LEN: Final = 65
MAX_ADDRESS_TEXT_LEN: Final = 138
# The longest decimal u64 ("18446744073709551615").
MAX_U64_DECIMAL_LEN: Final = 20
FIRST_NON_SINGLETON_ADDR: Final = 100
MAX_U64: Final = (1 << 64) - 1
# go-address refuses IDs and namespaces above this (they must fit an int64).
MAX_LOTUS_ID: Final = (1 << 63) - 1

_BASE32_ALPHABET: Final = "abcdefghijklmnopqrstuvwxyz234567"
_BASE32_SYMBOLS: Final = frozenset(_BASE32_ALPHABET)
_DECIMAL_DIGITS: Final = frozenset("0123456789")
# Lengths (mod 8) of unpadded base32 text that no byte string encodes to.
_IMPOSSIBLE_BASE32_TAILS: Final = frozenset((1, 3, 6))
_MAX_VARINT_U64_BYTES: Final = 10


class Protocol(IntEnum):
    """The address protocol, the first byte of the byte form and the digit after the prefix."""

    ID = 0
    SECP256K1 = 1
    ACTOR = 2
    BLS = 3
    DELEGATED = 4


class Network(Enum):
    """Which network's prefix an address string carries; the byte form does not record it."""

    MAINNET = "f"
    TESTNET = "t"


class AddressErrorKind(Enum):
    """ref-fvm's ``address::Error`` variants, so callers can tell failures apart."""

    UNKNOWN_NETWORK = "unknown address network"
    UNKNOWN_PROTOCOL = "unknown address protocol"
    INVALID_PAYLOAD = "invalid address payload"
    INVALID_LENGTH = "invalid address length"
    INVALID_PAYLOAD_LENGTH = "invalid payload length"
    INVALID_BLS_LENGTH = "invalid BLS public key length"
    INVALID_SECP_LENGTH = "invalid secp256k1 public key length"
    INVALID_CHECKSUM = "invalid address checksum"
    BASE32_DECODING = "invalid base32 in address"
    NON_ID_ADDRESS = "not an ID address"
    NON_DELEGATED_ADDRESS = "not a delegated address"


class AddressError(MalformedInput):
    """Bytes or text that are not a valid address; ``kind`` says which rule failed."""

    def __init__(self, kind: AddressErrorKind, detail: str = "", where: str | None = None) -> None:
        self.kind = kind
        super().__init__(f"{kind.value}: {detail}" if detail else kind.value, where)


_current_network = Network.MAINNET


def current_network() -> Network:
    """The network whose prefix ``str(address)`` writes (mainnet unless changed)."""
    return _current_network


def set_current_network(network: Network) -> None:
    """Choose the prefix ``str(address)`` writes, as ref-fvm's ``set_current_network``."""
    global _current_network
    _current_network = network


def encode_leb128(value: int) -> bytes:
    """The unsigned LEB128 varint of ``value`` (0 ≤ value < 2^64)."""
    if not 0 <= value <= MAX_U64:
        raise ValueError(f"varint value {value} is outside the u64 range")
    return encode_uvarint(value)


def decode_leb128_u64(data: bytes, start: int, where: str | None = None) -> tuple[int, int]:
    """Decode a u64 varint at ``start`` as ``unsigned_varint::decode::u64`` does.

    Returns ``(value, end)``. Rejects truncated input, a continuation bit on the 10th byte, and
    a zero final byte after the first (not minimal). Bits beyond the 64th, which only a 10th
    byte above 1 can carry, are dropped as the Rust decoder drops them.
    """
    value = 0
    shift = 0
    end = len(data)
    pos = start
    while pos < end:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if byte < 0x80:
            if byte == 0 and pos - start > 1:
                raise AddressError(
                    AddressErrorKind.INVALID_PAYLOAD, "varint is not minimally encoded", where
                )
            return value & MAX_U64, pos
        if pos - start == _MAX_VARINT_U64_BYTES:
            raise AddressError(
                AddressErrorKind.INVALID_PAYLOAD, "varint longer than 10 bytes", where
            )
        shift += 7
    raise AddressError(AddressErrorKind.INVALID_PAYLOAD, "truncated varint", where)


def _checksum(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=CHECKSUM_HASH_LEN).digest()


def _address_hash(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=PAYLOAD_HASH_LEN).digest()


def _base32_encode(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").lower().rstrip("=")


def _base32_decode(text: str, where: str) -> bytes:
    """Decode unpadded lowercase base32 as ref-fvm's ``data_encoding`` does (strictly)."""
    if not _BASE32_SYMBOLS.issuperset(text):
        position = next(i for i, char in enumerate(text) if char not in _BASE32_SYMBOLS)
        raise AddressError(
            AddressErrorKind.BASE32_DECODING, f"invalid symbol at position {position}", where
        )
    if len(text) % 8 in _IMPOSSIBLE_BASE32_TAILS:
        raise AddressError(
            AddressErrorKind.BASE32_DECODING,
            f"no byte string has {len(text)} base32 symbols",
            where,
        )
    decoded = base64.b32decode(text.upper() + "=" * (-len(text) % 8))
    if _base32_encode(decoded) != text:
        raise AddressError(
            AddressErrorKind.BASE32_DECODING, "non-zero trailing bits in base32", where
        )
    return decoded


def _parse_u64_decimal(text: str, where: str) -> int:
    """Rust's ``u64::from_str``: an optional ``+`` then at least one ASCII digit, in range."""
    digits = text[1:] if text.startswith("+") else text
    if not digits or not _DECIMAL_DIGITS.issuperset(digits):
        raise AddressError(AddressErrorKind.INVALID_PAYLOAD, f"{text!r} is not a u64", where)
    value = int(digits)
    if value > MAX_U64:
        raise AddressError(AddressErrorKind.INVALID_PAYLOAD, f"{text} exceeds 2^64-1", where)
    return value


class Address:
    """An immutable Filecoin address, compared and hashed by its byte form.

    ``number`` holds the actor ID of an ID address and the namespace of a delegated address.
    """

    __slots__ = ("_bytes", "_hash", "number", "protocol")

    _bytes: bytes
    _hash: int
    protocol: Protocol
    number: int

    def __init__(self, *_: object) -> None:
        raise TypeError("use Address.from_bytes, Address.parse or an Address.new_* constructor")

    @classmethod
    def _make(cls, raw: bytes, protocol: Protocol, number: int = 0) -> Address:
        addr = object.__new__(cls)
        setter = object.__setattr__
        setter(addr, "_bytes", raw)
        setter(addr, "_hash", hash(raw))
        setter(addr, "protocol", protocol)
        setter(addr, "number", number)
        return addr

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Address is immutable")

    # -- constructors ---------------------------------------------------------------------

    @classmethod
    def new_id(cls, actor_id: int) -> Address:
        if not 0 <= actor_id <= MAX_U64:
            raise ValueError(f"actor ID {actor_id} is outside the u64 range")
        return cls._make(b"\x00" + encode_leb128(actor_id), Protocol.ID, actor_id)

    @classmethod
    def new_secp256k1(cls, pubkey: bytes) -> Address:
        """The f1 address of an uncompressed (65-byte) secp256k1 public key."""
        if len(pubkey) != SECP_PUB_LEN:
            raise AddressError(
                AddressErrorKind.INVALID_SECP_LENGTH,
                f"wanted {SECP_PUB_LEN} bytes, got {len(pubkey)}",
            )
        return cls._make(b"\x01" + _address_hash(pubkey), Protocol.SECP256K1)

    @classmethod
    def new_actor(cls, data: bytes) -> Address:
        """The f2 address whose payload is the blake2b-160 hash of ``data``."""
        return cls._make(b"\x02" + _address_hash(data), Protocol.ACTOR)

    @classmethod
    def new_bls(cls, pubkey: bytes) -> Address:
        """The f3 address of a 48-byte BLS public key."""
        if len(pubkey) != BLS_PUB_LEN:
            raise AddressError(
                AddressErrorKind.INVALID_BLS_LENGTH,
                f"wanted {BLS_PUB_LEN} bytes, got {len(pubkey)}",
            )
        return cls._make(b"\x03" + bytes(pubkey), Protocol.BLS)

    @classmethod
    def new_delegated(cls, namespace: int, subaddress: bytes) -> Address:
        """The f4 address of ``subaddress`` in the namespace of actor ``namespace``."""
        if not 0 <= namespace <= MAX_U64:
            raise ValueError(f"namespace {namespace} is outside the u64 range")
        if len(subaddress) > MAX_SUBADDRESS_LEN:
            raise AddressError(
                AddressErrorKind.INVALID_PAYLOAD_LENGTH,
                f"sub-address of {len(subaddress)} bytes exceeds {MAX_SUBADDRESS_LEN}",
            )
        raw = b"\x04" + encode_leb128(namespace) + bytes(subaddress)
        return cls._make(raw, Protocol.DELEGATED, namespace)

    # -- byte form ------------------------------------------------------------------------

    @classmethod
    def from_bytes(cls, data: bytes, where: str | None = None) -> Address:
        """Parse the byte form (protocol byte + payload) with ref-fvm's rules."""
        if len(data) < 2:
            raise AddressError(
                AddressErrorKind.INVALID_LENGTH, f"{len(data)} bytes is too short", where
            )
        code = data[0]
        size = len(data) - 1
        if code == 0:
            actor_id, end = decode_leb128_u64(data, 1, where)
            if end != len(data):
                raise AddressError(
                    AddressErrorKind.INVALID_PAYLOAD,
                    f"{len(data) - end} bytes after the ID varint",
                    where,
                )
            if size == _MAX_VARINT_U64_BYTES:
                return cls.new_id(actor_id)
            return cls._make(bytes(data), Protocol.ID, actor_id)
        if code == 1 or code == 2:
            if size != PAYLOAD_HASH_LEN:
                raise AddressError(
                    AddressErrorKind.INVALID_PAYLOAD_LENGTH,
                    f"{Protocol(code).name} payload must be {PAYLOAD_HASH_LEN} bytes, got {size}",
                    where,
                )
            return cls._make(bytes(data), Protocol(code))
        if code == 3:
            if size != BLS_PUB_LEN:
                raise AddressError(
                    AddressErrorKind.INVALID_PAYLOAD_LENGTH,
                    f"BLS payload must be {BLS_PUB_LEN} bytes, got {size}",
                    where,
                )
            return cls._make(bytes(data), Protocol.BLS)
        if code == 4:
            namespace, end = decode_leb128_u64(data, 1, where)
            sub_size = len(data) - end
            if sub_size > MAX_SUBADDRESS_LEN:
                raise AddressError(
                    AddressErrorKind.INVALID_PAYLOAD_LENGTH,
                    f"sub-address of {sub_size} bytes exceeds {MAX_SUBADDRESS_LEN}",
                    where,
                )
            if end - 1 < _MAX_VARINT_U64_BYTES:
                raw = bytes(data)
            else:
                raw = b"\x04" + encode_leb128(namespace) + bytes(data[end:])
            return cls._make(raw, Protocol.DELEGATED, namespace)
        raise AddressError(AddressErrorKind.UNKNOWN_PROTOCOL, f"protocol byte {code}", where)

    def to_bytes(self) -> bytes:
        return self._bytes

    def __bytes__(self) -> bytes:
        return self._bytes

    @property
    def payload(self) -> bytes:
        """The byte form without its protocol byte (ref-fvm's ``payload_bytes``)."""
        return self._bytes[1:]

    # -- protocol-specific views ------------------------------------------------------------

    @property
    def id(self) -> int:
        """The actor ID of an ID address."""
        if self.protocol is not Protocol.ID:
            raise AddressError(AddressErrorKind.NON_ID_ADDRESS, str(self))
        return self.number

    @property
    def is_id(self) -> bool:
        return self.protocol is Protocol.ID

    @property
    def namespace(self) -> int:
        """The namespace (an actor ID) of a delegated address."""
        if self.protocol is not Protocol.DELEGATED:
            raise AddressError(AddressErrorKind.NON_DELEGATED_ADDRESS, str(self))
        return self.number

    @property
    def subaddress(self) -> bytes:
        """The sub-address of a delegated address."""
        if self.protocol is not Protocol.DELEGATED:
            raise AddressError(AddressErrorKind.NON_DELEGATED_ADDRESS, str(self))
        return self._bytes[len(encode_leb128(self.number)) + 1 :]

    def is_bls_zero_address(self) -> bool:
        """True for the BLS "zero" address the chain treats as a burn address."""
        return self._bytes == BLS_ZERO_ADDRESS_BYTES

    def lotus_accepts(self) -> bool:
        """Whether go-address (Lotus) would also decode this address.

        It refuses IDs and delegated namespaces above 2^63 - 1, which ref-fvm accepts.
        """
        if self.protocol is Protocol.ID or self.protocol is Protocol.DELEGATED:
            return self.number <= MAX_LOTUS_ID
        return True

    # -- string form ----------------------------------------------------------------------

    def to_string(self, network: Network | None = None) -> str:
        """The ``f…``/``t…`` form; the current network's prefix unless ``network`` is given."""
        prefix = (network or _current_network).value
        protocol = self.protocol
        if protocol is Protocol.ID:
            return f"{prefix}0{self.number}"
        checksum = _checksum(self._bytes)
        if protocol is Protocol.DELEGATED:
            encoded = _base32_encode(self.subaddress + checksum)
            return f"{prefix}4{self.number}f{encoded}"
        return f"{prefix}{int(protocol)}{_base32_encode(self._bytes[1:] + checksum)}"

    def __str__(self) -> str:
        return self.to_string()

    def __repr__(self) -> str:
        return f"Address({self.to_string()})"

    @classmethod
    def parse(cls, text: str, network: Network | None = None) -> Address:
        """Parse the string form.

        With ``network`` given the prefix must be that network's (ref-fvm's
        ``Network::parse_address``); without it either prefix is accepted (as go-address does).
        """
        addr, found = cls.parse_with_network(text)
        if network is not None and found is not network:
            raise AddressError(
                AddressErrorKind.UNKNOWN_NETWORK, f"expected prefix {network.value!r}", text
            )
        return addr

    @classmethod
    def parse_with_network(cls, text: str) -> tuple[Address, Network]:
        """Parse the string form and return the address with the network its prefix names."""
        where = text
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > MAX_ADDRESS_TEXT_LEN or size < 3:
            raise AddressError(AddressErrorKind.INVALID_LENGTH, f"{size} bytes of text", where)
        if text[0] == "f":
            network = Network.MAINNET
        elif text[0] == "t":
            network = Network.TESTNET
        else:
            raise AddressError(AddressErrorKind.UNKNOWN_NETWORK, f"prefix {text[0]!r}", where)
        digit = text[1]
        if digit not in "01234":
            raise AddressError(AddressErrorKind.UNKNOWN_PROTOCOL, f"protocol {digit!r}", where)
        protocol = Protocol(int(digit))
        raw = text[2:]
        if protocol is Protocol.ID:
            if len(raw) > MAX_U64_DECIMAL_LEN:
                raise AddressError(
                    AddressErrorKind.INVALID_LENGTH, f"ID of {len(raw)} characters", where
                )
            return cls.new_id(_parse_u64_decimal(raw, where)), network
        if protocol is Protocol.DELEGATED:
            namespace_text, separator, sub_text = raw.partition("f")
            if not separator:
                raise AddressError(
                    AddressErrorKind.INVALID_PAYLOAD, "no 'f' after the namespace", where
                )
            if len(namespace_text) > MAX_U64_DECIMAL_LEN:
                raise AddressError(
                    AddressErrorKind.INVALID_LENGTH,
                    f"namespace of {len(namespace_text)} characters",
                    where,
                )
            namespace = _parse_u64_decimal(namespace_text, where)
            prefix_bytes = b"\x04" + encode_leb128(namespace)
            subaddress = _split_checksum(prefix_bytes, _base32_decode(sub_text, where), where)
            if len(subaddress) > MAX_SUBADDRESS_LEN:
                raise AddressError(
                    AddressErrorKind.INVALID_PAYLOAD_LENGTH,
                    f"sub-address of {len(subaddress)} bytes exceeds {MAX_SUBADDRESS_LEN}",
                    where,
                )
            return cls._make(prefix_bytes + subaddress, protocol, namespace), network
        code = bytes((int(protocol),))
        payload = _split_checksum(code, _base32_decode(raw, where), where)
        expected = BLS_PUB_LEN if protocol is Protocol.BLS else PAYLOAD_HASH_LEN
        if len(payload) != expected:
            raise AddressError(
                AddressErrorKind.INVALID_PAYLOAD,
                f"{protocol.name} payload must be {expected} bytes, got {len(payload)}",
                where,
            )
        return cls._make(code + payload, protocol), network

    # -- CBOR form ------------------------------------------------------------------------

    def to_cbor(self) -> bytes:
        """The DAG-CBOR data-model value: a byte string holding the byte form."""
        return self._bytes

    @classmethod
    def from_cbor(cls, value: Any, where: str | None = None) -> Address:
        """The address in a decoded DAG-CBOR value (a byte string)."""
        if type(value) is not bytes:
            raise AddressError(
                AddressErrorKind.INVALID_PAYLOAD,
                f"address must be a CBOR byte string, not {type(value).__name__}",
                where,
            )
        return cls.from_bytes(value, where)

    def encode(self) -> bytes:
        """The DAG-CBOR encoding (a byte string)."""
        return dag_cbor.encode(self._bytes)

    @classmethod
    def decode(cls, data: bytes, where: str | None = None) -> Address:
        """Parse a DAG-CBOR encoded address."""
        return cls.from_cbor(dag_cbor.decode(data, where), where)

    # -- comparison -----------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Address) and other._bytes == self._bytes

    def __hash__(self) -> int:
        return self._hash

    def _order_key(self) -> tuple[int, int, int, bytes]:
        """ref-fvm's derived ``Ord``: protocol, then ID / namespace, sub-address length, bytes."""
        protocol = int(self.protocol)
        if self.protocol is Protocol.ID:
            return (protocol, self.number, 0, b"")
        if self.protocol is Protocol.DELEGATED:
            sub = self.subaddress
            return (protocol, self.number, len(sub), sub)
        return (protocol, 0, 0, self._bytes)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Address):
            return NotImplemented
        return self._order_key() < other._order_key()

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Address):
            return NotImplemented
        return self._order_key() <= other._order_key()

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Address):
            return NotImplemented
        return self._order_key() > other._order_key()

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Address):
            return NotImplemented
        return self._order_key() >= other._order_key()

    def __reduce__(self) -> tuple[object, tuple[bytes]]:
        return (Address.from_bytes, (self._bytes,))


def _split_checksum(prefix: bytes, decoded: bytes, where: str) -> bytes:
    """Check the trailing checksum of ``decoded`` against ``prefix + payload``; return payload."""
    if len(decoded) < CHECKSUM_HASH_LEN:
        raise AddressError(
            AddressErrorKind.INVALID_LENGTH,
            f"{len(decoded)} decoded bytes cannot hold a checksum",
            where,
        )
    payload = decoded[:-CHECKSUM_HASH_LEN]
    if _checksum(prefix + payload) != decoded[-CHECKSUM_HASH_LEN:]:
        raise AddressError(AddressErrorKind.INVALID_CHECKSUM, "", where)
    return payload


BLS_ZERO_ADDRESS: Final = Address.parse(
    "f3yaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaby2smx7a"
)
BLS_ZERO_ADDRESS_BYTES: Final = BLS_ZERO_ADDRESS.to_bytes()

# Singleton builtin actors (ID addresses), as ref-fvm and builtin-actors number them.
SYSTEM_ACTOR_ADDR: Final = Address.new_id(0)
INIT_ACTOR_ADDR: Final = Address.new_id(1)
REWARD_ACTOR_ADDR: Final = Address.new_id(2)
CRON_ACTOR_ADDR: Final = Address.new_id(3)
STORAGE_POWER_ACTOR_ADDR: Final = Address.new_id(4)
STORAGE_MARKET_ACTOR_ADDR: Final = Address.new_id(5)
VERIFIED_REGISTRY_ACTOR_ADDR: Final = Address.new_id(6)
DATACAP_TOKEN_ACTOR_ADDR: Final = Address.new_id(7)
EAM_ACTOR_ADDR: Final = Address.new_id(10)
BURNT_FUNDS_ACTOR_ADDR: Final = Address.new_id(99)
