"""The dupcheck CDK app: `app.py` builds one stack from `stack.py`, which wires `constructs/`."""
