"""The FVM syscall ABI as data: every host function an actor may import, per ref-fvm generation.

Actors reach the FVM only through imported WebAssembly functions. ref-fvm binds them in
``bind_syscalls`` (``fvm/src/syscalls/mod.rs``; ``link_syscalls`` from v4) and adapts each to
wasm in ``fvm/src/syscalls/bind.rs`` (``linker.rs`` from v4). The calling convention:

* every parameter is a wasm ``i32`` (Rust ``u32``/``i32``, including guest pointers and
  lengths) or ``i64`` (``u64``/``i64``);
* every syscall returns one ``i32``: 0 on success or an :class:`ErrorNumber`;
* a syscall that produces a value takes an extra *first* parameter, the out-pointer: on
  success ref-fvm writes the value there (a packed little-endian C struct, an integer or a
  byte array) and nothing is written on failure. If the value does not fit in memory at that
  offset the syscall fails with ``IllegalArgument`` before doing anything;
* ``vm.exit`` (``vm.abort`` in v2) never returns: it unwinds the actor.

The guest side (``sdk/src/sys/*.rs``) declares the same functions; the result structs are
``shared/src/sys/out.rs``. Three generations ran on mainnet, each with its own table here:

* :data:`SYSCALLS_V2` - ref-fvm v2 (``fvm@v2.7.0``, unchanged through v2.12), network
  versions 15-17;
* :data:`SYSCALLS_V3` - ref-fvm v3 (``fvm@v3.3.1`` .. ``fvm@v3.14.1``), network versions
  18-20;
* :data:`SYSCALLS_V4` - ref-fvm v4 (``fvm@v4.1.0`` .. ``fvm@v4.8.2``), network versions 21 on.

A few entries are bound only by some releases of their generation (``since``/``until``) or
only with a non-default Cargo feature (``feature``); :func:`default_syscalls` leaves the
latter out, as the builds Lotus uses do.

The outcome of a syscall is also part of the ABI: :class:`SyscallError` carries the error
number a syscall returns to the actor (ref-fvm ``SyscallError``).
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Final

from store.errors import FvmNodeError


class ErrorNumber(enum.IntEnum):
    """ref-fvm ``fvm_shared::error::ErrorNumber``: what a failed syscall returns to the actor."""

    ILLEGAL_ARGUMENT = 1
    ILLEGAL_OPERATION = 2
    LIMIT_EXCEEDED = 3
    ASSERTION_FAILED = 4
    INSUFFICIENT_FUNDS = 5
    NOT_FOUND = 6
    INVALID_HANDLE = 7
    ILLEGAL_CID = 8
    ILLEGAL_CODEC = 9
    SERIALIZATION = 10
    FORBIDDEN = 11
    BUFFER_TOO_SMALL = 12
    # From ref-fvm v3 (network version 18).
    READ_ONLY = 13


class SyscallError(FvmNodeError):
    """A syscall failure the actor sees as an error number (ref-fvm ``SyscallError``).

    Kernel code raises it to make a syscall return ``number``; anything else a syscall
    handler raises aborts the actor instead (see :mod:`fvm.engine.runtime`).
    """

    def __init__(self, number: ErrorNumber, message: str) -> None:
        self.number = number
        self.message = message
        super().__init__(f"{message} ({number.name})")


class AbiGeneration(enum.Enum):
    """A ref-fvm major version, which fixes the set of syscalls and their signatures."""

    V2 = "v2"
    V3 = "v3"
    V4 = "v4"


FIRST_NETWORK_VERSION: Final = 15  # ref-fvm v2's first network version (OhSnap)


def generation_for_network_version(network_version: int) -> AbiGeneration:
    """The ref-fvm generation that executes messages at ``network_version``."""
    if network_version < FIRST_NETWORK_VERSION:
        raise ValueError(f"network version {network_version} predates the FVM")
    if network_version <= 17:
        return AbiGeneration.V2
    if network_version <= 20:
        return AbiGeneration.V3
    return AbiGeneration.V4


# -- types -------------------------------------------------------------------------------------

I32: Final = "i32"
I64: Final = "i64"

# The Rust integer types syscall parameters are declared with, and their wasm types.
WASM_TYPE_OF: Final[Mapping[str, str]] = MappingProxyType(
    {"u32": I32, "i32": I32, "u64": I64, "i64": I64}
)


@dataclass(frozen=True, slots=True)
class Param:
    """One syscall parameter as ref-fvm's host function declares it (guest pointers are u32)."""

    name: str
    rust_type: str

    def __post_init__(self) -> None:
        if self.rust_type not in WASM_TYPE_OF:
            raise ValueError(f"{self.rust_type!r} is not a syscall parameter type")

    @property
    def wasm_type(self) -> str:
        return WASM_TYPE_OF[self.rust_type]

    @property
    def signed(self) -> bool:
        return self.rust_type.startswith("i")


