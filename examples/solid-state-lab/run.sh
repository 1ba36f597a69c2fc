#!/usr/bin/env bash
# The whole solid-state lab on this machine: keys, a furnace served over CurveZMQ from
# its own process, the beamline as an EPICS IOC, the five instruments registered, a
# health check, then the campaign. Servers stop when the script ends.
#   bash examples/solid-state-lab/run.sh        (or: make solid-state-lab)
set -euo pipefail
cd "$(dirname "$0")/../.."
LABOS=${LABOS:-.venv/bin/labos}
LAB=examples/solid-state-lab
DATA=labos-data/solid-state-lab
mkdir -p "$DATA"

# Channel Access on loopback only, on ports of its own
export EPICS_CA_ADDR_LIST=127.0.0.1:5094 EPICS_CA_AUTO_ADDR_LIST=NO EPICS_CA_SERVER_PORT=5094
export EPICS_CAS_INTF_ADDR_LIST=127.0.0.1 EPICS_CAS_SERVER_PORT=5094
export EPICS_CAS_AUTO_BEACON_ADDR_LIST=NO EPICS_CAS_BEACON_ADDR_LIST=127.0.0.1
export EPICS_CA_REPEATER_PORT=5095 EPICS_CAS_BEACON_PORT=5095

# each key pair in a directory of its own; the server's authorized/ holds only public keys
[ -f "$DATA/keys/server/server.key" ] || "$LABOS" keys "$DATA/keys/server" server >/dev/null
[ -f "$DATA/keys/lab/lab.key" ] || "$LABOS" keys "$DATA/keys/lab" lab --authorize "$DATA/keys/authorized" >/dev/null

"$LABOS" instrument serve "$LAB/furnace-server.yaml" >"$DATA/furnace-server.log" 2>&1 &
SERVER=$!
"$LABOS" ioc beamline "$LAB/beamline-ioc.yaml" >"$DATA/beamline-ioc.log" 2>&1 &
IOC=$!
trap 'kill $SERVER $IOC 2>/dev/null; wait $SERVER $IOC 2>/dev/null || true' EXIT

for f in "$LAB"/instruments/*.yaml; do
  name=$(sed -n 's/^name: *//p' "$f")
  "$LABOS" instruments --data-dir "$DATA" remove "$name" >/dev/null 2>&1 || true
  "$LABOS" instruments --data-dir "$DATA" add "$f"
done

for _ in $(seq 30); do  # until both servers answer
  "$LABOS" instruments --data-dir "$DATA" status >/dev/null 2>&1 && break
  sleep 1
done
"$LABOS" instruments --data-dir "$DATA" status
"$LABOS" run "$LAB/campaign.yaml" "$@"
