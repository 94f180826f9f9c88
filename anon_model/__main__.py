"""``python -m anon_model ...``: the `anon-model` command, also as ``accelerate launch -m anon_model anonymize ...``."""

import sys

from anon_model.cli import main

sys.exit(main())