@dataclass(frozen=True, slots=True)
class ResultLayout:
    """The value a syscall writes through its out-pointer: a packed little-endian C layout.

    ``struct_format`` is a :mod:`struct` format (always ``<``, so no padding, as
    ``#[repr(packed, C)]``); ``fields`` names its items. :meth:`pack` takes the one item of a
    single-field layout bare, and a tuple otherwise.
    """

    rust_type: str
    struct_format: str
    fields: tuple[str, ...]
    _packer: struct.Struct = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.struct_format.startswith("<"):
            raise ValueError("result layouts are little-endian and packed")
        packer = struct.Struct(self.struct_format)
        if len(packer.unpack(bytes(packer.size))) != len(self.fields):
            raise ValueError(f"{self.rust_type}: format and field names disagree")
        object.__setattr__(self, "_packer", packer)

    @property
    def size(self) -> int:
        return self._packer.size

    def pack(self, value: object) -> bytes:
        """The bytes ref-fvm writes for ``value`` (an int, bytes, or a tuple of fields)."""
        if len(self.fields) == 1:
            return self._packer.pack(value)
        if not isinstance(value, tuple):
            raise TypeError(f"{self.rust_type} is written from a tuple of {self.fields}")
        return self._packer.pack(*value)

    def unpack(self, data: bytes) -> object:
        """The inverse of :meth:`pack`."""
        items = self._packer.unpack(data)
        return items[0] if len(items) == 1 else items


# Scalars and fixed arrays.
U32: Final = ResultLayout("u32", "<I", ("value",))
I32_RESULT: Final = ResultLayout("i32", "<i", ("value",))
U64: Final = ResultLayout("u64", "<Q", ("value",))
SECP_PUBLIC_KEY: Final = ResultLayout("[u8; 65]", "<65s", ("public_key",))
RANDOMNESS: Final = ResultLayout("[u8; 32]", "<32s", ("randomness",))
# fvm_shared::sys::TokenAmount: a u128 of attoFIL as two u64 halves, low half first.
TOKEN_AMOUNT: Final = ResultLayout("TokenAmount", "<QQ", ("lo", "hi"))
# fvm_shared::sys::out::*.
IPLD_OPEN: Final = ResultLayout("IpldOpen", "<QII", ("codec", "id", "size"))
IPLD_STAT: Final = ResultLayout("IpldStat", "<QI", ("codec", "size"))
SEND: Final = ResultLayout(
    "Send", "<IIQI", ("exit_code", "return_id", "return_codec", "return_size")
)
VERIFY_CONSENSUS_FAULT: Final = ResultLayout(
    "VerifyConsensusFault", "<qQI", ("epoch", "target", "fault")
)
# v2 only: vm::InvocationContext.
INVOCATION_CONTEXT: Final = ResultLayout(
    "InvocationContext",
    "<QQQQQqI",
    (
        "value_received_lo",
        "value_received_hi",
        "caller",
        "receiver",
        "method_number",
        "network_curr_epoch",
        "network_version",
    ),
)
# v3 on: vm::MessageContext and network::NetworkContext.
MESSAGE_CONTEXT: Final = ResultLayout(
    "MessageContext",
    "<QQQQQQQQQQ",
    (
        "origin",
        "nonce",
        "caller",
        "receiver",
        "method_number",
        "value_received_lo",
        "value_received_hi",
        "gas_premium_lo",
        "gas_premium_hi",
        "flags",
    ),
)
NETWORK_CONTEXT: Final = ResultLayout(
    "NetworkContext",
    "<qQQQQI",
    ("epoch", "timestamp", "base_fee_lo", "base_fee_hi", "chain_id", "network_version"),
)


