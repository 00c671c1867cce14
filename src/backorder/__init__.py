"""backorder: self-hosted backorder automation for art-materials retailers."""

__version__ = "0.1.0"
