"""An optional compiled CPU kernel for Mamba's selective scan, with the PyTorch form as the fallback.

Why: the selective scan touches ``seq * batch * inner * N`` state elements (268M per layer at batch 32, 1,024
steps, inner 512, N 16) and needs an ``exp`` for each. In PyTorch every step of the recurrence is a separate pass
over memory - about twenty of them forward and backward together (:class:`rnnkit.cells.scan.SelectiveScan`) - which
made Mamba the slowest of the modern cells on a CPU. A loop that keeps one channel's N states in registers does
each element once: the forward is one pass, the backward recomputes a block of states and runs the adjoint in the
same loop, like the CUDA kernel of mamba-ssm does on a GPU.

How: plain C (no PyTorch headers, so it compiles in about a second with the system's C compiler), built on first use
into the user cache (``~/.cache/rnnkit/native/<hash>``, keyed by the source, the compiler and this CPU's flags, as
it is compiled with ``-march=native``) and called through ``ctypes`` on contiguous CPU tensors. ``ctypes`` releases
the GIL, so the batch is split over ``torch.get_num_threads()`` Python threads. Nothing here is required: without
a C compiler, on another device or dtype, or with ``RNNKIT_NATIVE=0``, the PyTorch form runs, and the two agree to
float rounding (tests/cells/test_modern.py runs both).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from torch import Tensor

MAX_STATE = 64  # N per channel the kernel holds on its stack
MAX_BLOCK = 64  # time steps recomputed per block in the backward

_BODY = r"""
/* layout (time-major, contiguous): u, delta, y, d_u, d_delta: (T, Bt, D); B, C, dB, dC: (T, Bt, N);
   A, dA: (D, N); h0, h_last, dh_last, dh0: (Bt, D, N); starts: (ceil(T / K), Bt, D, N), the state at each
   block start. Each call handles batch rows [b0, b1). */
void FN(ss_forward)(int64_t T, int64_t Bt, int64_t D, int64_t N, int64_t K, int64_t b0, int64_t b1,
                    const REAL* restrict u, const REAL* restrict delta, const REAL* restrict A,
                    const REAL* restrict B, const REAL* restrict C,
                    const REAL* restrict h0, REAL* restrict y, REAL* restrict h_last, REAL* restrict starts) {
    REAL h[64];
    for (int64_t b = b0; b < b1; b++) {
        for (int64_t d = 0; d < D; d++) {
            const REAL* a = A + d * N;
            const int64_t s = (b * D + d) * N;
            for (int64_t n = 0; n < N; n++) h[n] = h0[s + n];
            for (int64_t t = 0; t < T; t++) {
                if (t % K == 0) {
                    REAL* st = starts + (t / K) * Bt * D * N + s;
                    for (int64_t n = 0; n < N; n++) st[n] = h[n];
                }
                const int64_t i = (t * Bt + b) * D + d;
                const REAL dt = delta[i], du = dt * u[i];
                const REAL* bt = B + (t * Bt + b) * N;
                const REAL* ct = C + (t * Bt + b) * N;
                REAL acc = 0;
                for (int64_t n = 0; n < N; n++) {
                    h[n] = EXP(dt * a[n]) * h[n] + du * bt[n];
                    acc += h[n] * ct[n];
                }
                y[i] = acc;
            }
            for (int64_t n = 0; n < N; n++) h_last[s + n] = h[n];
        }
    }
}

