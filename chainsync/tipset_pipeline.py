"""The consensus core: validate, store, execute and follow tipsets, as Lotus's syncer does.

Both the devnet block producer and a syncing node hand their tipsets to one
:class:`TipsetPipeline`, so a block is accepted by its producer under exactly the rules every
other node applies to it.

Lotus semantics (``chain/sync.go``: ``ValidateTipSet``, ``ValidateBlock``'s
``stateRootCheck``; ``chain/stmgr/execute.go``: ``TipSetState``; ``chain/store/store.go``:
``MaybeTakeHeavierTipSet``): a block's ``ParentStateRoot`` and ``ParentMessageReceipts`` are
the result of executing its *parent* tipset's messages on the parent's own ``ParentStateRoot``.
So accepting tipset ``T`` with parent ``P``:

1. ``P`` must be stored; its execution result is read from the chain index, or computed
   (:func:`~chainsync.tipset_execution.apply_full_blocks` with
   :class:`~chainsync.chain_externs.ChainExterns` for ``P``) — ``P``'s own ``ParentStateRoot``
   can be trusted because ``P`` was itself checked against its parent's result when accepted;
2. every block of ``T`` must carry that state root and receipts root; a block that does not,
   but is properly signed by the miner's worker, is a consensus mismatch: it is recorded in
   the chain index (:class:`~store.chain_index.Mismatch`, kept for inspection), the head does
   not move, and :class:`ConsensusMismatch` is raised;
3. every block passes the beacon check (:mod:`chainsync.devnet_beacon`) and
   :func:`~chainsync.block_validation.validate_block` against ``P``'s computed context
   (weight, base fee, latest beacon entry);
4. the blocks, their messages and the tipset (with its weight) are stored; then, in one
   chain-index transaction, ``P``'s execution result is recorded and the head moves to ``T``
   if ``T`` is heavier than the head.

Restart safety: the only state is the LMDB environment. Blocks and the tipset record are
written before the transaction that records results and moves the head; a node killed in
between restarts at the old head with the new blocks stored but unexecuted, and accepting the
same tipset again redoes the work (everything is content-addressed, so nothing is duplicated).
A tipset whose own execution result is stored, or which is the head, has been accepted before
and is not validated again.

The head's own execution (what its children must carry) is computed on demand by
:meth:`TipsetPipeline.execute_head` and :meth:`TipsetPipeline.parent_context`, the producer's
entry points.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from chainsync.base_fee import MAINNET_BREEZE_HEIGHT, ParentTipsetMessages, compute_base_fee
from chainsync.block_validation import (
    ActorNameOf,
    BlockValidationError,
    ChainRules,
    KeyResolutionError,
    ParentContext,
    Reason,
    check_block_signature,
    check_sanity,
    miner_worker_key,
    validate_block,
)
from chainsync.chain_externs import ChainExterns, latest_beacon_entry
from chainsync.chain_store import ChainStore, TipSetNotFound
from chainsync.chain_types import BlockHeader, FullBlock, TipSet
from chainsync.circulating_supply import vm_circulating_supply
from chainsync.consensus_profile import ConsensusProfile, DevnetConsensus
from chainsync.devnet_beacon import MockBeacon
from chainsync.tipset_execution import DuplicateBlockMiner, ExecutionConfig, apply_full_blocks
from config.networks import NetworkPreset
from fvm.address import Address
from fvm.bundle import Bundle
from fvm.invocation import ActorInvoker
from fvm.proofs.verifier import AcceptAllProofVerifier
from fvm.wasm_invoker import WasmActorInvoker
from store.chain_index import ExecutionResult, Mismatch
from store.errors import FvmNodeError, MalformedInput

Clock = Callable[[], float]
"""Unix time in seconds."""

ExecutionHook = Callable[[TipSet, ExecutionResult, float], None]
"""Called with a tipset, its freshly computed result and the seconds it took (metrics)."""


class PipelineError(FvmNodeError):
    """The pipeline cannot proceed (no genesis in the store)."""


class UnknownParent(PipelineError, LookupError):
    """A tipset whose parent tipset is not in the store."""


class InvalidTipsetBatch(MalformedInput):
    """Tipsets not in ascending height, an empty tipset, or a block given twice."""


class ConsensusMismatch(MalformedInput):
    """A block whose parent state root or receipts root is not what executing its parent gave.

    ``mismatch`` is the record kept in the chain index (keyed by the executed tipset);
    ``block`` the offending block's header, ``tipset`` the executed (parent) tipset.
    """

    def __init__(self, mismatch: Mismatch, block: BlockHeader, tipset: TipSet) -> None:
        self.mismatch = mismatch
        self.block = block
        self.tipset = tipset
        super().__init__(
            f"block {block.cid()} at height {block.height} disagrees with the execution of "
            f"tipset {tipset.key} at height {tipset.height}: state root "
            f"{mismatch.expected_state_root} (block) != {mismatch.computed_state_root} "
            f"(computed), receipts root {mismatch.expected_receipts_root} (block) != "
            f"{mismatch.computed_receipts_root} (computed)"
        )


@dataclass(frozen=True, slots=True)
class TipsetOutcome:
    """What accepting one tipset did.

    ``executed`` is the parent tipset when its messages were executed for this tipset (None
    when its result was already stored, or the tipset had been accepted before); ``gas_used``,
    ``messages_applied`` and ``apply_seconds`` describe that execution (zero otherwise).
    """

    tipset: TipSet
    weight: int
    became_head: bool
    executed: TipSet | None
    gas_used: int
    messages_applied: int
    apply_seconds: float


@dataclass(frozen=True, slots=True)
class _Execution:
    result: ExecutionResult
    fresh: bool
    seconds: float


class TipsetPipeline:
    """Validates, stores, executes and follows tipsets on one :class:`ChainStore`.

    ``actor_name_of`` maps actor code CIDs to builtin type names (the bundle manifest's
    ``name_of``); ``beacon`` checks the blocks' beacon entries and gives the drand round of an
    epoch to the externs; ``clock`` is the wall clock blocks from the future are refused
    against; ``on_execute``, if given, hears of every tipset execution (whether for a child
    being accepted or for the head). Not thread-safe: one caller at a time.
    """

    def __init__(
        self,
        chain_store: ChainStore,
        *,
        preset: NetworkPreset,
        profile: ConsensusProfile,
        execution: ExecutionConfig,
        actor_name_of: ActorNameOf,
        beacon: MockBeacon,
        clock: Clock = time.time,
        on_execute: ExecutionHook | None = None,
    ) -> None:
        self.chain_store = chain_store
        self.preset = preset
        self.profile = profile
        self.execution = execution
        self.actor_name_of = actor_name_of
        self.beacon = beacon
        self.clock = clock
        self.on_execute = on_execute

    # -- queries ----------------------------------------------------------------------------

    def head(self) -> TipSet:
        head = self.chain_store.heaviest()
        if head is None:
            raise PipelineError("the chain store has no head: load a genesis first")
        return head

    def weight(self, tipset: TipSet) -> int:
        """The tipset's chain weight: as stored, or computed by the consensus profile."""
        meta = self.chain_store.index.tipset_meta(tipset.key.to_bytes())
        if meta is not None and meta.weight is not None:
            return meta.weight
        return self.profile.weight(self.chain_store.blockstore, tipset)

    def chain_rules(self, height: int) -> ChainRules:
        return ChainRules(
            network_version=self.preset.network_version_at(height),
            actors_version=self.preset.actors_version_at(height),
            actor_name_of=self.actor_name_of,
        )

    def base_fee_after(self, tipset: TipSet) -> int:
        """The ``ParentBaseFee`` every child of ``tipset`` carries (Lotus ``ComputeBaseFee``)."""
        blocks = [self.chain_store.get_block_messages(header) for header in tipset.blocks]
        breeze = MAINNET_BREEZE_HEIGHT if self.preset.name == "mainnet" else None
        return compute_base_fee(
            ParentTipsetMessages(tipset.height, tipset.parent_base_fee, blocks),
            self.preset.network_version_at,
            breeze_height=breeze,
        )

    def mismatches(self) -> list[Mismatch]:
        """Every consensus mismatch recorded so far."""
        return self.chain_store.index.mismatches()

    # -- the head's own execution -----------------------------------------------------------

    def execute_head(self) -> ExecutionResult:
        """The result of executing the head tipset's messages (computed once, then stored)."""
        return self._executed(self.head()).result

    def parent_context(self, tipset: TipSet) -> ParentContext:
        """What a child of ``tipset`` must carry: executes ``tipset`` if not done yet (and
        stores the result)."""
        return self._context(tipset, self._executed(tipset).result)

    def _executed(self, tipset: TipSet) -> _Execution:
        execution = self._execute(tipset)
        if execution.fresh:
            self.chain_store.advance_head(self.head(), [execution.result])
        return execution

    # -- accepting tipsets ------------------------------------------------------------------

    def accept(self, full_tipsets: Sequence[Sequence[FullBlock]]) -> list[TipsetOutcome]:
        """Accept tipsets given in ascending height, each extending a stored tipset (or one
        earlier in the batch). Stops at the first refusal, raising it; tipsets accepted before
        it stay accepted."""
        heights: list[int] = []
        for index, blocks in enumerate(full_tipsets):
            if not blocks:
                raise InvalidTipsetBatch(f"tipset {index} of the batch has no blocks")
            height = blocks[0].header.height
            if heights and height <= heights[-1]:
                raise InvalidTipsetBatch(
                    f"tipset {index} of the batch is at height {height}, not above {heights[-1]}"
                )
            heights.append(height)
        return [self.accept_tipset(blocks) for blocks in full_tipsets]

    def accept_tipset(self, blocks: Sequence[FullBlock]) -> TipsetOutcome:
        """Accept one tipset; see the module docstring for the steps."""
        if not blocks:
            raise InvalidTipsetBatch("a tipset needs at least one block")
        tipset = TipSet(block.header for block in blocks)
        if len({block.cid() for block in blocks}) != len(blocks):
            raise InvalidTipsetBatch(f"a block of tipset {tipset.key} is given twice")
        if len({header.miner for header in tipset.blocks}) != len(tipset.blocks):
            raise DuplicateBlockMiner(f"two blocks of tipset {tipset.key} have the same miner")
        head = self.head()
        key = tipset.key.to_bytes()
        if tipset.key == head.key or self.chain_store.index.execution_result(key) is not None:
            return TipsetOutcome(tipset, self.weight(tipset), False, None, 0, 0, 0.0)
        try:
            parent = self.chain_store.get_tipset(tipset.parents)
        except TipSetNotFound:
            raise UnknownParent(
                f"parent {tipset.parents} of tipset {tipset.key} at height {tipset.height} "
                "is not stored"
            ) from None
        execution = self._execute(parent)
        context = self._context(parent, execution.result)
        for block in blocks:
            self._check_roots(block, context, execution)
        for block in blocks:
            self.beacon.check_block_entries(
                self.preset.network_version_at(block.header.height),
                block.header,
                context.prev_beacon,
            )
            validate_block(
                block,
                context,
                store=self.chain_store.blockstore,
                profile=self.profile,
                rules=self.chain_rules(tipset.height),
                now=int(self.clock()),
            )
        for block in blocks:
            self.chain_store.put_block(block.header, block.bls_messages, block.secpk_messages)
        weight = self.profile.weight(self.chain_store.blockstore, tipset)
        self.chain_store.put_tipset(tipset, weight)
        became_head = weight > self.weight(head)
        executed = [execution.result] if execution.fresh else []
        if became_head or executed:
            self.chain_store.advance_head(tipset if became_head else head, executed)
        result = execution.result
        fresh = execution.fresh
        return TipsetOutcome(
            tipset=tipset,
            weight=weight,
            became_head=became_head,
            executed=parent if fresh else None,
            gas_used=result.gas_used if fresh else 0,
            messages_applied=result.messages_applied if fresh else 0,
            apply_seconds=execution.seconds,
        )

    # -- steps ------------------------------------------------------------------------------

    def _execute(self, tipset: TipSet) -> _Execution:
        """``tipset``'s execution result, from the index or computed (not stored here)."""
        key = tipset.key.to_bytes()
        stored = self.chain_store.index.execution_result(key)
        if stored is not None:
            return _Execution(stored, False, 0.0)
        if tipset.height == 0:
            genesis = ExecutionResult(
                key, tipset.parent_state, tipset.parent_message_receipts, 0, 0
            )
            return _Execution(genesis, True, 0.0)
        parent = self.chain_store.get_tipset(tipset.parents)
        full_blocks = []
        for header in tipset.blocks:
            bls_messages, secp_messages = self.chain_store.get_block_messages(header)
            full_blocks.append(FullBlock(header, tuple(bls_messages), tuple(secp_messages)))
        externs = ChainExterns(
            self.chain_store,
            tipset,
            self.execution.network_version,
            beacon_rounds=self.beacon,
        )
        started = time.perf_counter()
        computed = apply_full_blocks(
            self.execution, self.chain_store.blockstore, externs, full_blocks, parent.height
        )
        seconds = time.perf_counter() - started
        result = ExecutionResult(
            key,
            computed.state_root,
            computed.receipts_root,
            computed.gas_used,
            computed.messages_applied,
        )
        if self.on_execute is not None:
            self.on_execute(tipset, result, seconds)
        return _Execution(result, True, seconds)

    def _context(self, tipset: TipSet, result: ExecutionResult) -> ParentContext:
        return ParentContext(
            tipset=tipset,
            state_root=result.state_root,
            receipts_root=result.receipts_root,
            weight=self.weight(tipset),
            base_fee=self.base_fee_after(tipset),
            prev_beacon=latest_beacon_entry(self.chain_store, tipset),
        )

    def _check_roots(self, block: FullBlock, context: ParentContext, execution: _Execution) -> None:
        """Raise :class:`ConsensusMismatch` (after recording it) if ``block`` claims other
        parent roots than were computed. Only a block signed by the miner's worker gets a
        record: anyone can forge an unsigned header."""
        header = block.header
        if (
            header.parent_state_root == context.state_root
            and header.parent_message_receipts == context.receipts_root
        ):
            return
        if header.parents != context.tipset.cids:
            raise BlockValidationError(
                Reason.WRONG_PARENTS,
                f"block parents are not the parent tipset {context.tipset.key}",
            )
        self._check_signed_by_worker(block, context)
        parent = context.tipset
        mismatch = Mismatch(
            key=parent.key.to_bytes(),
            height=parent.height,
            expected_state_root=header.parent_state_root,
            computed_state_root=context.state_root,
            expected_receipts_root=header.parent_message_receipts,
            computed_receipts_root=context.receipts_root,
        )
        executed = [execution.result] if execution.fresh else []
        self.chain_store.advance_head(self.head(), executed, [mismatch])
        raise ConsensusMismatch(mismatch, header, parent)

    def _check_signed_by_worker(self, block: FullBlock, context: ParentContext) -> None:
        check_sanity(block)
        rules = self.chain_rules(block.header.height)
        try:
            worker = miner_worker_key(
                self.chain_store.blockstore,
                context.state_root,
                block.header.miner,
                rules.actors_version,
                rules.actor_name_of,
            )
        except KeyResolutionError as exc:
            raise BlockValidationError(Reason.UNKNOWN_MINER, str(exc)) from None
        check_block_signature(block, worker)


