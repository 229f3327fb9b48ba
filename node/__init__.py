"""The libp2p host, the node lifecycle, the devnet and the fvm-node CLI."""
