"""The kernel: what one actor invocation may do to the VM, ref-fvm's ``DefaultKernel``.

Each invocation of actor code gets a kernel bound to the message's
:class:`~fvm.call_manager.CallManager`, holding the invocation's facts (caller, receiver,
method, value received, read-only flag) and its :class:`~fvm.kernel.block_registry.BlockRegistry`.
The syscall handlers (:mod:`fvm.kernel.syscalls`) decode arguments from the actor's memory and
call the methods here, which charge gas, check their arguments and reach the state tree,
blockstore, externs and nested sends. Failures the actor sees as error numbers are
:class:`~fvm.syscalls.abi.SyscallError`; :class:`~fvm.gas.gas_tracker.OutOfGas` and
:class:`~fvm.invocation.FatalError` (and any other exception) abort it.

Ported from ref-fvm ``fvm/src/kernel/{mod,default}.rs`` at ``fvm@v2.12.1`` (network versions
15-17, :class:`KernelV2`) and ``fvm@v3.13.3`` (18-20, :class:`KernelV3`). What the two share
lives in :class:`Kernel`, which works for both because the call manager's state access is free
in v2 and metered in v3 (so ``call_manager.get_actor`` is v2's plain state-tree read). What
differs as data (codecs, block size limit) is a :class:`KernelRules` row per generation; what
differs in behaviour is in the subclasses:

* v3 charges for the queries v2 answers for free (balance, address resolution, code CIDs,
  builtin types, contexts);
* v3 refuses state changes in read-only calls, lets only the init actor create actors (the
  call manager creates them, or fills a placeholder), derives new f2 addresses from the
  message's origin address as given, and takes send gas limits and flags;
* v2 lets any actor create a builtin non-singleton actor, resolves the origin (and signature
  signers) to key addresses through account state, and counts created actors when it hands
  out a new address.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Final

from fvm.actor_state import ActorState
from fvm.address import Address
from fvm.address import Protocol as AddressProtocol
from fvm.call_manager import CallManager
from fvm.externs import Externs, ExternsError
from fvm.gas.charge import GasCharge, Milligas
from fvm.gas.price_list import PriceListV2, PriceListV3
from fvm.invocation import NO_DATA_BLOCK_ID, Block, FatalError
from fvm.kernel.block_registry import V2_BLOCK_CODECS, V3_BLOCK_CODECS, BlockRegistry
from fvm.kernel.events import (
    MAX_ENCODED_EVENT_BYTES,
    StampedEvent,
    decode_actor_event,
    validate_actor_event,
)
from fvm.machine import INIT_ACTOR_ID, Machine
from fvm.proofs.verifier import ProofVerifier
from fvm.randomness import draw_randomness
from fvm.syscalls.abi import AbiGeneration, ErrorNumber, SyscallError
from fvm.token import TokenAmount
from store import dag_cbor
from store.cid import BLAKE2B_256, CID
from store.errors import BlockNotFound, FvmNodeError, MalformedInput

BLAKE2B_256_LENGTH: Final = 32
# ref-fvm v3 ``FINALITY``: tipset CIDs are only looked up within this many epochs.
FINALITY: Final = 900
# fvm_shared ``sys::SendFlags::READ_ONLY`` and ``ContextFlags::READ_ONLY``.
READ_ONLY_FLAG: Final = 1
U128_LIMIT: Final = 1 << 128
U64_MASK: Final = (1 << 64) - 1
I32_MAX: Final = (1 << 31) - 1
MAX_ARTIFACT_NAME_BYTES: Final = 256


@dataclass(frozen=True, slots=True)
class KernelRules:
    """What a ref-fvm generation's kernel fixes as constants.

    ``block_codecs`` are the codecs the block registry accepts; ``max_block_size`` the largest
    block ``block_create`` accepts (None: no limit).
    """

    generation: AbiGeneration
    block_codecs: frozenset[int]
    max_block_size: int | None


KERNEL_RULES_V2: Final = KernelRules(AbiGeneration.V2, V2_BLOCK_CODECS, None)
KERNEL_RULES_V3: Final = KernelRules(AbiGeneration.V3, V3_BLOCK_CODECS, 1 << 20)


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """What ``send.send`` writes back: the exit code and the return block's handle and stat."""

    exit_code: int
    block_id: int
    codec: int
    size: int


