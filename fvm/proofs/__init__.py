"""Storage proofs at the FVM boundary: their structures, commitments, and who verifies them.

* :mod:`fvm.proofs.sector_types` - the seal, PoSt, aggregate, replica-update and piece
  structures actors pass to the proof syscalls (ref-fvm ``shared/src/sector``, ``piece``), with
  their strict DAG-CBOR decoders and the proof types each ref-fvm generation knows;
* :mod:`fvm.proofs.commcid` - commitments as CIDs (ref-fvm ``shared/src/commcid``);
* :mod:`fvm.proofs.commp` - piece and unsealed-sector commitments (CommP, CommD), the real
  computation behind ``compute_unsealed_sector_cid`` (ref-fvm plus filecoin-proofs'
  ``compute_comm_d``);
* :mod:`fvm.proofs.verifier` - the :class:`~fvm.proofs.verifier.ProofVerifier` protocol and the
  only implementation there is, :class:`~fvm.proofs.verifier.AcceptAllProofVerifier`, which
  does NOT verify proofs (no SNARK verifier exists in Python).
"""
