"""The FVM kernel: what actor code may ask of the VM, and the syscalls that carry it.

ref-fvm's ``fvm/src/kernel`` and ``fvm/src/syscalls`` (``fvm@v2.12.1`` for network versions
15-17, ``fvm@v3.13.3`` for 18-20), split as:

* :mod:`fvm.kernel.default` - :class:`~fvm.kernel.default.Kernel` and its per-generation
  subclasses: state, blocks, actors, sends, network, randomness, events;
* :mod:`fvm.kernel.block_registry` - the handles of the blocks an invocation holds;
* :mod:`fvm.kernel.events` - actor events (FIP-0049);
* :mod:`fvm.kernel.crypto_ops` - signatures, hashes and proofs;
* :mod:`fvm.kernel.syscalls` - decoding each syscall's arguments from actor memory, and the
  handler table of each generation.

:mod:`fvm.wasm_invoker` binds all of it to the WebAssembly runtime.
"""