def token_u128(amount: TokenAmount, what: str) -> tuple[int, int]:
    """``amount`` as the ABI's ``(lo, hi)`` u128 halves; a value outside u128 is fatal."""
    if not 0 <= amount < U128_LIMIT:
        raise FatalError(f"{what} exceeds u128 limit: {amount}")
    return amount & U64_MASK, amount >> 64


class Kernel(ABC):
    """The operations both generations share (see the module documentation)."""

    rules: ClassVar[KernelRules]

    __slots__ = (
        "actor_id",
        "blocks",
        "call_manager",
        "caller",
        "machine",
        "method",
        "price_list",
        "proof_verifier",
        "read_only",
        "value_received",
    )

    def __init__(
        self,
        call_manager: CallManager,
        blocks: BlockRegistry,
        caller: int,
        actor_id: int,
        method: int,
        value_received: TokenAmount,
        read_only: bool = False,
        *,
        proof_verifier: ProofVerifier,
    ) -> None:
        self.call_manager = call_manager
        self.machine: Machine = call_manager.machine
        prices = call_manager.price_list
        if not isinstance(prices, PriceListV2 | PriceListV3):
            raise FatalError(f"the {prices.name} price list belongs to another kernel generation")
        self.price_list: PriceListV2 | PriceListV3 = prices
        self.blocks = blocks
        self.caller = caller
        self.actor_id = actor_id
        self.method = method
        self.value_received = value_received
        self.read_only = read_only
        self.proof_verifier = proof_verifier

    @classmethod
    def new_block_registry(cls) -> BlockRegistry:
        return BlockRegistry(cls.rules.block_codecs)

    # -- gas ---------------------------------------------------------------------------------

    def charge(self, charge: GasCharge) -> None:
        self.call_manager.gas_tracker.charge(charge)

    def charge_gas(self, name: str, milligas: Milligas) -> None:
        self.call_manager.gas_tracker.charge_gas(name, milligas)

    @property
    def gas_available(self) -> Milligas:
        return self.call_manager.gas_tracker.gas_available

    @property
    def network_version(self) -> int:
        return self.machine.context.network_version

    @property
    def externs(self) -> Externs:
        return self.machine.externs

    @property
    def chain_id(self) -> int:
        return self.machine.context.network.chain_id

    @property
    def epoch(self) -> int:
        return self.machine.context.epoch

    # -- the calling actor -------------------------------------------------------------------

    def _self_actor(self) -> ActorState | None:
        return self.call_manager.get_actor(self.actor_id)

    def root(self) -> CID:
        actor = self._self_actor()
        if actor is None:
            raise SyscallError(
                ErrorNumber.ILLEGAL_OPERATION, "state root requested after actor deletion"
            )
        return actor.state

    def set_root(self, new_root: CID) -> None:
        if self.read_only:
            raise SyscallError(
                ErrorNumber.READ_ONLY, "cannot update the state-root while read-only"
            )
        actor = self._self_actor()
        if actor is None:
            raise SyscallError(ErrorNumber.ILLEGAL_OPERATION, "actor deleted")
        self.call_manager.set_actor(self.actor_id, replace(actor, state=new_root))

    def current_balance(self) -> TokenAmount:
        """The caller's balance (0 once it deleted itself)."""
        actor = self._self_actor()
        return 0 if actor is None else actor.balance

    def self_destruct(self, beneficiary: Address) -> None:
        """Delete the calling actor, first moving its balance to ``beneficiary``."""
        if self.read_only:
            raise SyscallError(ErrorNumber.READ_ONLY, "cannot self-destruct when read-only")
        self.charge(self.price_list.on_delete_actor())
        balance = self.current_balance()
        if balance != 0:
            beneficiary_id = self.resolve_address(beneficiary)
            if beneficiary_id == self.actor_id:
                raise SyscallError(ErrorNumber.FORBIDDEN, "benefactor cannot be beneficiary")
            self.call_manager.transfer(self.actor_id, beneficiary_id, balance)
        self.call_manager.delete_actor(self.actor_id)

    # -- blocks ------------------------------------------------------------------------------

    def block_open(self, cid: CID) -> tuple[int, int, int]:
        """Load the block ``cid`` into the registry: its handle, codec and size."""
        prices = self.price_list
        self.charge(prices.on_block_open_base())
        data = self.machine.blockstore.get(cid)
        if data is None:
            raise FatalError(f"missing state: {cid}")
        block = Block(cid.codec, data)
        self.charge(prices.on_block_open_per_byte(block.size))
        block_id = self.blocks.put(block)
        return block_id, block.codec, block.size

    def block_create(self, codec: int, data: bytes) -> int:
        limit = self.rules.max_block_size
        if limit is not None and len(data) > limit:
            raise SyscallError(ErrorNumber.LIMIT_EXCEEDED, "blocks may not be larger than 1MiB")
        self.charge(self.price_list.on_block_create(len(data)))
        return self.blocks.put(Block(codec, data))

    @abstractmethod
    def _block_link_charge(self, size: int) -> GasCharge:
        """What linking a block of ``size`` bytes costs (the generations price it differently)."""

    def block_link(self, block_id: int, hash_fun: int, hash_len: int) -> CID:
        """Hash an open block into a CID and write it to the blockstore."""
        if hash_fun != BLAKE2B_256 or hash_len != BLAKE2B_256_LENGTH:
            raise SyscallError(ErrorNumber.ILLEGAL_CID, "cids must be 32-byte blake2b")
        block = self.blocks.get(block_id)
        self.charge(self._block_link_charge(block.size))
        cid = CID.hash_of(block.data, codec=block.codec)
        self.machine.blockstore.put_keyed(cid, block.data)
        return cid

    def block_read(self, block_id: int, offset: int, length: int) -> tuple[bytes, int]:
        """The bytes to copy into a ``length``-byte buffer from ``offset`` of the block, and
        the block's length minus ``offset + length``."""
        end = offset + length
        if end > I32_MAX:
            raise SyscallError(
                ErrorNumber.ILLEGAL_ARGUMENT, "offset plus buffer length did not fit into an i32"
            )
        data = self.blocks.get(block_id).data
        to_read = min(max(len(data) - offset, 0), length)
        self.charge(self.price_list.on_block_read(to_read))
        return data[offset : offset + to_read], len(data) - end

    def block_stat(self, block_id: int) -> tuple[int, int]:
        self.charge(self.price_list.on_block_stat())
        return self.blocks.stat(block_id)

    # -- sends -------------------------------------------------------------------------------

    def send(
        self,
        recipient: Address,
        method: int,
        params_id: int,
        value: TokenAmount,
        gas_limit: Milligas | None = None,
        read_only_flag: bool = False,
    ) -> SendOutcome:
        """Call ``method`` of ``recipient`` with the block ``params_id`` and ``value``."""
        read_only = self.read_only or read_only_flag
        if read_only and value != 0:
            raise SyscallError(ErrorNumber.READ_ONLY, "cannot transfer value when read-only")
        params = None if params_id == NO_DATA_BLOCK_ID else self.blocks.get(params_id)
        if self.blocks.is_full():
            raise SyscallError(ErrorNumber.LIMIT_EXCEEDED, "cannot store return block")
        result = self.call_manager.send(
            self.actor_id, recipient, method, params, value, gas_limit, read_only
        )
        returned = result.value
        if returned is None:
            return SendOutcome(result.exit_code, NO_DATA_BLOCK_ID, 0, 0)
        try:
            block_id = self.blocks.put(returned)
        except SyscallError as exc:
            raise FatalError(f"failed to store a valid return value: {exc}") from None
        return SendOutcome(result.exit_code, block_id, returned.codec, returned.size)

    # -- network and randomness --------------------------------------------------------------

    def total_fil_circ_supply(self) -> TokenAmount:
        return self.machine.context.circ_supply

    def get_randomness_from_tickets(
        self, personalization: int, epoch: int, entropy: bytes
    ) -> bytes:
        self.charge(self.price_list.on_get_randomness(len(entropy)))
        try:
            base = self.externs.get_chain_randomness(epoch)
        except ExternsError as exc:
            raise SyscallError(ErrorNumber.ILLEGAL_ARGUMENT, str(exc)) from None
        return draw_randomness(base, personalization, epoch, entropy)

    def get_randomness_from_beacon(
        self, personalization: int, epoch: int, entropy: bytes
    ) -> bytes:
        self.charge(self.price_list.on_get_randomness(len(entropy)))
        try:
            base = self.externs.get_beacon_randomness(epoch)
        except ExternsError as exc:
            raise SyscallError(ErrorNumber.ILLEGAL_ARGUMENT, str(exc)) from None
        return draw_randomness(base, personalization, epoch, entropy)

    # -- actors ------------------------------------------------------------------------------

    def resolve_address(self, address: Address) -> int:
        actor_id = self.call_manager.resolve_address(address)
        if actor_id is None:
            raise SyscallError(ErrorNumber.NOT_FOUND, "actor not found")
        return actor_id

    def get_actor_code_cid(self, actor_id: int) -> CID:
        actor = self.call_manager.get_actor(actor_id)
        if actor is None:
            raise SyscallError(ErrorNumber.NOT_FOUND, "actor not found")
        return actor.code

    def get_builtin_actor_type(self, code: CID) -> int:
        return self.machine.builtin_actors.builtin_id(code)

    def get_code_cid_for_type(self, actor_type: int) -> CID:
        code = self.machine.builtin_actors.code_by_id(actor_type)
        if code is None:
            raise SyscallError(
                ErrorNumber.ILLEGAL_ARGUMENT, "tried to resolve CID of unrecognized actor type"
            )
        return code

    @abstractmethod
    def resolve_key_address(self, address: Address) -> Address | None:
        """The key (f1/f3) address signatures by ``address`` verify against, if any."""

    # -- debugging ---------------------------------------------------------------------------

    def debug_enabled(self) -> bool:
        """Actor debugging (logs, artifacts) is off on every network this node runs."""
        return False

    def log(self, message: str) -> None:
        print(message)

    def store_artifact(self, name: str, data: bytes) -> None:
        """Accept a debug artifact name as ref-fvm does; nothing is written."""
        if len(name.encode()) > MAX_ARTIFACT_NAME_BYTES:
            raise SyscallError(
                ErrorNumber.ILLEGAL_ARGUMENT, "debug artifact name should not exceed 256 bytes"
            )
        if "/" in name:
            raise SyscallError(
                ErrorNumber.ILLEGAL_ARGUMENT,
                "debug artifact name should not include any path separators",
            )
        if not name:
            raise SyscallError(
                ErrorNumber.ILLEGAL_ARGUMENT, "debug artifact name should be at least one character"
            )
        if name.startswith("."):
            raise SyscallError(
                ErrorNumber.ILLEGAL_ARGUMENT,
                "debug artifact name should not start with a decimal '.'",
            )


