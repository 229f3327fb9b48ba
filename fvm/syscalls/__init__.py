"""The FVM's syscall layer: the host functions actors import, as ref-fvm defines them.

:mod:`fvm.syscalls.abi` records every syscall's wasm signature and result layout for each
ref-fvm generation, and the error numbers syscalls return; :mod:`fvm.engine.runtime` binds
Python handlers to them.
"""

from fvm.syscalls.abi import (
    AbiGeneration,
    ErrorNumber,
    ResultLayout,
    Syscall,
    SyscallError,
    default_syscalls,
    generation_for_network_version,
    syscalls_for_network_version,
)

__all__ = [
    "AbiGeneration",
    "ErrorNumber",
    "ResultLayout",
    "Syscall",
    "SyscallError",
    "default_syscalls",
    "generation_for_network_version",
    "syscalls_for_network_version",
]
