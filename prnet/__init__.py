"""prnet: train, compress, export and benchmark PRNet (Feng et al., ECCV 2018)."""

__version__ = "0.1.0"
