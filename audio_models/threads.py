"""Keep numpy's BLAS threads from competing with torch's for the same cores.

numpy's OpenBLAS pool keeps its threads spinning for a while after each call. In this service
numpy work (Whisper's log-mel filterbank, resampling, trimming) alternates with torch and
CTranslate2 work on the same two cores, so those spinning threads took the cores from torch's
OpenMP threads: Whisper block-1 frames for 32 utterances took 470-530 ms with the log-mel
computed between passes and about 215 ms with OpenBLAS on one thread (docs/MODEL_CARD.md,
"Speed"). numpy's BLAS calls here are small, so one thread costs them nothing measurable.
"""

from __future__ import annotations

from threadpoolctl import ThreadpoolController


def single_thread_numpy_blas() -> None:
    """Cap every OpenBLAS loaded so far (numpy's, scipy's) at one thread, for the whole process.

    scipy.linalg is imported first because scipy ships its own OpenBLAS, loaded on first use.
    Torch's BLAS (MKL, linked into torch) and every OpenMP pool are left alone. Cheap enough to
    call at each model load (a few milliseconds).
    """
    import scipy.linalg  # noqa: F401

    ThreadpoolController().select(internal_api="openblas").limit(limits=1)
