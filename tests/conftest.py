"""Suite-wide settings.

The README's test command runs the suite in parallel (`-n auto --dist loadfile`: pytest-xdist, one process per core,
each file's tests in one process so its module fixtures are built once). Each worker then gets one math thread:
two workers with two threads each on a 2-core machine would oversubscribe the cores, which costs more than the
second thread gains on the suite's tiny models. Set before any test module imports torch.
"""

from __future__ import annotations

import os

if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"