@dataclass(frozen=True, slots=True)
class Syscall:
    """One importable host function.

    ``params`` are the syscall's own parameters; when ``result`` is set the wasm function takes
    the out-pointer first (see :attr:`wasm_params`). ``diverges`` marks the syscalls that never
    return. ``since``/``until`` bound the ref-fvm releases of the generation that bind it
    (``until`` exclusive); ``feature`` names the Cargo feature it needs, if not on by default.
    """

    module: str
    name: str
    params: tuple[Param, ...]
    result: ResultLayout | None
    description: str
    diverges: bool = False
    since: str | None = None
    until: str | None = None
    feature: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.module, self.name)

    @property
    def wasm_params(self) -> tuple[str, ...]:
        types = tuple(param.wasm_type for param in self.params)
        return (I32, *types) if self.result is not None else types

    @property
    def wasm_results(self) -> tuple[str, ...]:
        return (I32,)


def _p(spec: str) -> tuple[Param, ...]:
    """Parameters from ``"name: type, name: type"``."""
    if not spec:
        return ()
    params = []
    for item in spec.split(","):
        name, rust_type = (part.strip() for part in item.split(":"))
        params.append(Param(name, rust_type))
    return tuple(params)


def _s(
    module: str,
    name: str,
    params: str,
    result: ResultLayout | None,
    description: str,
    *,
    diverges: bool = False,
    feature: str | None = None,
) -> Syscall:
    return Syscall(
        module, name, _p(params), result, description, diverges=diverges, feature=feature
    )


# -- shared rows ---------------------------------------------------------------------------------

