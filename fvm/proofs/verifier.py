"""Pluggable verification of storage proofs (seals, window PoSts, aggregates, replica updates).

ref-fvm verifies these proofs with filecoin-proofs (Groth16 SNARKs over BLS12-381, through
``filecoin-proofs-api``). No Python implementation of those verifiers exists, in this project or
anywhere usable, so the kernel takes a :class:`ProofVerifier` and this module offers exactly one:
:class:`AcceptAllProofVerifier`, which ACCEPTS EVERY PROOF WITHOUT CHECKING IT.

That is what ref-fvm's own conformance runner does (``testing/conformance/src/vm.rs``,
``TestKernel``: the proof syscalls charge their gas and return success), and what replaying
test vectors needs. A node running it trusts the chain's proofs blindly: it computes the same
state as everyone else for a valid chain but cannot reject a block carrying a bad proof. The
node logs :data:`DESCRIPTION` at start-up so that nobody mistakes it for verification.

Gas is not the verifier's business: the kernel (:mod:`fvm.kernel.crypto_ops`) charges exactly
what the reference charges before asking the verifier.
"""

from __future__ import annotations

from typing import Final, Protocol

from fvm.proofs.sector_types import (
    AggregateSealVerifyProofAndInfos,
    ReplicaUpdateInfo,
    SealVerifyInfo,
    WindowPoStVerifyInfo,
)
from store.errors import MalformedInput

DESCRIPTION: Final = (
    "WARNING: proofs are NOT verified. AcceptAllProofVerifier accepts every seal, window PoSt, "
    "aggregate seal and replica update proof without checking it (as ref-fvm's conformance "
    "runner does); no proof verifier exists in Python. This node cannot reject invalid proofs."
)


class ProofInputError(MalformedInput):
    """Proof inputs a verifier refuses outright (the reference's ``IllegalArgument``).

    For example a commitment CID of the wrong kind, an unknown proof type, an empty aggregate,
    window PoSt proofs of mixed types. ``batch_verify_seals`` turns it into a failed seal.
    """


class ProofVerifier(Protocol):
    """Checks storage proofs; each method answers whether the proof is valid.

    A real implementation must also refuse, with :class:`ProofInputError`, the inputs ref-fvm's
    kernel refuses before calling filecoin-proofs (``fvm/src/kernel/default.rs`` at
    ``fvm@v3.13.3``): commitment CIDs that do not convert (``commcid``), proof types the proofs
    library does not know, an aggregate without infos, and for window PoSt an empty proof list,
    proofs of mixed types, or a challenged sector whose seal type does not map to the PoSt type.
    """

    def verify_seal(self, info: SealVerifyInfo) -> bool:
        """A sector's seal (PoRep) proof."""
        ...

    def verify_post(self, info: WindowPoStVerifyInfo) -> bool:
        """A window PoSt over the challenged sectors."""
        ...

    def verify_aggregate_seals(self, aggregate: AggregateSealVerifyProofAndInfos) -> bool:
        """An aggregated (SnarkPack) seal proof over many sectors."""
        ...

    def verify_replica_update(self, info: ReplicaUpdateInfo) -> bool:
        """A replica update (SnapDeals) proof."""
        ...


class AcceptAllProofVerifier:
    """DOES NOT VERIFY PROOFS: answers "valid" for every proof, whatever its bytes.

    The conformance runner's verifier, as in ref-fvm's ``TestKernel``; see :data:`DESCRIPTION`.
    """

    description: Final = DESCRIPTION

    def verify_seal(self, info: SealVerifyInfo) -> bool:
        return True

    def verify_post(self, info: WindowPoStVerifyInfo) -> bool:
        return True

    def verify_aggregate_seals(self, aggregate: AggregateSealVerifyProofAndInfos) -> bool:
        return True

    def verify_replica_update(self, info: ReplicaUpdateInfo) -> bool:
        return True
