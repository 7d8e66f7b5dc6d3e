"""dupcheck: near-duplicate image detection for e-commerce catalogs."""

__version__ = "0.1.0"
