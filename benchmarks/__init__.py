"""Benchmarks and experiment runners: reports that run offline and print tables, not progress bars.

Set before any benchmark imports the hub client or tqdm reads its switches.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
