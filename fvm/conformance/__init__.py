"""Conformance test vectors (filecoin-project/fvm-test-vectors format) and their runner."""
