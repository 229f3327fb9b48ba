"""Tipset execution: the state a tipset leads to, computed as Lotus's ``ApplyBlocks`` does.

Followed: Lotus ``chain/consensus/filcns/compute_state.go`` (``TipSetExecutor.ApplyBlocks``,
``ExecuteTipSet``) at v1.20.4, the nv18 release line, checked against HEAD, where the code moved
to ``chain/consensus/compute_state.go`` and the reward message to ``filcns/filecoin.go``
(``RewardFunc``) with the same semantics; the implicit-message gas limit is from
``chain/vm/fvm.go`` (``FVM.ApplyImplicitMessage``) at both.

Given the parent tipset's state root and epoch, :func:`apply_tipset`

1. runs cron (``EpochTick``) for every null round between the parent and the tipset, each epoch
   in a machine of its own over the state the previous one left, timestamped
   ``genesis_timestamp + block_delay * epoch``;
2. builds one machine at the tipset's epoch (timestamp: the tipset's smallest block timestamp;
   base fee: the tipset's ParentBaseFee, also used for the null rounds) and applies, block by
   block in tipset order, the block's BLS messages then its secp256k1 messages, skipping a
   message whose unsigned CID was already applied in this tipset; each explicit message is
   charged for its on-chain length (a secp256k1 message with its signature);
3. after each block's messages, pays the block's miner through the reward actor's
   ``AwardBlockReward`` (implicit, from the system actor) with the sum of the block's miner
   tips as the gas reward and of its miner penalties as the penalty;
4. runs cron once at the tipset's epoch, and flushes.

The receipts of the explicit messages, in order, form the receipts root: a legacy (v0) AMT
(specs-actors v0's ``adt.MakeEmptyArray``, bit width 3) of receipts, which carry the events root
from network version 18; each message's events AMT (v3, bit width 5) is written too, as Lotus
does when it stores events (``StoreEventsAMT``). Implicit messages use ref-fvm's implicit path
with Lotus's gas limit (``MaxInt64 / 2``) and no on-chain length; one that fails aborts the
tipset, as in Lotus.

State migrations (Lotus ``HandleStateForks``) are not implemented: a tipset whose execution
would cross a network-version change raises :class:`MissingStateMigration`. The circulating
supply each machine reports is asked of the caller with the machine's base state, as Lotus's
``CircSupplyCalc`` is (see :mod:`chainsync.circulating_supply`).

Execution runs inside :func:`fvm.engine.runtime.run_on_execution_stack`. With
``ExecutionConfig.tracing`` every machine records execution traces (each ``ApplyRet``'s
``exec_trace``; see :mod:`fvm.execution_trace` and :mod:`chainsync.gas_trace`), as Lotus's
``ExecuteTipSet`` does when ``vmTracing`` is on; the results are otherwise the same.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Final

from chainsync.chain_types import FullBlock, TipSet
from chainsync.messages_root import receipts_root
from fvm.address import CRON_ACTOR_ADDR, REWARD_ACTOR_ADDR, SYSTEM_ACTOR_ADDR, Address
from fvm.call_manager import EVENTS_AMT_BIT_WIDTH
from fvm.engine.runtime import run_on_execution_stack
from fvm.executor import ApplyKind, ApplyRet, Executor
from fvm.externs import Externs
from fvm.invocation import ActorInvoker
from fvm.machine import Machine, MachineContext, NetworkConfig
from fvm.message import Message, SignedMessage
from fvm.receipt import ExitCode, Receipt
from fvm.state_tree import StateTree
from fvm.token import TokenAmount, encode_bigint
from store import dag_cbor
from store.amt import Amt
from store.blockstore import Blockstore
from store.cid import CID
from store.errors import FvmNodeError

# Lotus ``FVM.ApplyImplicitMessage`` replaces every implicit message's gas limit with this.
IMPLICIT_MESSAGE_GAS_LIMIT: Final = ((1 << 63) - 1) // 2
# builtin-actors method numbers (cron ``EpochTick``, reward ``AwardBlockReward``).
CRON_EPOCH_TICK_METHOD: Final = 2
AWARD_BLOCK_REWARD_METHOD: Final = 2

NetworkVersionAt = Callable[[int], int]
"""The network version in force at an epoch."""

CirculatingSupplyAt = Callable[[int, StateTree], TokenAmount]
"""The circulating supply a machine at ``epoch`` over the given base state reports."""


class TipsetExecutionError(FvmNodeError):
    """The tipset cannot be executed (Lotus ``ApplyBlocks`` returns an error)."""


class ImplicitMessageFailed(TipsetExecutionError):
    """An implicit message (cron, block reward, genesis setup) exited with a non-zero code."""

    def __init__(self, what: str, ret: ApplyRet) -> None:
        self.ret = ret
        reason = "" if ret.failure_info is None else f": {ret.failure_info}"
        super().__init__(f"{what} failed with exit code {ret.receipt.exit_code}{reason}")


class MissingStateMigration(TipsetExecutionError):
    """Execution crosses a network-version change, whose state migration is not implemented."""


class DuplicateBlockMiner(TipsetExecutionError):
    """Two blocks of one tipset were mined by the same miner (Lotus ``ExecuteTipSet`` refuses)."""


@dataclass(frozen=True, slots=True)
class BlockMessages:
    """One block of the tipset as execution sees it: its miner, its election win count, and its
    messages in block order."""

    miner: Address
    win_count: int
    bls_messages: Sequence[Message] = ()
    secp_messages: Sequence[SignedMessage] = ()


@dataclass(frozen=True, slots=True)
class ExecutionConfig:
    """What stays the same from tipset to tipset on one chain.

    ``chain_id`` is the EIP-155 chain ID actors see (Lotus ``build.Eip155ChainId``);
    ``genesis_timestamp`` and ``block_delay_seconds`` (Lotus ``BlockDelaySecs``) give the null
    rounds' timestamps. ``tracing`` makes every applied message carry its execution trace
    (for diagnosis only: it slows execution down and changes no result).
    """

    network_version: NetworkVersionAt
    circulating_supply: CirculatingSupplyAt
    invoker: ActorInvoker
    chain_id: int
    genesis_timestamp: int
    block_delay_seconds: int
    tracing: bool = False


@dataclass(frozen=True, slots=True)
class TipsetResult:
    """The outcome of a tipset: the state root and receipts root its children will carry.

    ``receipts``, ``apply_rets`` and ``message_cids`` (the CIDs blocks list: the signed
    message's for secp256k1) are aligned, one per explicit message applied (duplicates, found by
    the unsigned message's CID, skipped). ``implicit_rets`` holds the cron and reward results in
    order of application. ``gas_used`` sums the explicit messages' gas.
    """

    state_root: CID
    receipts_root: CID
    receipts: tuple[Receipt, ...]
    apply_rets: tuple[ApplyRet, ...]
    message_cids: tuple[CID, ...]
    implicit_rets: tuple[ApplyRet, ...] = field(repr=False)
    gas_used: int

    @property
    def messages_applied(self) -> int:
        return len(self.receipts)


# -- implicit messages ------------------------------------------------------------------------


def implicit_message(
    sender: Address,
    to: Address,
    method: int,
    params: bytes = b"",
    *,
    value: TokenAmount = 0,
    sequence: int = 0,
) -> Message:
    """An implicit message as Lotus hands it to the FVM (gas limit ``MaxInt64 / 2``, no fees)."""
    return Message(
        to=to,
        from_=sender,
        sequence=sequence,
        value=value,
        gas_limit=IMPLICIT_MESSAGE_GAS_LIMIT,
        method_num=method,
        params=params,
    )


def apply_implicit(executor: Executor, message: Message, what: str) -> ApplyRet:
    """Apply an implicit message; :class:`ImplicitMessageFailed` unless it exits with 0.

    filecoin-ffi passes no on-chain length for implicit messages (0).
    """
    ret = executor.execute_message(message, ApplyKind.IMPLICIT, 0)
    if ret.receipt.exit_code != ExitCode.OK:
        raise ImplicitMessageFailed(what, ret)
    return ret


def cron_message(epoch: int) -> Message:
    """The cron tick Lotus applies at the end of every epoch (sequence = the epoch)."""
    return implicit_message(
        SYSTEM_ACTOR_ADDR, CRON_ACTOR_ADDR, CRON_EPOCH_TICK_METHOD, sequence=epoch
    )


def award_block_reward_message(
    epoch: int, miner: Address, penalty: TokenAmount, gas_reward: TokenAmount, win_count: int
) -> Message:
    """The reward actor's ``AwardBlockReward`` for one block (``AwardBlockRewardParams``)."""
    params = dag_cbor.encode(
        [miner.to_bytes(), encode_bigint(penalty), encode_bigint(gas_reward), win_count]
    )
    return implicit_message(
        SYSTEM_ACTOR_ADDR, REWARD_ACTOR_ADDR, AWARD_BLOCK_REWARD_METHOD, params, sequence=epoch
    )


# -- receipts ---------------------------------------------------------------------------------


def store_events_amt(store: Blockstore, ret: ApplyRet) -> CID | None:
    """Write a message's events AMT (v3, bit width 5) to ``store`` so that its receipt's events
    root resolves (Lotus ``StoreEventsAMT``); the root must be the receipt's."""
    if not ret.events:
        return None
    amt = Amt.from_list(
        store, [event.to_cbor() for event in ret.events], bit_width=EVENTS_AMT_BIT_WIDTH
    )
    root = amt.flush()
    if root != ret.receipt.events_root:
        raise TipsetExecutionError(
            f"events AMT root {root} differs from the receipt's {ret.receipt.events_root}"
        )
    return root


# -- execution --------------------------------------------------------------------------------


def _make_executor(
    config: ExecutionConfig,
    store: Blockstore,
    externs: Externs,
    state_root: CID,
    epoch: int,
    timestamp: int,
    base_fee: TokenAmount,
) -> Executor:
    """A machine over ``state_root`` at ``epoch`` (Lotus ``makeVm``)."""
    network_version = config.network_version(epoch)
    circulating = config.circulating_supply(epoch, StateTree(store, state_root))
    network = replace(NetworkConfig.for_version(network_version), chain_id=config.chain_id)
    context = MachineContext(
        network=network,
        epoch=epoch,
        initial_state_root=state_root,
        base_fee=base_fee,
        circ_supply=circulating,
        timestamp=timestamp,
        tracing=config.tracing,
    )
    return Executor(Machine.create(context, store, externs), config.invoker)


def _check_no_migration(config: ExecutionConfig, parent_epoch: int, epoch: int) -> None:
    for height in range(parent_epoch, epoch):
        before = config.network_version(height)
        after = config.network_version(height + 1)
        if before != after:
            raise MissingStateMigration(
                f"network version changes from {before} to {after} after epoch {height}; "
                "state migrations are not implemented"
            )


def _check_distinct_miners(blocks: Sequence[BlockMessages]) -> None:
    seen: set[Address] = set()
    for block in blocks:
        if block.miner in seen:
            raise DuplicateBlockMiner(f"duplicate miner in a tipset ({block.miner})")
        seen.add(block.miner)


def apply_tipset(
    config: ExecutionConfig,
    store: Blockstore,
    externs: Externs,
    *,
    parent_state: CID,
    parent_epoch: int,
    epoch: int,
    blocks: Sequence[BlockMessages],
    base_fee: TokenAmount,
    timestamp: int,
    store_events: bool = True,
) -> TipsetResult:
    """Execute a tipset at ``epoch`` on top of ``parent_state`` (the parent tipset's result).

    ``blocks`` are in tipset order; ``base_fee`` is the tipset's ParentBaseFee and ``timestamp``
    its smallest block timestamp; ``externs`` answer randomness and tipset CIDs for this tipset's
    chain. Runs on the execution stack. The new state and the receipts are written to ``store``,
    and with ``store_events`` the messages' events AMTs too.
    """
    if epoch <= parent_epoch:
        raise TipsetExecutionError(f"tipset epoch {epoch} is not above its parent's {parent_epoch}")
    if not blocks:
        raise TipsetExecutionError("a tipset needs at least one block")
    _check_distinct_miners(blocks)
    _check_no_migration(config, parent_epoch, epoch)
    return run_on_execution_stack(
        lambda: _apply(
            config,
            store,
            externs,
            parent_state,
            parent_epoch,
            epoch,
            blocks,
            base_fee,
            timestamp,
            store_events,
        )
    )


def _apply(
    config: ExecutionConfig,
    store: Blockstore,
    externs: Externs,
    parent_state: CID,
    parent_epoch: int,
    epoch: int,
    blocks: Sequence[BlockMessages],
    base_fee: TokenAmount,
    timestamp: int,
    store_events: bool,
) -> TipsetResult:
    state = parent_state
    implicit_rets: list[ApplyRet] = []
    for null_epoch in range(parent_epoch + 1, epoch):
        null_timestamp = config.genesis_timestamp + config.block_delay_seconds * null_epoch
        cron_executor = _make_executor(
            config, store, externs, state, null_epoch, null_timestamp, base_fee
        )
        implicit_rets.append(
            apply_implicit(cron_executor, cron_message(null_epoch), f"cron at epoch {null_epoch}")
        )
        state = cron_executor.flush()

    executor = _make_executor(config, store, externs, state, epoch, timestamp, base_fee)
    receipts: list[Receipt] = []
    apply_rets: list[ApplyRet] = []
    message_cids: list[CID] = []
    applied: set[CID] = set()
    for block in blocks:
        penalty = 0
        gas_reward = 0
        chain_messages: list[tuple[Message, int, CID]] = [
            (message, message.chain_length(), message.cid()) for message in block.bls_messages
        ]
        chain_messages.extend(
            (signed.message, signed.chain_length(), signed.cid()) for signed in block.secp_messages
        )
        for message, raw_length, chain_cid in chain_messages:
            unsigned_cid = message.cid()
            if unsigned_cid in applied:
                continue
            ret = executor.execute_message(message, ApplyKind.EXPLICIT, raw_length)
            receipts.append(ret.receipt)
            apply_rets.append(ret)
            message_cids.append(chain_cid)
            gas_reward += ret.miner_tip
            penalty += ret.penalty
            applied.add(unsigned_cid)
        reward = award_block_reward_message(
            epoch, block.miner, penalty, gas_reward, block.win_count
        )
        implicit_rets.append(
            apply_implicit(executor, reward, f"block reward for miner {block.miner}")
        )
    implicit_rets.append(apply_implicit(executor, cron_message(epoch), f"cron at epoch {epoch}"))

    receipts_cid = receipts_root(store, receipts)
    if store_events:
        for ret in apply_rets:
            store_events_amt(store, ret)
    state_root = executor.flush()
    return TipsetResult(
        state_root=state_root,
        receipts_root=receipts_cid,
        receipts=tuple(receipts),
        apply_rets=tuple(apply_rets),
        message_cids=tuple(message_cids),
        implicit_rets=tuple(implicit_rets),
        gas_used=sum(receipt.gas_used for receipt in receipts),
    )


def block_messages_of(block: FullBlock) -> BlockMessages:
    """What execution needs of a full block (Lotus ``FilecoinBlockMessages``)."""
    election = block.header.election_proof
    if election is None:
        raise TipsetExecutionError(f"block {block.cid()} has no election proof")
    return BlockMessages(
        block.header.miner, election.win_count, block.bls_messages, block.secpk_messages
    )


def apply_full_blocks(
    config: ExecutionConfig,
    store: Blockstore,
    externs: Externs,
    full_blocks: Sequence[FullBlock],
    parent_epoch: int,
) -> TipsetResult:
    """Lotus ``ExecuteTipSet`` for a tipset of height > 0 given with its messages.

    The blocks are put in tipset order (:class:`~chainsync.chain_types.TipSet`); the parent
    state, epoch, base fee and timestamp come from the headers; ``parent_epoch`` is the parent
    tipset's height. The genesis tipset is not executed (its state is its ParentStateRoot).
    """
    tipset = TipSet(block.header for block in full_blocks)
    by_cid = {block.cid(): block for block in full_blocks}
    if len(by_cid) != len(full_blocks):
        raise TipsetExecutionError("a block appears twice in the tipset")
    return apply_tipset(
        config,
        store,
        externs,
        parent_state=tipset.parent_state,
        parent_epoch=parent_epoch,
        epoch=tipset.height,
        blocks=[block_messages_of(by_cid[cid]) for cid in tipset.cids],
        base_fee=tipset.parent_base_fee,
        timestamp=tipset.min_timestamp,
    )
