#!/usr/bin/env bash
# Runs etcdsnap for a newcomer: installs what is missing, builds, then starts the server and a
# local 3-member etcd cluster with an agent on each member. Ctrl-C stops it; a second run
# reuses the data in .demo/stack. (`node dist/scripts/demo-standalone.js` runs the
# server-less demo of the standalone CLI.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node dist/scripts/demo.js
