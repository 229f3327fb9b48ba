"""The syscall handlers: arguments from the actor's memory in, kernel calls, results out.

Each handler takes the runtime's :class:`~fvm.engine.runtime.SyscallContext` (the kernel and the
actor's :class:`~fvm.engine.guest_memory.GuestMemory`) and the syscall's own arguments (the
out-pointer excluded) and returns what the runtime writes through the out-pointer. They port
ref-fvm's ``fvm/src/syscalls/{vm,network,ipld,sself,actor,crypto,event,rand,gas,send,debug}.rs``
at ``fvm@v2.12.1`` and ``fvm@v3.13.3``, including the order in which each checks its buffers
(a bad output buffer is refused before the kernel does any work) and reads its inputs.

:func:`syscall_handlers` gives the table for one generation: exactly the syscalls that
generation's ref-fvm release binds (:func:`fvm.syscalls.abi.default_syscalls`), so a module
importing anything else fails to link as it does in the reference.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final

from fvm.address import Address
from fvm.engine.guest_memory import GuestMemory
from fvm.engine.runtime import AbortExit, SyscallContext, SyscallHandler
from fvm.gas.charge import I64_MAX, I64_MIN, MILLIGAS_PRECISION, U64_MAX
from fvm.invocation import FatalError
from fvm.kernel import crypto_ops
from fvm.kernel.default import (
    READ_ONLY_FLAG,
    Kernel,
    KernelUnavailable,
    KernelV2,
    KernelV3,
    token_u128,
)
from fvm.network_version import NetworkVersion
from fvm.proofs.sector_types import (
    AggregateSealVerifyProofAndInfos,
    ReplicaUpdateInfo,
    SealVerifyInfo,
    WindowPoStVerifyInfo,
    decode_piece_infos,
    decode_seal_verify_infos,
)
from fvm.receipt import FIRST_USER_EXIT_CODE, ExitCode
from fvm.syscalls.abi import AbiGeneration, ErrorNumber, SyscallError, default_syscalls

# The ref-fvm releases whose bindings the tables reproduce.
REFERENCE_RELEASES: Final = {AbiGeneration.V2: "2.12.1", AbiGeneration.V3: "3.13.3"}
# fvm_shared ``PAYLOAD_HASH_LEN`` plus the protocol byte: the size of an f2 address.
ACTOR_ADDRESS_LENGTH: Final = 21
MAX_EXIT_MESSAGE_LENGTH: Final = 1024
NO_DEBUG: Final = -1

Context = SyscallContext[Kernel]
ContextV2 = SyscallContext[KernelV2]
ContextV3 = SyscallContext[KernelV3]


def _utf8(data: bytes, what: str) -> str:
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise SyscallError(ErrorNumber.ILLEGAL_ARGUMENT, f"{what} is not valid UTF-8") from None


# -- vm ----------------------------------------------------------------------------------------


def vm_exit(ctx: Context, code: int, block_id: int, message_off: int, message_len: int) -> None:
    """v3 ``vm.exit``: never returns. System exit codes other than 0 are refused."""
    if code != ExitCode.OK and code < FIRST_USER_EXIT_CODE:
        raise AbortExit(
            ExitCode.SYS_ILLEGAL_EXIT_CODE, f"actor aborted with code {code}", block_id
        )
    if message_len == 0:
        message = "actor aborted"
    else:
        try:
            raw = ctx.memory.read(message_off, message_len)
        except SyscallError as exc:
            message = f"failed to extract error message: {exc.message}"
        else:
            if len(raw) > MAX_EXIT_MESSAGE_LENGTH:
                half = MAX_EXIT_MESSAGE_LENGTH // 2
                message = (
                    f"{raw[:half].decode(errors='replace')} ... (skipped "
                    f"{len(raw) - MAX_EXIT_MESSAGE_LENGTH} bytes) ... "
                    f"{raw[-half:].decode(errors='replace')}"
                )
            else:
                message = raw.decode(errors="replace")
    raise AbortExit(code, message, block_id)


def vm_abort(ctx: ContextV2, code: int, message_off: int, message_len: int) -> None:
    """v2 ``vm.abort``: from network version 16 every system exit code (0 too) is refused;
    a message that cannot be read or is not UTF-8 replaces the actor's."""
    if ctx.kernel.network_version >= NetworkVersion.V16 and code < FIRST_USER_EXIT_CODE:
        raise AbortExit(ExitCode.SYS_ILLEGAL_EXIT_CODE, f"actor aborted with code {code}")
    if message_len == 0:
        raise AbortExit(code, "actor aborted")
    try:
        message = _utf8(ctx.memory.read(message_off, message_len), "error message")
    except SyscallError as exc:
        raise AbortExit(
            code,
            f"actor aborted with an invalid message: {exc.message} (code={exc.number.name})",
        ) from None
    raise AbortExit(code, message)


