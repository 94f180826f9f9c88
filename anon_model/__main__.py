"""``python -m anon_model ...``: the `anon-model` command, also as ``accelerate launch -m anon_model anonymize ...``."""

import sys

from anon_model.cli import main

if __name__ == "__main__":  # a worker process of the run (``batch.runner``) imports this module again: no second run
    sys.exit(main())
