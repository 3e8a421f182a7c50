# Two commands: `make run` (set-up, then the notebooks top to bottom) and `make test`.
# One virtual environment (~6 GB with PyTorch) is built once and reused by every run.
VENV ?= $(HOME)/.cache/defect-seg/venv
PYTHON := $(VENV)/bin/python
NEU_SOURCE ?= ../shared/datasets/NEU-DET
MT_SOURCE ?= ../shared/datasets/Magnetic-Tile
CFD_SOURCE ?= ../shared/datasets/CrackForest
NOTEBOOKS := $(sort $(wildcard notebooks/0*.ipynb))
NEU_NOTEBOOKS := $(filter-out notebooks/05_% notebooks/06_%,$(NOTEBOOKS))
# The stamp names this checkout too: another clone re-points the editable install at itself.
STAMP := $(VENV)/.installed-$(shell (cat requirements.txt requirements-dev.txt pyproject.toml; echo $(CURDIR)) | sha1sum | cut -c1-12)
export NO_ALBUMENTATIONS_UPDATE := 1
export HF_HUB_OFFLINE ?= 1
export PYTHONUNBUFFERED := 1
export PYTHONPATH := $(CURDIR)

.PHONY: env data data-mt data-cfd run full full-mt full-cfd test unit notebooks bench bench-precision lint

env: $(STAMP)
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -r requirements-dev.txt
	$(PYTHON) -m pip install --quiet --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $@

## Copy NEU-DET into IMAGES/ and ANNOTATIONS/ (NEU_SOURCE may be a folder, an archive or a URL).
data: env
	$(PYTHON) -m Utilities.Setup_data --source $(NEU_SOURCE)

## Copy Magnetic Tile into data/Magnetic-Tile/ (MT_SOURCE may be a folder, an archive or a URL).
data-mt: env
	$(PYTHON) -m Utilities.Setup_data --format magnetic_tile --source $(MT_SOURCE) --dest data/Magnetic-Tile

## Copy CrackForest into data/CrackForest/ (CFD_SOURCE may be a folder, an archive or a URL).
data-cfd: env
	$(PYTHON) -m Utilities.Setup_data --format crackforest --source $(CFD_SOURCE) --dest data/CrackForest

## The main job in quick mode (a few minutes); executed notebooks go to runs/. `make full` for the real run.
run: data data-mt data-cfd
	mkdir -p runs
	cd notebooks && for nb in $(notdir $(NOTEBOOKS)); do \
		SEG_QUICK=1 $(VENV)/bin/jupyter nbconvert --to notebook --execute $$nb --output-dir ../runs || exit 1; done
	@echo "executed notebooks are in runs/; trained models in Models/: fpn_lite2_quick_best.pth (NEU-DET), mt_unet_lite0_head_quick_best.pth, cfd_unet_lite2_quick_best.pth"

## The full NEU-DET run (14-18 min on 2 CPU cores), executed in place: these are the committed outputs.
full: data
	cd notebooks && for nb in $(notdir $(NEU_NOTEBOOKS)); do \
		$(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.timeout=-1 $$nb || exit 1; done
	$(PYTHON) tools/strip_progress.py $(NEU_NOTEBOOKS)

## The full Magnetic Tile run of notebook 05 (about 40 min on 2 CPU cores), executed in place.
full-mt: data-mt
	cd notebooks && $(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.timeout=-1 05_Magnetic_Tile.ipynb
	$(PYTHON) tools/strip_progress.py notebooks/05_Magnetic_Tile.ipynb

## The full CrackForest run of notebook 06 (100 epochs: 12-16 min on 2 cores with fast bf16, over an hour in float32 on AVX2 only), executed in place.
full-cfd: data-cfd
	cd notebooks && $(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.timeout=-1 06_CrackForest.ipynb
	$(PYTHON) tools/strip_progress.py notebooks/06_CrackForest.ipynb

test: unit notebooks

unit: env
	$(PYTHON) -m pytest -q tests

## nbval over the notebooks in quick mode, checking the cells marked NBVAL_CHECK_OUTPUT.
notebooks: data data-mt data-cfd
	SEG_QUICK=1 $(PYTHON) -m pytest -q --nbval-lax --nbval-current-env \
		--nbval-sanitize-with notebooks/sanitize.cfg $(NOTEBOOKS)

## CPU speed report: prints a table and writes benchmarks/results/.
bench: data
	$(PYTHON) -m benchmarks.speed

## Only the rows about precision (measured choice, float32 against bfloat16, test Dice per precision): minutes.
bench-precision: data
	$(PYTHON) -m benchmarks.speed --precision

lint: env
	$(VENV)/bin/ruff check Utilities tests benchmarks notebooks