def vm_message_context(ctx: ContextV3) -> tuple[int, ...]:
    return ctx.kernel.message_context()


def vm_context(ctx: ContextV2) -> tuple[int, ...]:
    return ctx.kernel.invocation_context()


# -- network -----------------------------------------------------------------------------------


def network_total_fil_circ_supply(ctx: Context) -> tuple[int, int]:
    return token_u128(ctx.kernel.total_fil_circ_supply(), "circulating supply")


def network_base_fee(ctx: ContextV2) -> tuple[int, int]:
    return token_u128(ctx.kernel.base_fee(), "base-fee")


def network_context(ctx: ContextV3) -> tuple[int, ...]:
    return ctx.kernel.network_context()


def network_tipset_cid(ctx: ContextV3, epoch: int, obuf_off: int, obuf_len: int) -> int:
    ctx.memory.check_bounds(obuf_off, obuf_len)
    cid = ctx.kernel.tipset_cid(epoch)
    return ctx.memory.write_cid(cid, obuf_off, obuf_len)


# -- ipld --------------------------------------------------------------------------------------


def ipld_block_open(ctx: Context, cid_off: int) -> tuple[int, int, int]:
    cid = ctx.memory.read_cid(cid_off)
    block_id, codec, size = ctx.kernel.block_open(cid)
    return codec, block_id, size


def ipld_block_create(ctx: Context, codec: int, data_off: int, data_len: int) -> int:
    data = ctx.memory.read(data_off, data_len)
    return ctx.kernel.block_create(codec, data)


def ipld_block_read(
    ctx: Context, block_id: int, offset: int, obuf_off: int, obuf_len: int
) -> int:
    memory = ctx.memory
    memory.check_bounds(obuf_off, obuf_len)
    data, remaining = ctx.kernel.block_read(block_id, offset, obuf_len)
    memory.write(obuf_off, data)
    return remaining


def ipld_block_stat(ctx: Context, block_id: int) -> tuple[int, int]:
    return ctx.kernel.block_stat(block_id)


def ipld_block_link(
    ctx: Context, block_id: int, hash_fun: int, hash_len: int, cid_off: int, cid_len: int
) -> int:
    ctx.memory.check_bounds(cid_off, cid_len)
    cid = ctx.kernel.block_link(block_id, hash_fun, hash_len)
    return ctx.memory.write_cid(cid, cid_off, cid_len)


# -- self --------------------------------------------------------------------------------------


def self_root(ctx: Context, obuf_off: int, obuf_len: int) -> int:
    ctx.memory.check_bounds(obuf_off, obuf_len)
    root = ctx.kernel.root()
    return ctx.memory.write_cid(root, obuf_off, obuf_len)


def self_set_root(ctx: Context, cid_off: int) -> None:
    ctx.kernel.set_root(ctx.memory.read_cid(cid_off))


def self_current_balance(ctx: Context) -> tuple[int, int]:
    return token_u128(ctx.kernel.current_balance(), "balance")


def self_self_destruct(ctx: Context, addr_off: int, addr_len: int) -> None:
    ctx.kernel.self_destruct(ctx.memory.read_address(addr_off, addr_len))


# -- actor -------------------------------------------------------------------------------------


def actor_resolve_address(ctx: Context, addr_off: int, addr_len: int) -> int:
    return ctx.kernel.resolve_address(ctx.memory.read_address(addr_off, addr_len))