def devnet_execution_config(
    preset: NetworkPreset,
    genesis_timestamp: int,
    block_delay_secs: int,
    invoker: ActorInvoker | None = None,
) -> ExecutionConfig:
    """How a devnet executes tipsets (the pipeline and ``replay`` alike): the preset's network
    versions and chain ID, Lotus's circulating supply, and by default a WebAssembly invoker
    whose proof verifier accepts every proof (the devnet seals no sectors)."""
    return ExecutionConfig(
        network_version=preset.network_version_at,
        circulating_supply=lambda epoch, tree: vm_circulating_supply(
            epoch, tree, preset.network_version_at(epoch)
        ),
        invoker=WasmActorInvoker(AcceptAllProofVerifier()) if invoker is None else invoker,
        chain_id=preset.chain_id,
        genesis_timestamp=genesis_timestamp,
        block_delay_seconds=block_delay_secs,
    )


def devnet_pipeline(
    chain_store: ChainStore,
    preset: NetworkPreset,
    bundle: Bundle,
    miner: Address,
    *,
    invoker: ActorInvoker | None = None,
    clock: Clock = time.time,
    on_execute: ExecutionHook | None = None,
) -> TipsetPipeline:
    """The devnet's pipeline over a chain store holding its genesis.

    ``bundle`` is the devnet's v10 bundle; its code is put into the store (genesis CARs do not
    carry it). ``miner`` is the devnet miner's ID address (f01000 from
    :func:`node.devnet.genesis.build_devnet_genesis`). ``invoker`` defaults to a
    :class:`~fvm.wasm_invoker.WasmActorInvoker` that accepts every proof (the devnet seals no
    sectors).
    """
    bundle.put_into(chain_store.blockstore)
    execution = devnet_execution_config(
        preset, chain_store.genesis().min_timestamp, preset.block_delay_secs, invoker
    )
    return TipsetPipeline(
        chain_store,
        preset=preset,
        profile=DevnetConsensus(miner, block_delay_secs=preset.block_delay_secs),
        execution=execution,
        actor_name_of=bundle.manifest.name_of,
        beacon=MockBeacon(),
        clock=clock,
        on_execute=on_execute,
    )
