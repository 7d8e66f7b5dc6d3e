"""The CDK app (app.py), its one stack (stack.py) and one component per concern (components/)."""

import os

# jsii starts its Node process on the first `import aws_cdk`; this keeps Node's end-of-life
# banner (a warning about Node itself, not about dupcheck) out of every synth's output.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
