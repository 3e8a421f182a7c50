"""The set-up every notebook starts with, so that the notebooks hold only their own steps."""

from __future__ import annotations

import os
from pathlib import Path


def setup_notebook() -> tuple[Path, bool]:
    """Offline switches, compact figures and tables; returns the project folder and whether quick mode is on.

    Call it before importing the rest of ``Utilities``: albumentations and the
    Hugging Face hub read their switches when first imported. The notebooks
    sit in ``notebooks/`` of the project folder and may run from either
    folder; ``SEG_QUICK=1`` turns quick
    mode on (a few minutes on 2 CPU cores instead of the full run).
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no network here: skip the hub's retries
    import matplotlib.pyplot as plt
    import pandas as pd
    from matplotlib_inline.backend_inline import set_matplotlib_formats

    from Utilities.Config import quick_mode

    pd.set_option("display.precision", 4)
    pd.set_option("display.width", 160)  # wide tables stay one block in the text outputs
    set_matplotlib_formats("jpeg")  # keeps the committed notebooks small
    plt.rcParams["figure.dpi"] = 72
    quick = quick_mode()
    print("quick mode" if quick else "full run")
    here = Path.cwd()
    return (here if (here / "notebooks").is_dir() else here.parent), quick  # run from notebooks/ or the project
