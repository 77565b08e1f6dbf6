"""prnet: train, compress, export and benchmark PRNet (Feng et al., ECCV 2018)."""

import sys as _sys
from pathlib import Path as _Path

__version__ = "0.1.0"

# prnet.compress, prnet.export and prnet.bench live in the repository's top-level folders compress/, export/ and
# bench/ (pyproject.toml's package-dir maps them; an install puts only `prnet` into site-packages). A source
# checkout used without installing (PYTHONPATH=checkout, e.g. the GPU scripts) finds them through this fallback.
_checkout = _Path(__file__).resolve().parent.parent
_editable = any("__editable___prnet" in getattr(f, "__module__", "") for f in _sys.meta_path)
for _name in ("compress", "export", "bench"):
    if not _editable and not (_Path(__file__).parent / _name).is_dir() and (_checkout / _name / "__init__.py").is_file():
        __path__.append(str(_checkout))  # noqa: F821 (the package's own __path__)
        break
