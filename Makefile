# `make` lists the targets. Every target creates .venv and installs requirements.txt first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help lab book test bench clean
help:
	@echo "make lab    install, then open JupyterLab on notebooks/"
	@echo "make book   install, then build the site into _build/html (notebooks keep their outputs)"
	@echo "make test   install, then run every test: helpers, notebooks (smoke mode), book, browser"
	@echo "make bench  install, then run the benchmarks in bench/ (full size, takes minutes)"
	@echo "make clean  remove _build/ and the smoke-mode runs"

$(STAMP): requirements.txt pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)

book: $(STAMP)
	$(BIN)/jupyter-book build . --all --warningiserror --keep-going --builder html
	@echo "Open file://$(CURDIR)/_build/html/index.html"

# Smoke mode shrinks every notebook; one thread per torch process because the two pytest
# workers share the cores (two processes with all threads each run ~100x slower on 2 cores).
test: $(STAMP)
	GPT_COURSE_SMOKE=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --dist loadfile

bench: $(STAMP)
	$(BIN)/python bench/train_speed.py
	$(BIN)/python bench/kv_cache.py

clean:
	rm -rf _build runs/smoke