def actor_lookup_delegated_address(
    ctx: ContextV3, actor_id: int, obuf_off: int, obuf_len: int
) -> int:
    memory = ctx.memory
    memory.check_bounds(obuf_off, obuf_len)
    address = ctx.kernel.lookup_delegated_address(actor_id)
    if address is None:
        return 0
    raw = address.to_bytes()
    if len(raw) > obuf_len:
        raise SyscallError(ErrorNumber.BUFFER_TOO_SMALL, "address output buffer is too small")
    memory.write(obuf_off, raw)
    return len(raw)


def actor_get_actor_code_cid(ctx: Context, actor_id: int, obuf_off: int, obuf_len: int) -> int:
    ctx.memory.check_bounds(obuf_off, obuf_len)
    code = ctx.kernel.get_actor_code_cid(actor_id)
    return ctx.memory.write_cid(code, obuf_off, obuf_len)


def _write_actor_address(
    memory: GuestMemory, obuf_off: int, obuf_len: int, new_address: Callable[[], Address]
) -> int:
    """Check the buffer, then write the address ``new_address`` makes into it."""
    memory.check_bounds(obuf_off, obuf_len)
    if obuf_len < ACTOR_ADDRESS_LENGTH:
        raise SyscallError(
            ErrorNumber.BUFFER_TOO_SMALL,
            "output buffer must have a minimum capacity of 21 bytes",
        )
    raw = new_address().to_bytes()
    if len(raw) > obuf_len:
        raise FatalError(f"created {len(raw)} byte actor address")
    memory.write(obuf_off, raw)
    return len(raw)


def actor_next_actor_address(ctx: ContextV3, obuf_off: int, obuf_len: int) -> int:
    return _write_actor_address(ctx.memory, obuf_off, obuf_len, ctx.kernel.next_actor_address)


def actor_new_actor_address(ctx: ContextV2, obuf_off: int, obuf_len: int) -> int:
    return _write_actor_address(ctx.memory, obuf_off, obuf_len, ctx.kernel.new_actor_address)


def actor_create_actor_v3(
    ctx: ContextV3, actor_id: int, typ_off: int, delegated_off: int, delegated_len: int
) -> None:
    code = ctx.memory.read_cid(typ_off)
    delegated = (
        ctx.memory.read_address(delegated_off, delegated_len) if delegated_len > 0 else None
    )
    ctx.kernel.create_actor(code, actor_id, delegated)


def actor_create_actor_v2(ctx: ContextV2, actor_id: int, typ_off: int) -> None:
    ctx.kernel.create_actor(ctx.memory.read_cid(typ_off), actor_id)


def actor_get_builtin_actor_type(ctx: Context, code_cid_off: int) -> int:
    actor_type = ctx.kernel.get_builtin_actor_type(ctx.memory.read_cid(code_cid_off))
    return actor_type - (1 << 32) if actor_type >= 1 << 31 else actor_type


def actor_get_code_cid_for_type(ctx: Context, typ: int, obuf_off: int, obuf_len: int) -> int:
    ctx.memory.check_bounds(obuf_off, obuf_len)
    code = ctx.kernel.get_code_cid_for_type(typ & 0xFFFF_FFFF)
    return ctx.memory.write_cid(code, obuf_off, obuf_len)


def actor_balance_of(ctx: ContextV3, actor_id: int) -> tuple[int, int]:
    return token_u128(ctx.kernel.balance_of(actor_id), "balance")


# -- crypto ------------------------------------------------------------------------------------
# The semantics are crypto_ops'; these read and decode the arguments in the reference's order.

VALID: Final = 0
INVALID: Final = -1


def _verdict(valid: bool) -> int:
    return VALID if valid else INVALID


def crypto_verify_signature(
    ctx: Context,
    sig_type: int,
    sig_off: int,
    sig_len: int,
    addr_off: int,
    addr_len: int,
    plaintext_off: int,
    plaintext_len: int,
) -> int:
    crypto_ops.check_signature_type(sig_type)
    memory = ctx.memory
    signature = memory.read(sig_off, sig_len)
    signer = memory.read_address(addr_off, addr_len)
    plaintext = memory.read(plaintext_off, plaintext_len)
    return _verdict(crypto_ops.verify_signature(ctx.kernel, sig_type, signature, signer, plaintext))