_BLOCK_OPEN: Final = _s(
    "ipld", "block_open", "cid_off: u32", IPLD_OPEN,
    "Open a reachable block by CID: its handle, codec and size.",
)
_BLOCK_CREATE: Final = _s(
    "ipld", "block_create", "codec: u64, data_off: u32, data_len: u32", U32,
    "Register a new block (its links must be reachable); returns its handle.",
)
_BLOCK_READ: Final = _s(
    "ipld", "block_read", "id: u32, offset: u32, obuf_off: u32, obuf_len: u32", I32_RESULT,
    "Copy a block from offset into a buffer; returns block length minus (offset + buffer).",
)
_BLOCK_STAT: Final = _s(
    "ipld", "block_stat", "id: u32", IPLD_STAT, "The codec and size of an open block."
)
_BLOCK_LINK: Final = _s(
    "ipld", "block_link", "id: u32, hash_fun: u64, hash_len: u32, cid_off: u32, cid_len: u32", U32,
    "Hash a block into a CID written to the buffer (now reachable); returns the CID length.",
)
_ROOT: Final = _s(
    "self", "root", "obuf_off: u32, obuf_len: u32", U32,
    "Write the calling actor's state root CID to the buffer; returns its length.",
)
_SET_ROOT: Final = _s(
    "self", "set_root", "cid_off: u32", None,
    "Set the calling actor's state root (a reachable CID).",
)
_CURRENT_BALANCE: Final = _s(
    "self", "current_balance", "", TOKEN_AMOUNT, "The calling actor's balance."
)
_SELF_DESTRUCT_ADDR: Final = _s(
    "self", "self_destruct", "addr_off: u32, addr_len: u32", None,
    "Delete the calling actor, sending its balance to the beneficiary address.",
)
_RESOLVE_ADDRESS: Final = _s(
    "actor", "resolve_address", "addr_off: u32, addr_len: u32", U64,
    "The actor ID an address resolves to.",
)
_GET_ACTOR_CODE_CID: Final = _s(
    "actor", "get_actor_code_cid", "actor_id: u64, obuf_off: u32, obuf_len: u32", U32,
    "Write an actor's code CID to the buffer; returns its length.",
)
_GET_BUILTIN_ACTOR_TYPE: Final = _s(
    "actor", "get_builtin_actor_type", "code_cid_off: u32", I32_RESULT,
    "The builtin actor type of a code CID (0 if not builtin).",
)
_GET_CODE_CID_FOR_TYPE: Final = _s(
    "actor", "get_code_cid_for_type", "typ: i32, obuf_off: u32, obuf_len: u32", U32,
    "Write the code CID of a builtin actor type to the buffer; returns its length.",
)
_VERIFY_SIGNATURE: Final = _s(
    "crypto", "verify_signature",
    "sig_type: u32, sig_off: u32, sig_len: u32, addr_off: u32, addr_len: u32, "
    "plaintext_off: u32, plaintext_len: u32",
    I32_RESULT,
    "Verify a signature by an f1/f3 address over a plaintext: 0 valid, -1 invalid.",
)
_RECOVER_SECP_PUBLIC_KEY: Final = _s(
    "crypto", "recover_secp_public_key", "hash_off: u32, sig_off: u32", SECP_PUBLIC_KEY,
    "Recover the uncompressed secp256k1 public key from a 32-byte hash and 65-byte signature.",
)
_HASH: Final = _s(
    "crypto", "hash", "hash_code: u64, data_off: u32, data_len: u32, digest_off: u32, "
    "digest_len: u32", U32,
    "Hash data with a multihash function into the digest buffer (truncated); returns length.",
)
_VERIFY_SEAL: Final = _s(
    "crypto", "verify_seal", "info_off: u32, info_len: u32", I32_RESULT,
    "Verify a sector seal proof (CBOR SealVerifyInfo): 0 valid, -1 invalid.",
)
_VERIFY_POST: Final = _s(
    "crypto", "verify_post", "info_off: u32, info_len: u32", I32_RESULT,
    "Verify a window PoSt (CBOR WindowPoStVerifyInfo): 0 valid, -1 invalid.",
)
_COMPUTE_UNSEALED_SECTOR_CID: Final = _s(
    "crypto", "compute_unsealed_sector_cid",
    "proof_type: i64, pieces_off: u32, pieces_len: u32, cid_off: u32, cid_len: u32", U32,
    "Compute CommD from CBOR piece infos into the CID buffer; returns the CID length.",
)
_VERIFY_CONSENSUS_FAULT: Final = _s(
    "crypto", "verify_consensus_fault",
    "h1_off: u32, h1_len: u32, h2_off: u32, h2_len: u32, extra_off: u32, extra_len: u32",
    VERIFY_CONSENSUS_FAULT,
    "Check two block headers (and extra) for a consensus fault: epoch, target, fault kind.",
)
_VERIFY_AGGREGATE_SEALS: Final = _s(
    "crypto", "verify_aggregate_seals", "agg_off: u32, agg_len: u32", I32_RESULT,
    "Verify an aggregated seal proof (CBOR): 0 valid, -1 invalid.",
)
_VERIFY_REPLICA_UPDATE: Final = _s(
    "crypto", "verify_replica_update", "rep_off: u32, rep_len: u32", I32_RESULT,
    "Verify a replica update proof (CBOR ReplicaUpdateInfo): 0 valid, -1 invalid.",
)
_BATCH_VERIFY_SEALS: Final = _s(
    "crypto", "batch_verify_seals", "batch_off: u32, batch_len: u32, result_off: u32", None,
    "Verify a CBOR list of seal proofs, writing one 0/1 byte per proof at result_off.",
)
_TOTAL_FIL_CIRC_SUPPLY: Final = _s(
    "network", "total_fil_circ_supply", "", TOKEN_AMOUNT, "The circulating FIL supply."
)
_LOG: Final = _s(
    "debug", "log", "msg_off: u32, msg_len: u32", None, "Log a UTF-8 message (debug mode)."
)
_ENABLED: Final = _s(
    "debug", "enabled", "", I32_RESULT, "Whether debug mode is on: 0 or more if on, -1 if off."
)
_STORE_ARTIFACT: Final = _s(
    "debug", "store_artifact", "name_off: u32, name_len: u32, data_off: u32, data_len: u32", None,
    "Save a named debug artifact on the node (debug mode).",
)
_SEND_V3: Final = _s(
    "send", "send",
    "recipient_off: u32, recipient_len: u32, method: u64, params_id: u32, value_hi: u64, "
    "value_lo: u64, gas_limit: u64, flags: u64",
    SEND,
    "Call another actor with params block, value, gas limit and flags (read-only).",
)
_RAND_V2_V3: Final = (
    _s(
        "rand", "get_chain_randomness",
        "pers: i64, round: i64, entropy_off: u32, entropy_len: u32", RANDOMNESS,
        "32 bytes of ticket-chain randomness for a domain tag, epoch and entropy.",
    ),
    _s(
        "rand", "get_beacon_randomness",
        "pers: i64, round: i64, entropy_off: u32, entropy_len: u32", RANDOMNESS,
        "32 bytes of drand beacon randomness for a domain tag, epoch and entropy.",
    ),
)
_GAS_AVAILABLE: Final = _s("gas", "available", "", U64, "The gas (milligas) left.")

