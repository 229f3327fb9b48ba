"""State schemas of builtin-actors v16 (network version 25, "Teep"), v17 and v18.

Read from builtin-actors at tags v16.0.1, v17.0.0 and v18.0.0. The three store identical state
structs (v17 and v18 change only message parameters and methods), so one table serves all.
Against v10 (:mod:`fvm.actor_schemas.v9`) they differ in:

- miner: ``vesting_funds`` is inline — ``None`` or ``[head fund, link to the other funds]``
  (``vesting_state.rs``); ``SectorOnChainInfo`` replaces ``deal_ids``/``replaced_sector_age``/
  ``simple_qa_power`` with ``deprecated_deal_ids``/``power_base_epoch``/``flags``, makes the
  expected rewards optional and gains a trailing ``daily_fee`` that sectors written before
  FIP-0100 lack; ``Deadline`` gains ``live_power`` and ``daily_fee``; ``ExpirationSet`` gains a
  trailing ``fee_deduction`` that older sets lack;
- market: ``DealState`` gains ``sector_number`` and loses ``verified_claim``; the state gains
  ``provider_sectors`` (HAMT[provider]HAMT[sector]deal IDs); ``deal_ops_by_epoch`` is keyed by
  the runtime's ``MapKey`` for ``i64`` (zigzag varint) instead of ``u64_key``;
- power: ``ramp_start_epoch`` and ``ramp_duration_epochs`` (FIP-0081) after the miner counts;
- evm: ``transient_data`` (EIP-1153 transient storage, its own KAMT) before ``nonce``.

HAMTs keep ``HAMT_BIT_WIDTH`` (5) through ``DEFAULT_HAMT_CONFIG`` except the balance tables
(6) and the power cron queue (6); every AMT width is unchanged.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from fvm.actor_schemas.kinds import (
    BIGINT,
    BITFIELD,
    BOOL,
    BYTES,
    CID_,
    INT,
    TOKEN,
    UINT,
    UNIT,
    Amt,
    Field,
    Hamt,
    KeyType,
    Link,
    ListOf,
    Nullable,
    Struct,
    VersionSchema,
    fields,
)
from fvm.actor_schemas.v9 import (
    BALANCE_TABLE,
    CRON_QUEUE_AMT_BITWIDTH,
    CRON_QUEUE_HAMT_BITWIDTH,
    DEADLINE_EXPIRATIONS_AMT_BITWIDTH,
    EVM_STORAGE,
    HAMT_BIT_WIDTH,
    PARTITIONS,
    POST_SUBMISSIONS,
    PRECOMMIT_EXPIRY_QUEUE,
    PROOF_VALIDATION_BATCH_AMT_BITWIDTH,
    PROPOSALS_AMT_BITWIDTH,
    SECTORS,
    STATES_AMT_BITWIDTH,
    V10,
)

_CHANGED: Final[dict[str, tuple[Field, ...]]] = {
    "miner.VestingFundsInner": fields(
        ("head", Struct("miner.VestingFund")),
        ("tail", Link(ListOf(Struct("miner.VestingFund")))),
    ),
    "miner.SectorOnChainInfo": fields(
        ("sector_number", UINT),
        ("seal_proof", INT),
        ("sealed_cid", CID_),
        ("deprecated_deal_ids", ListOf(UINT)),
        ("activation", INT),
        ("expiration", INT),
        ("deal_weight", BIGINT),
        ("verified_deal_weight", BIGINT),
        ("initial_pledge", TOKEN),
        ("expected_day_reward", Nullable(TOKEN)),
        ("expected_storage_pledge", Nullable(TOKEN)),
        ("power_base_epoch", INT),
        ("replaced_day_reward", Nullable(TOKEN)),
        ("sector_key_cid", Nullable(CID_)),
        ("flags", UINT),
        Field("daily_fee", TOKEN, defaultable=True),
    ),
    "miner.ExpirationSet": fields(
        ("on_time_sectors", BITFIELD),
        ("early_sectors", BITFIELD),
        ("on_time_pledge", TOKEN),
        ("active_power", Struct("miner.PowerPair")),
        ("faulty_power", Struct("miner.PowerPair")),
        Field("fee_deduction", TOKEN, defaultable=True),
    ),
    "miner.Deadline": fields(
        ("partitions", PARTITIONS),
        ("expirations_epochs", Amt(DEADLINE_EXPIRATIONS_AMT_BITWIDTH, BITFIELD)),
        ("partitions_posted", BITFIELD),
        ("early_terminations", BITFIELD),
        ("live_sectors", UINT),
        ("total_sectors", UINT),
        ("faulty_power", Struct("miner.PowerPair")),
        ("optimistic_post_submissions", POST_SUBMISSIONS),
        ("sectors_snapshot", SECTORS),
        ("partitions_snapshot", PARTITIONS),
        ("optimistic_post_submissions_snapshot", POST_SUBMISSIONS),
        ("live_power", Struct("miner.PowerPair")),
        ("daily_fee", TOKEN),
    ),
    "miner.State": fields(
        ("info", Link(Struct("miner.MinerInfo"))),
        ("pre_commit_deposits", TOKEN),
        ("locked_funds", TOKEN),
        ("vesting_funds", Nullable(Struct("miner.VestingFundsInner"))),
        ("fee_debt", TOKEN),
        ("initial_pledge", TOKEN),
        (
            "pre_committed_sectors",
            Hamt(HAMT_BIT_WIDTH, KeyType.UVARINT, Struct("miner.SectorPreCommitOnChainInfo")),
        ),
        ("pre_committed_sectors_cleanup", PRECOMMIT_EXPIRY_QUEUE),
        ("allocated_sectors", Link(BITFIELD)),
        ("sectors", SECTORS),
        ("proving_period_start", INT),
        ("current_deadline", UINT),
        ("deadlines", Link(Struct("miner.Deadlines"))),
        ("early_terminations", BITFIELD),
        ("deadline_cron_active", BOOL),
    ),
    "market.DealState": fields(
        ("sector_number", UINT),
        ("sector_start_epoch", INT),
        ("last_updated_epoch", INT),
        ("slash_epoch", INT),
    ),
    "market.State": fields(
        ("proposals", Amt(PROPOSALS_AMT_BITWIDTH, Struct("market.DealProposal"))),
        ("states", Amt(STATES_AMT_BITWIDTH, Struct("market.DealState"))),
        ("pending_proposals", Hamt(HAMT_BIT_WIDTH, KeyType.CID, UNIT)),
        ("escrow_table", BALANCE_TABLE),
        ("locked_table", BALANCE_TABLE),
        ("next_id", UINT),
        (
            "deal_ops_by_epoch",
            Hamt(HAMT_BIT_WIDTH, KeyType.VARINT, Hamt(HAMT_BIT_WIDTH, KeyType.UVARINT, UNIT)),
        ),
        ("last_cron", INT),
        ("total_client_locked_collateral", TOKEN),
        ("total_provider_locked_collateral", TOKEN),
        ("total_client_storage_fee", TOKEN),
        ("pending_deal_allocation_ids", Hamt(HAMT_BIT_WIDTH, KeyType.UVARINT, UINT)),
        (
            "provider_sectors",
            Hamt(
                HAMT_BIT_WIDTH,
                KeyType.UVARINT,
                Hamt(HAMT_BIT_WIDTH, KeyType.UVARINT, ListOf(UINT)),
            ),
        ),
    ),
    "power.State": fields(
        ("total_raw_byte_power", BIGINT),
        ("total_bytes_committed", BIGINT),
        ("total_quality_adj_power", BIGINT),
        ("total_qa_bytes_committed", BIGINT),
        ("total_pledge_collateral", TOKEN),
        ("this_epoch_raw_byte_power", BIGINT),
        ("this_epoch_quality_adj_power", BIGINT),
        ("this_epoch_pledge_collateral", TOKEN),
        ("this_epoch_qa_power_smoothed", Struct("shared.FilterEstimate")),
        ("miner_count", INT),
        ("miner_above_min_power_count", INT),
        ("ramp_start_epoch", INT),
        ("ramp_duration_epochs", UINT),
        (
            "cron_event_queue",
            Hamt(
                CRON_QUEUE_HAMT_BITWIDTH,
                KeyType.VARINT,
                Amt(CRON_QUEUE_AMT_BITWIDTH, Struct("power.CronEvent")),
            ),
        ),
        ("first_cron_epoch", INT),
        ("claims", Hamt(HAMT_BIT_WIDTH, KeyType.ADDRESS, Struct("power.Claim"))),
        (
            "proof_validation_batch",
            Nullable(
                Hamt(
                    HAMT_BIT_WIDTH,
                    KeyType.ADDRESS,
                    Amt(PROOF_VALIDATION_BATCH_AMT_BITWIDTH, Struct("shared.SealVerifyInfo")),
                )
            ),
        ),
    ),
    "evm.TransientDataLifespan": fields(("origin", UINT), ("nonce", UINT)),
    "evm.TransientData": fields(
        ("transient_data_state", EVM_STORAGE),
        ("transient_data_lifespan", Struct("evm.TransientDataLifespan")),
    ),
    "evm.State": fields(
        ("bytecode", CID_),
        ("bytecode_hash", BYTES),
        ("contract_state", EVM_STORAGE),
        ("transient_data", Nullable(Struct("evm.TransientData"))),
        ("nonce", UINT),
        ("tombstone", Nullable(Struct("evm.Tombstone"))),
    ),
}

# v10 structs the v16 actors no longer store.
_REMOVED: Final = frozenset({"miner.VestingFunds"})

_V16_STRUCTS: Final = {
    **{name: value for name, value in V10.structs.items() if name not in _REMOVED},
    **_CHANGED,
}


def _version(version: int) -> VersionSchema:
    return VersionSchema(version, MappingProxyType(_V16_STRUCTS), V10.states)


V16: Final = _version(16)
V17: Final = _version(17)
V18: Final = _version(18)
