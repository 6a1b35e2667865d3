# Two commands for a newcomer: `make demo` and `make test`; both set up .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup test demo aggregators real real-ner lab bench mutate test-slurm slurm-cluster-install slurm-cluster-start slurm-cluster-check slurm-cluster-stop

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m ipykernel install --sys-prefix --name fslib --display-name "fslib (.venv)" > /dev/null
	touch $(STAMP)

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

demo: $(STAMP)
	$(VENV)/bin/fslib batch $(filter-out params/mini/aggregators.yaml,$(wildcard params/mini/*.yaml)) --jobs 2

# The other gradient-conflict surgeons against naive co-training and the paper's surgery on the offline benchmark
# (params/mini/aggregators.yaml; about 12 minutes on one core): its own target, to keep make demo under 10 minutes.
aggregators: $(STAMP)
	$(VENV)/bin/fslib batch params/mini/aggregators.yaml --jobs 2

# The POS grid on real UD treebanks (../shared/data/ud) with a real pre-trained encoder, built first where missing.
# JOBS=4 got more of a 2-core machine shared with other work (results/real-pos/README.md).
JOBS ?= 2
real: $(STAMP)
	$(VENV)/bin/fslib batch params/real/pos.yaml --jobs $(JOBS)

# The NER grid on gold Universal NER data (../shared/data/uner) with the same encoder, its vocabulary trimmed to the
# UNER sentences (a folder apart from the POS grid's). English settings: results/real-ner/pilot.md.
real-ner: $(STAMP)
	$(VENV)/bin/fslib batch params/real/ner.yaml --jobs $(JOBS)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

bench: $(STAMP)
	$(PY) bench/surgery_overhead.py

# Mutation testing of the engine modules (pyproject.toml, [tool.mutmut]): hours on a laptop, resumable (mutants/
# keeps what was done). Single-threaded torch: mutmut forks its test process, and a forked OpenMP pool deadlocks.
MUTATE_JOBS ?= 2
mutate: $(STAMP)
	$(VENV)/bin/pip install --quiet mutmut==3.8.1
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(VENV)/bin/mutmut run --max-children $(MUTATE_JOBS)
	$(VENV)/bin/mutmut results --all true | $(PY) scripts/mutation_score.py

# A real one-node Slurm on this machine (Debian packages, root): scripts/slurm-test-cluster.sh.
SLURM_CLUSTER := bash scripts/slurm-test-cluster.sh

slurm-cluster-install:
	$(SLURM_CLUSTER) install
slurm-cluster-start: slurm-cluster-install
	$(SLURM_CLUSTER) start
slurm-cluster-check:
	$(SLURM_CLUSTER) check
slurm-cluster-stop:
	$(SLURM_CLUSTER) stop

# The Slurm tests: the test module installs, starts and always stops the cluster itself.
test-slurm: $(STAMP)
	FSLIB_SLURM_TESTS=1 $(PY) -m pytest -q -m slurm
