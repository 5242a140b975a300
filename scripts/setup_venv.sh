#!/usr/bin/env bash
# Create .venv/ at the repository root with the exact Python packages used to build the fixtures.
# Only needed to regenerate tests/fixtures or to run the benchmarks (CI does not need it).
#   bash scripts/setup_venv.sh            # uses python3 (3.11 was used; >= 3.10 required)
#   PYTHON=python3.11 bash scripts/setup_venv.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "Python >= 3.10 needed")'
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --upgrade pip
.venv/bin/python -m pip install -r scripts/requirements-fixtures.txt
.venv/bin/python -m pip install -r scripts/requirements-bench.txt
.venv/bin/python -m pip install -r scripts/requirements-eval.txt
.venv/bin/python -c 'import torch, transformers, tokenizers; print("torch", torch.__version__, "transformers", transformers.__version__, "tokenizers", tokenizers.__version__)'