# -- generations ---------------------------------------------------------------------------------

SYSCALLS_V2: Final[tuple[Syscall, ...]] = (
    _s(
        "vm", "abort", "code: u32, message_off: u32, message_len: u32", None,
        "Abort the actor with an exit code and optional message; never returns.",
        diverges=True,
    ),
    _s(
        "vm", "context", "", INVOCATION_CONTEXT,
        "The invocation: value, caller, receiver, method, epoch and network version.",
    ),
    _s("network", "base_fee", "", TOKEN_AMOUNT, "The current base fee."),
    _TOTAL_FIL_CIRC_SUPPLY,
    _BLOCK_OPEN,
    _BLOCK_CREATE,
    _BLOCK_READ,
    _BLOCK_STAT,
    _BLOCK_LINK,
    _ROOT,
    _SET_ROOT,
    _CURRENT_BALANCE,
    _SELF_DESTRUCT_ADDR,
    _RESOLVE_ADDRESS,
    _GET_ACTOR_CODE_CID,
    _s(
        "actor", "new_actor_address", "obuf_off: u32, obuf_len: u32", U32,
        "Write a fresh robust address for a new actor (init actor only); returns its length.",
    ),
    _s(
        "actor", "create_actor", "actor_id: u64, typ_off: u32", None,
        "Create an actor with an ID and code CID (init actor only).",
    ),
    _GET_BUILTIN_ACTOR_TYPE,
    _GET_CODE_CID_FOR_TYPE,
    _VERIFY_SIGNATURE,
    _RECOVER_SECP_PUBLIC_KEY,
    _HASH,
    _VERIFY_SEAL,
    _VERIFY_POST,
    _COMPUTE_UNSEALED_SECTOR_CID,
    _VERIFY_CONSENSUS_FAULT,
    _VERIFY_AGGREGATE_SEALS,
    _VERIFY_REPLICA_UPDATE,
    _BATCH_VERIFY_SEALS,
    *_RAND_V2_V3,
    _s(
        "gas", "charge", "name_off: u32, name_len: u32, compute: i64", None,
        "Charge a named amount of gas (milligas).",
    ),
    _s(
        "send", "send",
        "recipient_off: u32, recipient_len: u32, method: u64, params_id: u32, value_hi: u64, "
        "value_lo: u64",
        SEND,
        "Call another actor with a params block and value; exit code and return block.",
    ),
    _LOG,
    _ENABLED,
    _STORE_ARTIFACT,
)

