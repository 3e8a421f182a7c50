"""Remove progress-bar widgets from executed notebooks: they are noise in the committed outputs.

Usage: python tools/strip_progress.py notebooks/*.ipynb
"""

import sys

import nbformat

WIDGET = "application/vnd.jupyter.widget-view+json"

for path in sys.argv[1:]:
    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if WIDGET not in o.get("data", {})]
    nbformat.write(nb, path)
