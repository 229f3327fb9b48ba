"""The devnet: its keys, its genesis built through the FVM, and what the producer needs of them."""
