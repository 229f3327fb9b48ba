"""State schemas of builtin-actors v9 (network version 17, "Shark") and v10 (18, "Hygge").

Read from builtin-actors at tags v9.0.3 and v10.0.0: each actor's ``src/state.rs`` and the types
it stores (miner ``deadline_state.rs``, ``partition_state.rs``, ``expiration_queue.rs``,
``vesting_state.rs``, ``beneficiary.rs``, ``types.rs``; market ``deal.rs``; power's ``Claim``;
verifreg's ``Allocation``/``Claim``; multisig's ``Transaction``; paych's ``LaneState``), the
runtime's collection helpers (``Set``, ``SetMultimap``, ``Multimap``, ``MapMap``,
``BalanceTable``) and the ``fvm_shared`` types (``FilterEstimate``, ``PoStProof``,
``SealVerifyInfo``) and FRC-46's ``TokenState`` (datacap). The two versions store identical
structs for the actors they share; v10 adds the EVM family (``evm``, ``eam``, ``ethaccount``,
``placeholder``).

Bit widths are the constants the actors create each collection with: ``HAMT_BIT_WIDTH`` (5)
unless stated, ``BALANCE_TABLE_BITWIDTH`` 6, ``CRON_QUEUE_HAMT_BITWIDTH`` and
``CRON_QUEUE_AMT_BITWIDTH`` 6, ``PROOF_VALIDATION_BATCH_AMT_BITWIDTH`` 4, ``PROPOSALS_AMT_BITWIDTH``
5, ``STATES_AMT_BITWIDTH`` 6, ``SECTORS_AMT_BITWIDTH`` 5, ``PRECOMMIT_EXPIRY_AMT_BITWIDTH`` 6,
``DEADLINE_PARTITIONS_AMT_BITWIDTH`` 3, ``DEADLINE_EXPIRATIONS_AMT_BITWIDTH`` 5,
``DEADLINE_OPTIMISTIC_POST_SUBMISSIONS_AMT_BITWIDTH`` 2, ``PARTITION_EXPIRATION_AMT_BITWIDTH`` 4,
``PARTITION_EARLY_TERMINATION_ARRAY_AMT_BITWIDTH`` 3, ``LANE_STATES_AMT_BITWIDTH`` 3, and the
EVM's ``KAMT_CONFIG`` (bit width 5, min data depth 0, max array width 1).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from fvm.actor_schemas.kinds import (
    ADDRESS,
    BIGINT,
    BITFIELD,
    BOOL,
    BYTES,
    CID_,
    INT,
    LABEL,
    STRING,
    TOKEN,
    U256,
    UINT,
    UNIT,
    Amt,
    BitWidthFromField,
    Field,
    Hamt,
    Kamt,
    KeyType,
    Link,
    ListOf,
    Nullable,
    Struct,
    VersionSchema,
    fields,
)

HAMT_BIT_WIDTH: Final = 5
BALANCE_TABLE_BITWIDTH: Final = 6
CRON_QUEUE_HAMT_BITWIDTH: Final = 6
CRON_QUEUE_AMT_BITWIDTH: Final = 6
PROOF_VALIDATION_BATCH_AMT_BITWIDTH: Final = 4
PROPOSALS_AMT_BITWIDTH: Final = 5
STATES_AMT_BITWIDTH: Final = 6
SECTORS_AMT_BITWIDTH: Final = 5
PRECOMMIT_EXPIRY_AMT_BITWIDTH: Final = 6
DEADLINE_PARTITIONS_AMT_BITWIDTH: Final = 3
DEADLINE_EXPIRATIONS_AMT_BITWIDTH: Final = 5
DEADLINE_OPTIMISTIC_POST_SUBMISSIONS_AMT_BITWIDTH: Final = 2
PARTITION_EXPIRATION_AMT_BITWIDTH: Final = 4
PARTITION_EARLY_TERMINATION_ARRAY_AMT_BITWIDTH: Final = 3
LANE_STATES_AMT_BITWIDTH: Final = 3
EVM_KAMT_BIT_WIDTH: Final = 5
EVM_KAMT_MIN_DATA_DEPTH: Final = 0
EVM_KAMT_MAX_ARRAY_WIDTH: Final = 1

# runtime util/set.rs: a HAMT whose values are () — the members are the keys.
U64_SET: Final = Hamt(HAMT_BIT_WIDTH, KeyType.UVARINT, UNIT)
# market balance_table.rs: address -> TokenAmount.
BALANCE_TABLE: Final = Hamt(BALANCE_TABLE_BITWIDTH, KeyType.ADDRESS, TOKEN)
# miner bitfield_queue.rs: epoch -> bitfield of sector numbers.
PRECOMMIT_EXPIRY_QUEUE: Final = Amt(PRECOMMIT_EXPIRY_AMT_BITWIDTH, BITFIELD)
SECTORS: Final = Amt(SECTORS_AMT_BITWIDTH, Struct("miner.SectorOnChainInfo"))
PARTITIONS: Final = Amt(DEADLINE_PARTITIONS_AMT_BITWIDTH, Struct("miner.Partition"))
POST_SUBMISSIONS: Final = Amt(
    DEADLINE_OPTIMISTIC_POST_SUBMISSIONS_AMT_BITWIDTH, Struct("miner.WindowedPoSt")
)
# evm interpreter/system.rs: contract storage, U256 -> U256 in a KAMT.
EVM_STORAGE: Final = Kamt(
    EVM_KAMT_BIT_WIDTH, EVM_KAMT_MIN_DATA_DEPTH, EVM_KAMT_MAX_ARRAY_WIDTH, KeyType.U256, U256
)
# frc46_token TokenState: maps keyed by actor_id_key (unsigned LEB128), width from the state.
TOKEN_HAMT_WIDTH: Final = BitWidthFromField("hamt_bit_width")

_SHARED: Final[dict[str, tuple[Field, ...]]] = {
    "shared.FilterEstimate": fields(("position", BIGINT), ("velocity", BIGINT)),
    "shared.PoStProof": fields(("post_proof", INT), ("proof_bytes", BYTES)),
    "shared.SectorID": fields(("miner", UINT), ("number", UINT)),
    "shared.SealVerifyInfo": fields(
        ("registered_proof", INT),
        ("sector_id", Struct("shared.SectorID")),
        ("deal_ids", ListOf(UINT)),
        ("randomness", BYTES),
        ("interactive_randomness", BYTES),
        ("proof", BYTES),
        ("sealed_cid", CID_),
        ("unsealed_cid", CID_),
    ),
}

_SYSTEM: Final[dict[str, tuple[Field, ...]]] = {
    "system.BuiltinActor": fields(("name", STRING), ("code", CID_)),
    "system.State": fields(("builtin_actors", Link(ListOf(Struct("system.BuiltinActor"))))),
}

_INIT: Final[dict[str, tuple[Field, ...]]] = {
    "init.State": fields(
        ("address_map", Hamt(HAMT_BIT_WIDTH, KeyType.ADDRESS, UINT)),
        ("next_id", UINT),
        ("network_name", STRING),
    ),
}

_CRON: Final[dict[str, tuple[Field, ...]]] = {
    "cron.Entry": fields(("receiver", ADDRESS), ("method_num", UINT)),
    "cron.State": fields(("entries", ListOf(Struct("cron.Entry")))),
}

_ACCOUNT: Final[dict[str, tuple[Field, ...]]] = {
    "account.State": fields(("address", ADDRESS)),
}

_POWER: Final[dict[str, tuple[Field, ...]]] = {
    "power.Claim": fields(
        ("window_post_proof_type", INT),
        ("raw_byte_power", BIGINT),
        ("quality_adj_power", BIGINT),
    ),
    "power.CronEvent": fields(("miner_addr", ADDRESS), ("callback_payload", BYTES)),
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
}

_MINER: Final[dict[str, tuple[Field, ...]]] = {
    "miner.PowerPair": fields(("raw", BIGINT), ("qa", BIGINT)),
    "miner.WorkerKeyChange": fields(("new_worker", ADDRESS), ("effective_at", INT)),
    "miner.BeneficiaryTerm": fields(("quota", TOKEN), ("used_quota", TOKEN), ("expiration", INT)),
    "miner.PendingBeneficiaryChange": fields(
        ("new_beneficiary", ADDRESS),
        ("new_quota", TOKEN),
        ("new_expiration", INT),
        ("approved_by_beneficiary", BOOL),
        ("approved_by_nominee", BOOL),
    ),
    "miner.MinerInfo": fields(
        ("owner", ADDRESS),
        ("worker", ADDRESS),
        ("control_addresses", ListOf(ADDRESS)),
        ("pending_worker_key", Nullable(Struct("miner.WorkerKeyChange"))),
        ("peer_id", BYTES),
        ("multi_address", ListOf(BYTES)),
        ("window_post_proof_type", INT),
        ("sector_size", UINT),
        ("window_post_partition_sectors", UINT),
        ("consensus_fault_elapsed", INT),
        ("pending_owner_address", Nullable(ADDRESS)),
        ("beneficiary", ADDRESS),
        ("beneficiary_term", Struct("miner.BeneficiaryTerm")),
        ("pending_beneficiary_term", Nullable(Struct("miner.PendingBeneficiaryChange"))),
    ),
    "miner.VestingFund": fields(("epoch", INT), ("amount", TOKEN)),
    "miner.VestingFunds": fields(("funds", ListOf(Struct("miner.VestingFund")))),
    "miner.SectorPreCommitInfo": fields(
        ("seal_proof", INT),
        ("sector_number", UINT),
        ("sealed_cid", CID_),
        ("seal_rand_epoch", INT),
        ("deal_ids", ListOf(UINT)),
        ("expiration", INT),
        ("unsealed_cid", Nullable(CID_)),
    ),
    "miner.SectorPreCommitOnChainInfo": fields(
        ("info", Struct("miner.SectorPreCommitInfo")),
        ("pre_commit_deposit", TOKEN),
        ("pre_commit_epoch", INT),
    ),
    "miner.SectorOnChainInfo": fields(
        ("sector_number", UINT),
        ("seal_proof", INT),
        ("sealed_cid", CID_),
        ("deal_ids", ListOf(UINT)),
        ("activation", INT),
        ("expiration", INT),
        ("deal_weight", BIGINT),
        ("verified_deal_weight", BIGINT),
        ("initial_pledge", TOKEN),
        ("expected_day_reward", TOKEN),
        ("expected_storage_pledge", TOKEN),
        ("replaced_sector_age", INT),
        ("replaced_day_reward", TOKEN),
        ("sector_key_cid", Nullable(CID_)),
        ("simple_qa_power", BOOL),
    ),
    "miner.ExpirationSet": fields(
        ("on_time_sectors", BITFIELD),
        ("early_sectors", BITFIELD),
        ("on_time_pledge", TOKEN),
        ("active_power", Struct("miner.PowerPair")),
        ("faulty_power", Struct("miner.PowerPair")),
    ),
    "miner.Partition": fields(
        ("sectors", BITFIELD),
        ("unproven", BITFIELD),
        ("faults", BITFIELD),
        ("recoveries", BITFIELD),
        ("terminated", BITFIELD),
        (
            "expirations_epochs",
            Amt(PARTITION_EXPIRATION_AMT_BITWIDTH, Struct("miner.ExpirationSet")),
        ),
        ("early_terminated", Amt(PARTITION_EARLY_TERMINATION_ARRAY_AMT_BITWIDTH, BITFIELD)),
        ("live_power", Struct("miner.PowerPair")),
        ("unproven_power", Struct("miner.PowerPair")),
        ("faulty_power", Struct("miner.PowerPair")),
        ("recovering_power", Struct("miner.PowerPair")),
    ),
    "miner.WindowedPoSt": fields(
        ("partitions", BITFIELD), ("proofs", ListOf(Struct("shared.PoStProof")))
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
    ),
    "miner.Deadlines": fields(("due", ListOf(Link(Struct("miner.Deadline"))))),
    "miner.State": fields(
        ("info", Link(Struct("miner.MinerInfo"))),
        ("pre_commit_deposits", TOKEN),
        ("locked_funds", TOKEN),
        ("vesting_funds", Link(Struct("miner.VestingFunds"))),
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
}

_MARKET: Final[dict[str, tuple[Field, ...]]] = {
    "market.DealProposal": fields(
        ("piece_cid", CID_),
        ("piece_size", UINT),
        ("verified_deal", BOOL),
        ("client", ADDRESS),
        ("provider", ADDRESS),
        ("label", LABEL),
        ("start_epoch", INT),
        ("end_epoch", INT),
        ("storage_price_per_epoch", TOKEN),
        ("provider_collateral", TOKEN),
        ("client_collateral", TOKEN),
    ),
    "market.DealState": fields(
        ("sector_start_epoch", INT),
        ("last_updated_epoch", INT),
        ("slash_epoch", INT),
        ("verified_claim", UINT),
    ),
    "market.State": fields(
        ("proposals", Amt(PROPOSALS_AMT_BITWIDTH, Struct("market.DealProposal"))),
        ("states", Amt(STATES_AMT_BITWIDTH, Struct("market.DealState"))),
        ("pending_proposals", Hamt(HAMT_BIT_WIDTH, KeyType.CID, UNIT)),
        ("escrow_table", BALANCE_TABLE),
        ("locked_table", BALANCE_TABLE),
        ("next_id", UINT),
        ("deal_ops_by_epoch", Hamt(HAMT_BIT_WIDTH, KeyType.UVARINT, U64_SET)),
        ("last_cron", INT),
        ("total_client_locked_collateral", TOKEN),
        ("total_provider_locked_collateral", TOKEN),
        ("total_client_storage_fee", TOKEN),
        ("pending_deal_allocation_ids", Hamt(HAMT_BIT_WIDTH, KeyType.UVARINT, UINT)),
    ),
}

_PAYCH: Final[dict[str, tuple[Field, ...]]] = {
    "paych.LaneState": fields(("redeemed", TOKEN), ("nonce", UINT)),
    "paych.State": fields(
        ("from", ADDRESS),
        ("to", ADDRESS),
        ("to_send", TOKEN),
        ("settling_at", INT),
        ("min_settle_height", INT),
        ("lane_states", Amt(LANE_STATES_AMT_BITWIDTH, Struct("paych.LaneState"))),
    ),
}

_MULTISIG: Final[dict[str, tuple[Field, ...]]] = {
    "multisig.Transaction": fields(
        ("to", ADDRESS),
        ("value", TOKEN),
        ("method", UINT),
        ("params", BYTES),
        ("approved", ListOf(ADDRESS)),
    ),
    "multisig.State": fields(
        ("signers", ListOf(ADDRESS)),
        ("num_approvals_threshold", UINT),
        ("next_tx_id", INT),
        ("initial_balance", TOKEN),
        ("start_epoch", INT),
        ("unlock_duration", INT),
        ("pending_txs", Hamt(HAMT_BIT_WIDTH, KeyType.VARINT, Struct("multisig.Transaction"))),
    ),
}

_REWARD: Final[dict[str, tuple[Field, ...]]] = {
    "reward.State": fields(
        ("cumsum_baseline", BIGINT),
        ("cumsum_realized", BIGINT),
        ("effective_network_time", INT),
        ("effective_baseline_power", BIGINT),
        ("this_epoch_reward", TOKEN),
        ("this_epoch_reward_smoothed", Struct("shared.FilterEstimate")),
        ("this_epoch_baseline_power", BIGINT),
        ("epoch", INT),
        ("total_storage_power_reward", TOKEN),
        ("simple_total", TOKEN),
        ("baseline_total", TOKEN),
    ),
}

_VERIFREG: Final[dict[str, tuple[Field, ...]]] = {
    "verifreg.RemoveDataCapProposalID": fields(("id", UINT)),
    "verifreg.Allocation": fields(
        ("client", UINT),
        ("provider", UINT),
        ("data", CID_),
        ("size", UINT),
        ("term_min", INT),
        ("term_max", INT),
        ("expiration", INT),
    ),
    "verifreg.Claim": fields(
        ("provider", UINT),
        ("client", UINT),
        ("data", CID_),
        ("size", UINT),
        ("term_min", INT),
        ("term_max", INT),
        ("term_start", INT),
        ("sector", UINT),
    ),
    "verifreg.State": fields(
        ("root_key", ADDRESS),
        ("verifiers", Hamt(HAMT_BIT_WIDTH, KeyType.ADDRESS, BIGINT)),
        (
            "remove_data_cap_proposal_ids",
            Hamt(HAMT_BIT_WIDTH, KeyType.ADDRESS_PAIR, Struct("verifreg.RemoveDataCapProposalID")),
        ),
        (
            "allocations",
            Hamt(
                HAMT_BIT_WIDTH,
                KeyType.UVARINT,
                Hamt(HAMT_BIT_WIDTH, KeyType.UVARINT, Struct("verifreg.Allocation")),
            ),
        ),
        ("next_allocation_id", UINT),
        (
            "claims",
            Hamt(
                HAMT_BIT_WIDTH,
                KeyType.UVARINT,
                Hamt(HAMT_BIT_WIDTH, KeyType.UVARINT, Struct("verifreg.Claim")),
            ),
        ),
    ),
}

_DATACAP: Final[dict[str, tuple[Field, ...]]] = {
    "frc46.TokenState": fields(
        ("supply", TOKEN),
        ("balances", Hamt(TOKEN_HAMT_WIDTH, KeyType.UVARINT, TOKEN)),
        (
            "allowances",
            Hamt(TOKEN_HAMT_WIDTH, KeyType.UVARINT, Hamt(TOKEN_HAMT_WIDTH, KeyType.UVARINT, TOKEN)),
        ),
        ("hamt_bit_width", UINT),
    ),
    "datacap.State": fields(("governor", ADDRESS), ("token", Struct("frc46.TokenState"))),
}

_EVM: Final[dict[str, tuple[Field, ...]]] = {
    "evm.Tombstone": fields(("origin", UINT), ("nonce", UINT)),
    "evm.State": fields(
        ("bytecode", CID_),
        ("bytecode_hash", BYTES),
        ("contract_state", EVM_STORAGE),
        ("nonce", UINT),
        ("tombstone", Nullable(Struct("evm.Tombstone"))),
    ),
    # The EAM, Ethereum accounts and placeholders keep no state: their head is the empty array.
    "empty.State": (),
}

_V9_STATES: Final = {
    "system": "system.State",
    "init": "init.State",
    "cron": "cron.State",
    "account": "account.State",
    "storagepower": "power.State",
    "storageminer": "miner.State",
    "storagemarket": "market.State",
    "paymentchannel": "paych.State",
    "multisig": "multisig.State",
    "reward": "reward.State",
    "verifiedregistry": "verifreg.State",
    "datacap": "datacap.State",
}

_V9_STRUCTS: Final = {
    **_SHARED,
    **_SYSTEM,
    **_INIT,
    **_CRON,
    **_ACCOUNT,
    **_POWER,
    **_MINER,
    **_MARKET,
    **_PAYCH,
    **_MULTISIG,
    **_REWARD,
    **_VERIFREG,
    **_DATACAP,
}

V9: Final = VersionSchema(9, MappingProxyType(_V9_STRUCTS), MappingProxyType(_V9_STATES))

V10: Final = VersionSchema(
    10,
    MappingProxyType({**_V9_STRUCTS, **_EVM}),
    MappingProxyType(
        {
            **_V9_STATES,
            "placeholder": "empty.State",
            "evm": "evm.State",
            "eam": "empty.State",
            "ethaccount": "empty.State",
        }
    ),
)
