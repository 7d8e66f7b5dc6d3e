"""The repository's scripts: benchmarks and their records (bench/), the tools that build the
evaluation's data and its figures (here), and what they share (helpers/). A package, on the venv's
path (the Makefile's `venv` puts the checkout there): a script imports another as
`scripts.bench.<name>`, and runs as `python scripts/...` or `python -m scripts....` alike."""