_EXIT: Final = _s(
    "vm", "exit", "code: u32, blk: u32, message_off: u32, message_len: u32", None,
    "Exit the actor with an exit code, return block and optional message; never returns.",
    diverges=True,
)
_MESSAGE_CONTEXT: Final = _s(
    "vm", "message_context", "", MESSAGE_CONTEXT,
    "The invocation: origin, nonce, caller, receiver, method, value, premium, flags.",
)
_NETWORK_CONTEXT: Final = _s(
    "network", "context", "", NETWORK_CONTEXT,
    "The network: epoch, timestamp, base fee, chain ID and network version.",
)
_TIPSET_CID: Final = _s(
    "network", "tipset_cid", "epoch: i64, obuf_off: u32, obuf_len: u32", U32,
    "Write the CID of the tipset at an epoch within finality; returns its length.",
)
_LOOKUP_DELEGATED_ADDRESS: Final = _s(
    "actor", "lookup_delegated_address", "actor_id: u64, obuf_off: u32, obuf_len: u32", U32,
    "Write an actor's delegated (f4) address; returns its length, 0 if it has none.",
)
_NEXT_ACTOR_ADDRESS: Final = _s(
    "actor", "next_actor_address", "obuf_off: u32, obuf_len: u32", U32,
    "Write a fresh robust address for a new actor (init actor only); returns its length.",
)
_CREATE_ACTOR_V3: Final = _s(
    "actor", "create_actor",
    "actor_id: u64, typ_off: u32, delegated_addr_off: u32, delegated_addr_len: u32", None,
    "Create an actor with an ID, code CID and optional delegated address (init/EAM only).",
)
_BALANCE_OF: Final = _s(
    "actor", "balance_of", "actor_id: u64", TOKEN_AMOUNT, "The balance of an actor."
)
_INSTALL_ACTOR: Final = _s(
    "actor", "install_actor", "typ_off: u32", None,
    "Validate and load actor code by CID (user-deployed wasm).",
    feature="m2-native",
)
_GAS_CHARGE_V3: Final = _s(
    "gas", "charge", "name_off: u32, name_len: u32, compute: u64", None,
    "Charge a named amount of gas (milligas).",
)

SYSCALLS_V3: Final[tuple[Syscall, ...]] = (
    _EXIT,
    _MESSAGE_CONTEXT,
    _TOTAL_FIL_CIRC_SUPPLY,
    _NETWORK_CONTEXT,
    _TIPSET_CID,
    _BLOCK_OPEN,
    _BLOCK_CREATE,
    _BLOCK_READ,
    _BLOCK_STAT,
    _BLOCK_LINK,
    _ROOT,
    _SET_ROOT,
    _CURRENT_BALANCE,
    _SELF_DESTRUCT_ADDR,
    _RESOLVE_ADDRESS,
    _LOOKUP_DELEGATED_ADDRESS,
    _GET_ACTOR_CODE_CID,
    _NEXT_ACTOR_ADDRESS,
    _CREATE_ACTOR_V3,
    _GET_BUILTIN_ACTOR_TYPE,
    _GET_CODE_CID_FOR_TYPE,
    _BALANCE_OF,
    _INSTALL_ACTOR,
    _VERIFY_SIGNATURE,
    _RECOVER_SECP_PUBLIC_KEY,
    _HASH,
    replace(_VERIFY_SEAL, until="3.8.0"),
    _VERIFY_POST,
    _COMPUTE_UNSEALED_SECTOR_CID,
    _VERIFY_CONSENSUS_FAULT,
    _VERIFY_AGGREGATE_SEALS,
    _VERIFY_REPLICA_UPDATE,
    _BATCH_VERIFY_SEALS,
    _s(
        "event", "emit_event", "event_off: u32, event_len: u32", None,
        "Emit an actor event (a DAG-CBOR ActorEvent) into the receipt.",
    ),
    *_RAND_V2_V3,
    _GAS_CHARGE_V3,
    _GAS_AVAILABLE,
    _SEND_V3,
    _LOG,
    _ENABLED,
    _STORE_ARTIFACT,
)