class KernelV2(Kernel):
    """ref-fvm v2's kernel (network versions 15-17)."""

    rules = KERNEL_RULES_V2
    __slots__ = ()

    @property
    def prices(self) -> PriceListV2:
        prices = self.price_list
        assert isinstance(prices, PriceListV2)
        return prices

    def _block_link_charge(self, size: int) -> GasCharge:
        return self.prices.on_block_link(size)

    def invocation_context(self) -> tuple[int, ...]:
        """``vm.context``: value received, caller, receiver, method, epoch, network version."""
        lo, hi = token_u128(self.value_received, "value received")
        context = self.machine.context
        return (
            lo,
            hi,
            self.caller,
            self.actor_id,
            self.method,
            context.epoch,
            context.network_version,
        )

    def base_fee(self) -> TokenAmount:
        return self.machine.context.base_fee

    def resolve_key_address(self, address: Address) -> Address:
        """ref-fvm v2 ``resolve_to_key_addr`` with gas: an account's key address, read from
        its state (``NotFound`` without an actor, ``IllegalArgument`` for a non-account)."""
        return self._key_address(address, charge_gas=True)

    def _key_address(self, address: Address, *, charge_gas: bool) -> Address:
        if address.protocol in (AddressProtocol.BLS, AddressProtocol.SECP256K1):
            return address
        actor = self.machine.state_tree.get_actor(address)
        if actor is None:
            raise SyscallError(ErrorNumber.NOT_FOUND, "state tree doesn't contain actor")
        if not self.machine.builtin_actors.is_account_actor(actor.code):
            raise SyscallError(ErrorNumber.ILLEGAL_ARGUMENT, "target actor is not an account")
        prices = self.prices
        if charge_gas:
            self.charge(prices.on_block_open_base())
        state = self.machine.blockstore.get(actor.state)
        if state is None:
            raise FatalError("account actor state not found")
        if charge_gas:
            self.charge(prices.on_block_open_per_byte(len(state)))
        return _account_address(state)

    def new_actor_address(self) -> Address:
        """``actor.new_actor_address``: an f2 address from the origin's key address, the
        message nonce and the count of addresses handed out so far (then counted)."""
        call_manager = self.call_manager
        try:
            origin = self._key_address(call_manager.origin_address, charge_gas=False)
        except SyscallError as exc:
            raise FatalError(f"cannot resolve the origin's key address: {exc}") from None
        seed = (
            origin.encode()
            + call_manager.nonce.to_bytes(8, "big")
            + call_manager.next_actor_index().to_bytes(8, "big")
        )
        return Address.new_actor(seed)

    def create_actor(self, code: CID, actor_id: int) -> None:
        """ref-fvm v2: any actor may create a builtin, non-singleton actor at a free ID."""
        builtin = self.machine.builtin_actors
        if builtin.builtin_id(code) == 0:
            raise SyscallError(ErrorNumber.FORBIDDEN, "can only create built-in actors")
        if builtin.is_singleton_actor(code):
            raise SyscallError(
                ErrorNumber.FORBIDDEN, "can only have one instance of singleton actors"
            )
        state_tree = self.machine.state_tree
        try:
            existing = state_tree.get_actor(actor_id)
        except (MalformedInput, BlockNotFound):
            existing = None  # the reference only refuses an actor it could read
        if existing is not None:
            raise SyscallError(ErrorNumber.FORBIDDEN, "Actor address already exists")
        self.charge(self.prices.on_create_actor())
        state_tree.set_actor(actor_id, ActorState.new_empty(code))


