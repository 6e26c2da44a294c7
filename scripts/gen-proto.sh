#!/usr/bin/env bash
# Generates the `minorprot` Python package (messages, gRPC stubs and .pyi stubs) from proto/.
# Usage: scripts/gen-proto.sh [OUT_DIR]   (default gen/python; the drift test writes to a temp dir)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-gen/python}
py=${PYTHON:-.venv/bin/python}
bin=$(dirname "$py")
mkdir -p "$out"
rm -rf "$out/minorprot"
include=$("$py" -c 'import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))')
# The mypy-protobuf plugins live beside the interpreter, so put that folder first on PATH.
PATH="$bin:$PATH" "$py" -m grpc_tools.protoc -I proto -I "$include" \
  --python_out="$out" --grpc_python_out="$out" --mypy_out="$out" --mypy_grpc_out="$out" \
  $(find proto -name '*.proto' | LC_ALL=C sort)
# protoc writes modules, not packages: mark every folder as a regular package.
find "$out/minorprot" -type d -exec sh -c 'touch "$1/__init__.py"' _ {} \;
touch "$out/minorprot/py.typed"