SYSCALLS_V4: Final[tuple[Syscall, ...]] = (
    _EXIT,
    _MESSAGE_CONTEXT,
    _NETWORK_CONTEXT,
    _TIPSET_CID,
    _BLOCK_OPEN,
    _BLOCK_CREATE,
    _BLOCK_READ,
    _BLOCK_STAT,
    _BLOCK_LINK,
    _ROOT,
    _SET_ROOT,
    _CURRENT_BALANCE,
    _s(
        "self", "self_destruct", "burn_unspent: u32", None,
        "Delete the calling actor; unspent funds are burnt if burn_unspent, else refused.",
    ),
    _RESOLVE_ADDRESS,
    _LOOKUP_DELEGATED_ADDRESS,
    _GET_ACTOR_CODE_CID,
    _NEXT_ACTOR_ADDRESS,
    _CREATE_ACTOR_V3,
    _s(
        "actor", "upgrade_actor", "new_code_cid_off: u32, params_id: u32", SEND,
        "Replace the calling actor's code and run its upgrade entry point.",
        feature="upgrade-actor",
    ),
    _GET_BUILTIN_ACTOR_TYPE,
    _GET_CODE_CID_FOR_TYPE,
    _BALANCE_OF,
    _INSTALL_ACTOR,
    # FIP-0079 meant to drop verify_signature; ref-fvm keeps it behind a default-on feature.
    _VERIFY_SIGNATURE,
    replace(
        _s(
            "crypto", "verify_bls_aggregate",
            "num_signers: u32, sig_off: u32, pub_keys_off: u32, plaintexts_off: u32, "
            "plaintext_lens_off: u32",
            I32_RESULT,
            "Verify a BLS aggregate signature over per-signer plaintexts: 0 valid, -1 invalid.",
        ),
        since="4.3.0",
    ),
    _RECOVER_SECP_PUBLIC_KEY,
    _HASH,
    _s(
        "event", "emit_event",
        "event_off: u32, event_len: u32, key_off: u32, key_len: u32, val_off: u32, val_len: u32",
        None,
        "Emit an actor event: packed EventEntry headers plus concatenated keys and values.",
    ),
    _s(
        "rand", "get_chain_randomness", "round: i64", RANDOMNESS,
        "The 32-byte ticket-chain randomness digest at an epoch (actors mix in entropy).",
    ),
    _s(
        "rand", "get_beacon_randomness", "round: i64", RANDOMNESS,
        "The 32-byte drand beacon randomness digest at an epoch (actors mix in entropy).",
    ),
    _GAS_CHARGE_V3,
    _GAS_AVAILABLE,
    _SEND_V3,
    _LOG,
    _ENABLED,
    _STORE_ARTIFACT,
    # The Filecoin kernel's syscalls (``fvm/src/syscalls/filecoin.rs``).
    _TOTAL_FIL_CIRC_SUPPLY,
    _COMPUTE_UNSEALED_SECTOR_CID,
    _VERIFY_POST,
    _VERIFY_CONSENSUS_FAULT,
    _VERIFY_AGGREGATE_SEALS,
    _VERIFY_REPLICA_UPDATE,
    _BATCH_VERIFY_SEALS,
)

SYSCALL_TABLES: Final[Mapping[AbiGeneration, tuple[Syscall, ...]]] = MappingProxyType(
    {
        AbiGeneration.V2: SYSCALLS_V2,
        AbiGeneration.V3: SYSCALLS_V3,
        AbiGeneration.V4: SYSCALLS_V4,
    }
)


def _release_key(release: str) -> tuple[int, ...]:
    return tuple(int(part) for part in release.split("."))


def default_syscalls(
    generation: AbiGeneration, release: str | None = None
) -> Mapping[tuple[str, str], Syscall]:
    """The syscalls a default build of ``generation`` binds, by ``(module, name)``.

    With ``release`` (e.g. ``"3.3.1"``), only those bound by that ref-fvm release; without it,
    every syscall any release of the generation bound.
    """
    bound: dict[tuple[str, str], Syscall] = {}
    for syscall in SYSCALL_TABLES[generation]:
        if syscall.feature is not None:
            continue
        if release is not None:
            version = _release_key(release)
            if syscall.since is not None and version < _release_key(syscall.since):
                continue
            if syscall.until is not None and version >= _release_key(syscall.until):
                continue
        bound[syscall.key] = syscall
    return MappingProxyType(bound)


def syscalls_for_network_version(network_version: int) -> Mapping[tuple[str, str], Syscall]:
    """Every syscall the default builds of the ref-fvm generation at ``network_version`` bind."""
    return default_syscalls(generation_for_network_version(network_version))
