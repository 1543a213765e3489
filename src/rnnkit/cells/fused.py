"""The old name of ``rnnkit.cells.kernel`` (rnnkit 0.2), kept for one release: "fused" now means only what it
means in PyTorch - one kernel doing the work of several ops (fused optimisers, the fused softmax cross-entropy).
The fast backend of the classic cells is ``rnnkit.cells.kernel``; its classes are ``KernelLSTM``, ``KernelGRU``
and ``KernelRNN``."""

from __future__ import annotations

import warnings

from rnnkit.cells.kernel import KernelGRU as FusedGRU
from rnnkit.cells.kernel import KernelLSTM as FusedLSTM
from rnnkit.cells.kernel import KernelRNN as FusedRNN
from rnnkit.cells.kernel import build_kernel as build_fused
from rnnkit.cells.kernel import master_state, one_step, one_step_ok

warnings.warn(
    "rnnkit.cells.fused is now rnnkit.cells.kernel (FusedLSTM -> KernelLSTM, build_fused -> build_kernel); the old "
    "names work until rnnkit 0.3",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = ["FusedGRU", "FusedLSTM", "FusedRNN", "build_fused", "master_state", "one_step", "one_step_ok"]
