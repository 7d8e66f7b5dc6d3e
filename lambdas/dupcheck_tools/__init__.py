"""dupcheck's tools: everything that runs on an operator's machine or a notebook, never on Lambda.

The command line (`python -m dupcheck`), the local server and its demo, backfill, reindex,
catalog readers and the evaluation live here; the runtime package `dupcheck` (what ships to
Lambda) never imports this one.
"""