def crypto_recover_secp_public_key(ctx: Context, hash_off: int, sig_off: int) -> bytes:
    msg_hash = ctx.memory.read(hash_off, crypto_ops.SECP_SIG_MESSAGE_HASH_SIZE)
    signature = ctx.memory.read(sig_off, crypto_ops.SECP_SIG_LEN)
    return crypto_ops.recover_secp_public_key(ctx.kernel, msg_hash, signature)


def crypto_hash(
    ctx: Context, hash_code: int, data_off: int, data_len: int, digest_off: int, digest_len: int
) -> int:
    memory = ctx.memory
    memory.check_bounds(digest_off, digest_len)
    digest = crypto_ops.compute_hash(ctx.kernel, hash_code, memory.read(data_off, data_len))
    length = min(digest_len, len(digest))
    memory.write(digest_off, digest[:length])
    return length


def crypto_compute_unsealed_sector_cid(
    ctx: Context, proof_type: int, pieces_off: int, pieces_len: int, cid_off: int, cid_len: int
) -> int:
    memory = ctx.memory
    crypto_ops.check_seal_proof_type(ctx.kernel, proof_type)
    pieces = crypto_ops.decode_cbor_param(
        memory.read(pieces_off, pieces_len), decode_piece_infos, "Vec<PieceInfo>"
    )
    memory.check_bounds(cid_off, cid_len)
    cid = crypto_ops.compute_unsealed_sector_cid(ctx.kernel, proof_type, pieces)
    return memory.write_cid(cid, cid_off, cid_len)


def crypto_verify_seal(ctx: Context, info_off: int, info_len: int) -> int:
    info = crypto_ops.decode_cbor_param(
        ctx.memory.read(info_off, info_len), SealVerifyInfo.from_cbor, "SealVerifyInfo"
    )
    return _verdict(crypto_ops.verify_seal(ctx.kernel, info))


def crypto_verify_post(ctx: Context, info_off: int, info_len: int) -> int:
    info = crypto_ops.decode_cbor_param(
        ctx.memory.read(info_off, info_len), WindowPoStVerifyInfo.from_cbor, "WindowPoStVerifyInfo"
    )
    return _verdict(crypto_ops.verify_post(ctx.kernel, info))


def crypto_verify_consensus_fault(
    ctx: Context,
    h1_off: int,
    h1_len: int,
    h2_off: int,
    h2_len: int,
    extra_off: int,
    extra_len: int,
) -> tuple[int, int, int]:
    memory = ctx.memory
    header1 = memory.read(h1_off, h1_len)
    header2 = memory.read(h2_off, h2_len)
    extra = memory.read(extra_off, extra_len)
    fault = crypto_ops.verify_consensus_fault(ctx.kernel, header1, header2, extra)
    return crypto_ops.consensus_fault_result(fault)


def crypto_verify_aggregate_seals(ctx: Context, agg_off: int, agg_len: int) -> int:
    aggregate = crypto_ops.decode_cbor_param(
        ctx.memory.read(agg_off, agg_len),
        AggregateSealVerifyProofAndInfos.from_cbor,
        "AggregateSealVerifyProofAndInfos",
    )
    return _verdict(crypto_ops.verify_aggregate_seals(ctx.kernel, aggregate))


def crypto_verify_replica_update(ctx: Context, rep_off: int, rep_len: int) -> int:
    info = crypto_ops.decode_cbor_param(
        ctx.memory.read(rep_off, rep_len), ReplicaUpdateInfo.from_cbor, "ReplicaUpdateInfo"
    )
    return _verdict(crypto_ops.verify_replica_update(ctx.kernel, info))


def crypto_batch_verify_seals(
    ctx: Context, batch_off: int, batch_len: int, result_off: int
) -> None:
    memory = ctx.memory
    infos = crypto_ops.decode_cbor_param(
        memory.read(batch_off, batch_len), decode_seal_verify_infos, "Vec<SealVerifyInfo>"
    )
    memory.check_bounds(result_off, len(infos))
    verdicts = crypto_ops.batch_verify_seals(ctx.kernel, infos)
    if len(verdicts) != len(infos):
        raise FatalError(f"expected one result per input: {len(infos)} != {len(verdicts)}")
    memory.write(result_off, bytes(verdicts))


