#!/usr/bin/env bash
# Makes example host snapshots for this repository from THIS machine: takes one `suture snapshot`
# (run as root, with the demo running: scripts/demo-up) and writes it as two hosts,
#   hosts/production/web-1.json  (hostname web-1, labels role=web)
#   hosts/production/db-1.json   (hostname db-1,  labels role=db)
# In a real repository each host publishes its own snapshot (docs/gitops.md); this script only stands in
# for two hosts so the example can be tried on one machine.
set -euo pipefail
cd "$(dirname "$0")"
suture=${SUTURE:-suture}
mkdir -p hosts/production
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
"$suture" snapshot --output "$tmp"
python3 - "$tmp" <<'PY'
import json, sys
snapshot = json.load(open(sys.argv[1]))
for name, role in (("web-1", "web"), ("db-1", "db")):
    snapshot["live"]["hostname"] = name
    snapshot["live"]["labels"] = {"role": role}
    with open(f"hosts/production/{name}.json", "w") as out:
        json.dump(snapshot, out, indent=2, sort_keys=True)
        out.write("\n")
PY
echo "wrote hosts/production/web-1.json and hosts/production/db-1.json"
