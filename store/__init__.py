"""Content-addressed storage and IPLD: CIDs, DAG-CBOR, blockstores, CAR, HAMT, AMT, bitfields."""
