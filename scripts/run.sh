#!/usr/bin/env bash
# Runs etcdsnap for a newcomer: installs what is missing, builds, then runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node dist/scripts/demo-standalone.js
