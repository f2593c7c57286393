"""Where the tests find the checkout's files (docs, examples, data, the test bridges)."""

import os

SUPPORT = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(SUPPORT))
DATA = os.path.join(SUPPORT, "data")
BRIDGES = os.path.join(SUPPORT, "bridges")
EXAMPLES = os.path.join(REPO, "plugins", "examples")
DOCS = os.path.join(REPO, "docs")