class KernelV3(Kernel):
    """ref-fvm v3's kernel (network versions 18-20)."""

    rules = KERNEL_RULES_V3
    __slots__ = ()

    @property
    def prices(self) -> PriceListV3:
        prices = self.price_list
        assert isinstance(prices, PriceListV3)
        return prices

    def _block_link_charge(self, size: int) -> GasCharge:
        return self.prices.on_block_link(BLAKE2B_256, size)

    def current_balance(self) -> TokenAmount:
        self.charge(self.prices.on_self_balance())
        return super().current_balance()

    def resolve_address(self, address: Address) -> int:
        self.charge(self.prices.on_resolve_address())
        return super().resolve_address(address)

    def get_actor_code_cid(self, actor_id: int) -> CID:
        self.charge(self.prices.on_get_actor_code_cid())
        return super().get_actor_code_cid(actor_id)

    def get_builtin_actor_type(self, code: CID) -> int:
        self.charge(self.prices.on_get_builtin_actor_type())
        return super().get_builtin_actor_type(code)

    def get_code_cid_for_type(self, actor_type: int) -> CID:
        self.charge(self.prices.on_get_code_cid_for_type())
        return super().get_code_cid_for_type(actor_type)

    def balance_of(self, actor_id: int) -> TokenAmount:
        self.charge(self.prices.on_balance_of())
        actor = self.call_manager.get_actor(actor_id)
        if actor is None:
            raise SyscallError(ErrorNumber.NOT_FOUND, "actor not found")
        return actor.balance

    def lookup_delegated_address(self, actor_id: int) -> Address | None:
        self.charge(self.prices.on_lookup_delegated_address())
        actor = self.call_manager.get_actor(actor_id)
        if actor is None:
            raise SyscallError(ErrorNumber.NOT_FOUND, "actor not found")
        return actor.delegated_address

    def resolve_key_address(self, address: Address) -> Address | None:
        """ref-fvm v3 verifies signatures only by key addresses; anything else has none."""
        if address.protocol in (AddressProtocol.BLS, AddressProtocol.SECP256K1):
            return address
        return None

    def next_actor_address(self) -> Address:
        return self.call_manager.next_actor_address()

    def create_actor(self, code: CID, actor_id: int, delegated_address: Address | None) -> None:
        if self.actor_id != INIT_ACTOR_ID:
            raise SyscallError(
                ErrorNumber.FORBIDDEN,
                f"create_actor is restricted to InitActor. Called by {self.actor_id}",
            )
        if self.read_only:
            raise SyscallError(
                ErrorNumber.READ_ONLY, "create_actor cannot be called while read-only"
            )
        self.call_manager.create_actor(code, actor_id, delegated_address)

    def message_context(self) -> tuple[int, ...]:
        """``vm.message_context``: origin, nonce, caller, receiver, method, value, premium,
        flags."""
        self.charge(self.prices.on_message_context())
        value_lo, value_hi = token_u128(self.value_received, "value received")
        premium_lo, premium_hi = token_u128(self.call_manager.gas_premium, "gas premium")
        return (
            self.call_manager.origin,
            self.call_manager.nonce,
            self.caller,
            self.actor_id,
            self.method,
            value_lo,
            value_hi,
            premium_lo,
            premium_hi,
            READ_ONLY_FLAG if self.read_only else 0,
        )

    def network_context(self) -> tuple[int, ...]:
        """``network.context``: epoch, timestamp, base fee, chain ID, network version."""
        self.charge(self.prices.on_network_context())
        context = self.machine.context
        fee_lo, fee_hi = token_u128(context.base_fee, "base-fee")
        return (
            context.epoch,
            context.timestamp,
            fee_lo,
            fee_hi,
            context.network.chain_id,
            context.network_version,
        )

    def tipset_cid(self, epoch: int) -> CID:
        if epoch < 0:
            raise SyscallError(ErrorNumber.ILLEGAL_ARGUMENT, "epoch is negative")
        offset = self.machine.context.epoch - epoch
        if offset < 0:
            raise SyscallError(ErrorNumber.ILLEGAL_ARGUMENT, f"epoch {epoch} is in the future")
        if offset == 0:
            raise SyscallError(
                ErrorNumber.ILLEGAL_ARGUMENT, "cannot lookup the tipset cid for the current epoch"
            )
        if offset >= FINALITY:
            raise SyscallError(
                ErrorNumber.ILLEGAL_ARGUMENT, f"epoch {epoch} is too far in the past"
            )
        self.charge(self.prices.on_tipset_cid(offset > 1))
        try:
            return self.externs.get_tipset_cid(epoch)
        except ExternsError as exc:
            raise FatalError(f"cannot get the tipset cid at epoch {epoch}: {exc}") from None

    def emit_event(self, raw: bytes) -> None:
        """Validate, charge for and record the DAG-CBOR ``ActorEvent`` in ``raw``."""
        if self.read_only:
            raise SyscallError(ErrorNumber.READ_ONLY, "cannot emit events while read-only")
        prices = self.prices
        self.charge(prices.on_actor_event_validate(len(raw)))
        if len(raw) > MAX_ENCODED_EVENT_BYTES:
            raise SyscallError(ErrorNumber.ILLEGAL_ARGUMENT, "event WAY too large")
        entries = decode_actor_event(raw)
        validate_actor_event(entries)
        sizes = [(entry.flags, entry.key_size, len(entry.value)) for entry in entries]
        self.charge(prices.on_actor_event_accept(sizes, len(raw)))
        self.call_manager.append_event(StampedEvent(self.actor_id, entries))


def _account_address(state: bytes) -> Address:
    """The ``address`` of an account actor's state (``[address]``); fatal if not that."""
    try:
        decoded: Any = dag_cbor.decode(state, "account actor state")
        if type(decoded) is not list or len(decoded) != 1:
            raise FatalError("failed to decode actor state as an account")
        return Address.from_cbor(decoded[0], "account actor state")
    except MalformedInput as exc:
        raise FatalError(f"failed to decode actor state as an account: {exc}") from None


KERNELS: Final[dict[AbiGeneration, type[Kernel]]] = {
    AbiGeneration.V2: KernelV2,
    AbiGeneration.V3: KernelV3,
}


class KernelUnavailable(FvmNodeError):
    """No kernel of this ref-fvm generation exists here: its messages cannot be applied (not
    a fatal VM error, which would still produce a receipt)."""


def kernel_class_for(generation: AbiGeneration) -> type[Kernel]:
    """The kernel of a ref-fvm generation."""
    try:
        return KERNELS[generation]
    except KeyError:
        raise KernelUnavailable(f"no kernel for the ref-fvm {generation.value} ABI") from None