/* dB, dC must be zero on entry (rows b0..b1 are accumulated over d); dA is this call's own (D, N) buffer. */
void FN(ss_backward)(int64_t T, int64_t Bt, int64_t D, int64_t N, int64_t K, int64_t b0, int64_t b1,
                     const REAL* restrict u, const REAL* restrict delta, const REAL* restrict A,
                    const REAL* restrict B, const REAL* restrict C,
                     const REAL* restrict starts, const REAL* restrict dy, const REAL* restrict dh_last,
                     REAL* restrict d_u, REAL* restrict d_delta, REAL* restrict dA,
                     REAL* restrict dB, REAL* restrict dC, REAL* restrict dh0) {
    REAL hs[65][64];
    REAL ex[64][64];
    REAL dh[64];
    const int64_t blocks = (T + K - 1) / K;
    for (int64_t b = b0; b < b1; b++) {
        for (int64_t d = 0; d < D; d++) {
            const REAL* a = A + d * N;
            REAL* da = dA + d * N;
            const int64_t s = (b * D + d) * N;
            for (int64_t n = 0; n < N; n++) dh[n] = dh_last[s + n];
            for (int64_t k = blocks - 1; k >= 0; k--) {
                const int64_t t0 = k * K, L = (t0 + K < T ? K : T - t0);
                const REAL* st = starts + k * Bt * D * N + s;
                for (int64_t n = 0; n < N; n++) hs[0][n] = st[n];
                for (int64_t j = 0; j < L; j++) {  /* recompute the block's states */
                    const int64_t t = t0 + j, i = (t * Bt + b) * D + d;
                    const REAL dt = delta[i], du = dt * u[i];
                    const REAL* bt = B + (t * Bt + b) * N;
                    for (int64_t n = 0; n < N; n++) {
                        ex[j][n] = EXP(dt * a[n]);
                        hs[j + 1][n] = ex[j][n] * hs[j][n] + du * bt[n];
                    }
                }
                for (int64_t j = L - 1; j >= 0; j--) {  /* the adjoint recurrence, in reverse */
                    const int64_t t = t0 + j, i = (t * Bt + b) * D + d;
                    const REAL dt = delta[i], uu = u[i], du = dt * uu, g = dy[i];
                    const REAL* bt = B + (t * Bt + b) * N;
                    const REAL* ct = C + (t * Bt + b) * N;
                    REAL* dbt = dB + (t * Bt + b) * N;
                    REAL* dct = dC + (t * Bt + b) * N;
                    REAL d_du = 0, d_exp = 0;
                    for (int64_t n = 0; n < N; n++) {
                        const REAL gh = dh[n] + g * ct[n];  /* dL/dh_t */
                        dct[n] += hs[j + 1][n] * g;
                        d_du += gh * bt[n];
                        dbt[n] += gh * du;
                        const REAL p = gh * hs[j][n] * ex[j][n];  /* dL/d(delta_t A) */
                        d_exp += p * a[n];
                        da[n] += p * dt;
                        dh[n] = gh * ex[j][n];
                    }
                    d_delta[i] = d_exp + d_du * uu;
                    d_u[i] = d_du * dt;
                }
            }
            for (int64_t n = 0; n < N; n++) dh0[s + n] = dh[n];
        }
    }
}
"""


def _source() -> str:
    parts = ["#include <math.h>\n#include <stdint.h>\n"]
    for real, suffix, exp in (("float", "f32", "expf"), ("double", "f64", "exp")):
        parts.append(f"#define REAL {real}\n#define FN(x) x##_{suffix}\n#define EXP {exp}\n{_BODY}\n")
        parts.append("#undef REAL\n#undef FN\n#undef EXP\n")
    return "".join(parts)


_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_tried = False
_FLAGS = ["-O3", "-march=native", "-ffast-math", "-fPIC", "-shared"]


def _cpu_key() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    import platform

    return platform.processor() + platform.machine()


def _cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("rnnkit")) / "native"


def _build() -> ctypes.CDLL | None:
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None or sys.platform == "win32":
        return None
    source = _source()
    try:
        version = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    key = hashlib.sha256("\0".join([source, " ".join(_FLAGS), version, _cpu_key()]).encode()).hexdigest()[:16]
    target = _cache_dir() / key / "rnnkit_scan.so"
    if not target.exists():
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
                src = Path(tmp) / "scan.c"
                src.write_text(source)
                out = Path(tmp) / "scan.so"
                proc = subprocess.run(
                    [compiler, *_FLAGS, str(src), "-o", str(out), "-lm"], capture_output=True, text=True, timeout=300
                )
                if proc.returncode != 0:
                    return None
                os.replace(out, target)  # atomic: another process may build the same file
        except (OSError, subprocess.SubprocessError):
            return None
    try:
        lib = ctypes.CDLL(str(target))
    except OSError:
        return None
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    for suffix in ("f32", "f64"):
        getattr(lib, f"ss_forward_{suffix}").argtypes = [i64] * 7 + [ptr] * 9
        getattr(lib, f"ss_backward_{suffix}").argtypes = [i64] * 7 + [ptr] * 14
    return lib


def library() -> ctypes.CDLL | None:
    """The compiled kernels, built on first call; None where they cannot be (or ``RNNKIT_NATIVE=0``)."""
    global _lib, _tried
    if os.environ.get("RNNKIT_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    with _lock:
        if not _tried:
            _tried = True
            _lib = _build()
    return _lib


def usable(*tensors: Tensor) -> bool:
    """Whether the kernel can run on these tensors (CPU, one float dtype, N and the block within its limits)."""
    first = tensors[0]
    return (
        first.device.type == "cpu"
        and first.dtype in (torch.float32, torch.float64)
        and all(t.device.type == "cpu" and t.dtype == first.dtype for t in tensors)
        and library() is not None
    )


def _ptr(t: Tensor) -> int:
    return t.data_ptr()


def _split(batch: int) -> list[tuple[int, int]]:
    workers = max(1, min(torch.get_num_threads(), batch))
    step = -(-batch // workers)
    return [(b, min(b + step, batch)) for b in range(0, batch, step)]


def _parallel(fn, ranges: list[tuple[int, int]]) -> None:
    if len(ranges) == 1:
        fn(*ranges[0])
        return
    with ThreadPoolExecutor(len(ranges)) as pool:
        for f in [pool.submit(fn, b0, b1) for b0, b1 in ranges]:
            f.result()


def scan_forward(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, h0: Tensor, block: int):  # noqa: N803
    """(y (T, batch, D), h_last (batch, D, N), starts) from contiguous CPU tensors; see the C source's layout."""
    lib = library()
    assert lib is not None
    T, batch, D = u.shape
    N = A.size(1)
    u, delta, A, B, C, h0 = (t.contiguous() for t in (u, delta, A, B, C, h0))
    y = torch.empty_like(u)
    h_last = torch.empty_like(h0)
    starts = torch.empty(-(-T // block), batch, D, N, dtype=u.dtype)
    fn = lib.ss_forward_f32 if u.dtype == torch.float32 else lib.ss_forward_f64
    ptrs = [_ptr(t) for t in (u, delta, A, B, C, h0, y, h_last, starts)]
    _parallel(lambda b0, b1: fn(T, batch, D, N, block, b0, b1, *ptrs), _split(batch))
    return y, h_last, starts


def scan_backward(u, delta, A, B, C, starts, dy, dh_last, block):  # noqa: N803
    """The gradients (d_u, d_delta, dA, dB, dC, dh0) of :func:`scan_forward`'s outputs."""
    lib = library()
    assert lib is not None
    T, batch, D = u.shape
    N = A.size(1)
    u, delta, A, B, C, starts, dy, dh_last = (t.contiguous() for t in (u, delta, A, B, C, starts, dy, dh_last))
    d_u, d_delta = torch.empty_like(u), torch.empty_like(delta)
    dB, dC = torch.zeros_like(B), torch.zeros_like(C)
    dh0 = torch.empty(batch, D, N, dtype=u.dtype)
    ranges = _split(batch)
    dA_parts = torch.zeros(len(ranges), D, N, dtype=u.dtype)
    fn = lib.ss_backward_f32 if u.dtype == torch.float32 else lib.ss_backward_f64
    ptrs = [_ptr(t) for t in (u, delta, A, B, C, starts, dy, dh_last, d_u, d_delta)]
    tail = [_ptr(t) for t in (dB, dC, dh0)]

    def run(b0: int, b1: int) -> None:
        fn(T, batch, D, N, block, b0, b1, *ptrs, _ptr(dA_parts[ranges.index((b0, b1))]), *tail)

    _parallel(run, ranges)
    return d_u, d_delta, dA_parts.sum(0), dB, dC, dh0
