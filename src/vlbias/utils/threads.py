"""One BLAS thread where threads only contend: small matrix products and least-squares problems, run thousands of
times, take 1 ms on one thread and up to 80 ms on two busy cores (issue 18's measurements)."""

from __future__ import annotations

from functools import lru_cache

from threadpoolctl import ThreadpoolController


@lru_cache(maxsize=1)
def _blas() -> ThreadpoolController:
    return ThreadpoolController()  # inspects the loaded libraries once (threadpool_limits does so on every call)


def one_blas_thread():
    """A context in which the BLAS libraries loaded when it was first called (numpy's among them) use one thread."""
    return _blas().limit(limits=1, user_api="blas")
