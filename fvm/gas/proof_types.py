"""The registered proof type codes the price lists key their proof prices by.

Seal and PoSt proofs carry an integer type on chain; the price lists price some proofs by type
and fall back to a default type for codes they do not list, so only the codes matter here.
Codes from ref-fvm ``shared/src/sector/registered_proof.rs`` (``i64_conversion!``): window
PoSt "V1" codes 5-9 exist in ref-fvm v2 and v3 and were removed in v4, the "V1P1" codes 10-14
came with ref-fvm v3.2 (FIP-0061, network version 19); NI-PoRep seal codes 15-19 came with v4
(FIP-0092).

These enums belong with the sector types; they live here until the project has a sector module.
"""

from __future__ import annotations

from enum import IntEnum


class RegisteredSealProof(IntEnum):
    STACKED_DRG_2KIB_V1 = 0
    STACKED_DRG_8MIB_V1 = 1
    STACKED_DRG_512MIB_V1 = 2
    STACKED_DRG_32GIB_V1 = 3
    STACKED_DRG_64GIB_V1 = 4
    STACKED_DRG_2KIB_V1P1 = 5
    STACKED_DRG_8MIB_V1P1 = 6
    STACKED_DRG_512MIB_V1P1 = 7
    STACKED_DRG_32GIB_V1P1 = 8
    STACKED_DRG_64GIB_V1P1 = 9
    STACKED_DRG_2KIB_V1P1_FEAT_SYNTHETIC_POREP = 10
    STACKED_DRG_8MIB_V1P1_FEAT_SYNTHETIC_POREP = 11
    STACKED_DRG_512MIB_V1P1_FEAT_SYNTHETIC_POREP = 12
    STACKED_DRG_32GIB_V1P1_FEAT_SYNTHETIC_POREP = 13
    STACKED_DRG_64GIB_V1P1_FEAT_SYNTHETIC_POREP = 14
    STACKED_DRG_2KIB_V1P2_FEAT_NI_POREP = 15
    STACKED_DRG_8MIB_V1P2_FEAT_NI_POREP = 16
    STACKED_DRG_512MIB_V1P2_FEAT_NI_POREP = 17
    STACKED_DRG_32GIB_V1P2_FEAT_NI_POREP = 18
    STACKED_DRG_64GIB_V1P2_FEAT_NI_POREP = 19


class RegisteredPoStProof(IntEnum):
    STACKED_DRG_WINNING_2KIB_V1 = 0
    STACKED_DRG_WINNING_8MIB_V1 = 1
    STACKED_DRG_WINNING_512MIB_V1 = 2
    STACKED_DRG_WINNING_32GIB_V1 = 3
    STACKED_DRG_WINNING_64GIB_V1 = 4
    STACKED_DRG_WINDOW_2KIB_V1 = 5
    STACKED_DRG_WINDOW_8MIB_V1 = 6
    STACKED_DRG_WINDOW_512MIB_V1 = 7
    STACKED_DRG_WINDOW_32GIB_V1 = 8
    STACKED_DRG_WINDOW_64GIB_V1 = 9
    STACKED_DRG_WINDOW_2KIB_V1P1 = 10
    STACKED_DRG_WINDOW_8MIB_V1P1 = 11
    STACKED_DRG_WINDOW_512MIB_V1P1 = 12
    STACKED_DRG_WINDOW_32GIB_V1P1 = 13
    STACKED_DRG_WINDOW_64GIB_V1P1 = 14
