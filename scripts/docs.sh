#!/bin/bash
# Builds the API reference (HTML) of the public headers with Doxygen into build/docs/html.
# Any Doxygen warning fails it (WARN_AS_ERROR in docs/Doxyfile).
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf build/docs/html  # no pages left over from removed headers
doxygen docs/Doxyfile
echo "API reference: build/docs/html/index.html"
