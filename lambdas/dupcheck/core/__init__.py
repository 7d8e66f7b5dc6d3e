"""The core: what dupcheck does, with no adapter, entry point or AWS library in it.

Its top level is the domain every room shares (models.py, ports.py, errors.py, ids.py,
settings.py, spreadsheet.py); the rooms, from the top floor down: jobs/, catalog/, fingerprint/,
matching/ (docs/architecture.md, "Where things are"; pyproject.toml's contracts keep the floors).
"""
