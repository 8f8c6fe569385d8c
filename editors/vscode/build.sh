#!/usr/bin/env bash
# editors/vscode/build.sh — builds the VS Code extension from the npm
# registry's tools: `npm ci` (package-lock.json), `tsc`, the TextMate
# grammar tests (vscode-tmgrammar-test), `vsce package` → flowc.vsix.
# Run by .ci/run; needs node and npm (20 or later).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
npm ci --no-audit --no-fund
npm run compile
npm test
npm run package
ls -l flowc.vsix