# -- events, randomness, gas -------------------------------------------------------------------


def event_emit_event(ctx: ContextV3, event_off: int, event_len: int) -> None:
    ctx.kernel.emit_event(ctx.memory.read(event_off, event_len))


def rand_get_chain_randomness(
    ctx: Context, personalization: int, epoch: int, entropy_off: int, entropy_len: int
) -> bytes:
    entropy = ctx.memory.read(entropy_off, entropy_len)
    return ctx.kernel.get_randomness_from_tickets(personalization, epoch, entropy)


def rand_get_beacon_randomness(
    ctx: Context, personalization: int, epoch: int, entropy_off: int, entropy_len: int
) -> bytes:
    entropy = ctx.memory.read(entropy_off, entropy_len)
    return ctx.kernel.get_randomness_from_beacon(personalization, epoch, entropy)


def gas_charge_v3(ctx: Context, name_off: int, name_len: int, compute: int) -> None:
    """``Gas::new(compute)``: whole gas, saturating at ``u64::MAX`` milligas."""
    name = _utf8(ctx.memory.read(name_off, name_len), "gas charge name")
    ctx.kernel.charge_gas(name, min(compute * MILLIGAS_PRECISION, U64_MAX))


def gas_charge_v2(ctx: Context, name_off: int, name_len: int, compute: int) -> None:
    """v2's signed ``Gas::new(compute)``, saturating in ``i64``."""
    name = _utf8(ctx.memory.read(name_off, name_len), "gas charge name")
    ctx.kernel.charge_gas(name, max(min(compute * MILLIGAS_PRECISION, I64_MAX), I64_MIN))


def gas_available(ctx: Context) -> int:
    return ctx.kernel.gas_available // MILLIGAS_PRECISION


# -- send --------------------------------------------------------------------------------------


def send_v3(
    ctx: Context,
    recipient_off: int,
    recipient_len: int,
    method: int,
    params_id: int,
    value_hi: int,
    value_lo: int,
    gas_limit: int,
    flags: int,
) -> tuple[int, int, int, int]:
    recipient = ctx.memory.read_address(recipient_off, recipient_len)
    value = (value_hi << 64) | value_lo
    limit = None if gas_limit == U64_MAX else min(gas_limit * MILLIGAS_PRECISION, U64_MAX)
    if flags & ~READ_ONLY_FLAG:
        raise SyscallError(ErrorNumber.ILLEGAL_ARGUMENT, f"invalid send flags: {flags}")
    outcome = ctx.kernel.send(
        recipient, method, params_id, value, limit, bool(flags & READ_ONLY_FLAG)
    )
    return outcome.exit_code, outcome.block_id, outcome.codec, outcome.size


def send_v2(
    ctx: Context,
    recipient_off: int,
    recipient_len: int,
    method: int,
    params_id: int,
    value_hi: int,
    value_lo: int,
) -> tuple[int, int, int, int]:
    recipient = ctx.memory.read_address(recipient_off, recipient_len)
    outcome = ctx.kernel.send(recipient, method, params_id, (value_hi << 64) | value_lo)
    return outcome.exit_code, outcome.block_id, outcome.codec, outcome.size


# -- debug -------------------------------------------------------------------------------------


def debug_log(ctx: Context, msg_off: int, msg_len: int) -> None:
    if not ctx.kernel.debug_enabled():
        return
    ctx.kernel.log(_utf8(ctx.memory.read(msg_off, msg_len), "log message"))


def debug_enabled(ctx: Context) -> int:
    return 0 if ctx.kernel.debug_enabled() else NO_DEBUG


def debug_store_artifact(
    ctx: Context, name_off: int, name_len: int, data_off: int, data_len: int
) -> None:
    if not ctx.kernel.debug_enabled():
        return
    data = ctx.memory.read(data_off, data_len)
    name = _utf8(ctx.memory.read(name_off, name_len), "artifact name")
    ctx.kernel.store_artifact(name, data)


# -- tables ------------------------------------------------------------------------------------


_SHARED: Final[dict[tuple[str, str], SyscallHandler]] = {
    ("network", "total_fil_circ_supply"): network_total_fil_circ_supply,
    ("ipld", "block_open"): ipld_block_open,
    ("ipld", "block_create"): ipld_block_create,
    ("ipld", "block_read"): ipld_block_read,
    ("ipld", "block_stat"): ipld_block_stat,
    ("ipld", "block_link"): ipld_block_link,
    ("self", "root"): self_root,
    ("self", "set_root"): self_set_root,
    ("self", "current_balance"): self_current_balance,
    ("self", "self_destruct"): self_self_destruct,
    ("actor", "resolve_address"): actor_resolve_address,
    ("actor", "get_actor_code_cid"): actor_get_actor_code_cid,
    ("actor", "get_builtin_actor_type"): actor_get_builtin_actor_type,
    ("actor", "get_code_cid_for_type"): actor_get_code_cid_for_type,
    ("rand", "get_chain_randomness"): rand_get_chain_randomness,
    ("rand", "get_beacon_randomness"): rand_get_beacon_randomness,
    ("debug", "log"): debug_log,
    ("debug", "enabled"): debug_enabled,
    ("debug", "store_artifact"): debug_store_artifact,
    ("crypto", "verify_signature"): crypto_verify_signature,
    ("crypto", "recover_secp_public_key"): crypto_recover_secp_public_key,
    ("crypto", "hash"): crypto_hash,
    ("crypto", "verify_post"): crypto_verify_post,
    ("crypto", "compute_unsealed_sector_cid"): crypto_compute_unsealed_sector_cid,
    ("crypto", "verify_consensus_fault"): crypto_verify_consensus_fault,
    ("crypto", "verify_aggregate_seals"): crypto_verify_aggregate_seals,
    ("crypto", "verify_replica_update"): crypto_verify_replica_update,
    ("crypto", "batch_verify_seals"): crypto_batch_verify_seals,
}

_V2_ONLY: Final[dict[tuple[str, str], SyscallHandler]] = {
    ("vm", "abort"): vm_abort,
    ("crypto", "verify_seal"): crypto_verify_seal,
    ("vm", "context"): vm_context,
    ("network", "base_fee"): network_base_fee,
    ("actor", "new_actor_address"): actor_new_actor_address,
    ("actor", "create_actor"): actor_create_actor_v2,
    ("gas", "charge"): gas_charge_v2,
    ("send", "send"): send_v2,
}

_V3_ONLY: Final[dict[tuple[str, str], SyscallHandler]] = {
    ("vm", "exit"): vm_exit,
    ("vm", "message_context"): vm_message_context,
    ("network", "context"): network_context,
    ("network", "tipset_cid"): network_tipset_cid,
    ("actor", "lookup_delegated_address"): actor_lookup_delegated_address,
    ("actor", "next_actor_address"): actor_next_actor_address,
    ("actor", "create_actor"): actor_create_actor_v3,
    ("actor", "balance_of"): actor_balance_of,
    ("event", "emit_event"): event_emit_event,
    ("gas", "charge"): gas_charge_v3,
    ("gas", "available"): gas_available,
    ("send", "send"): send_v3,
}

_HANDLERS: Final = {
    AbiGeneration.V2: {**_SHARED, **_V2_ONLY},
    AbiGeneration.V3: {**_SHARED, **_V3_ONLY},
}


def syscall_handlers(generation: AbiGeneration) -> Mapping[tuple[str, str], SyscallHandler]:
    """The handlers of every syscall ``generation``'s reference release binds."""
    handlers = _HANDLERS.get(generation)
    if handlers is None:
        raise KernelUnavailable(f"no syscall handlers for the ref-fvm {generation.value} ABI")
    bound = default_syscalls(generation, REFERENCE_RELEASES[generation])
    missing = set(bound) - set(handlers)
    if missing:
        raise KernelUnavailable(f"syscalls without a handler: {sorted(missing)}")
    return MappingProxyType({key: handlers[key] for key in bound})
