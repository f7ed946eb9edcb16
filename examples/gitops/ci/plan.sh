#!/usr/bin/env bash
# CI-agnostic pull-request check for a Suture manifests repository.
#
#   ci/plan.sh [ENVIRONMENT] [OUTPUT]
#
# Validates every manifest, then plans ENVIRONMENT's manifests against the host snapshots in
# hosts/ENVIRONMENT/ and writes a Markdown pull-request comment to OUTPUT (default: plan-comment.md).
# Exit status: 0 no changes, 2 changes (post the comment), 1 invalid manifests or unusable snapshots.
# Needs only the `suture` binary (set SUTURE=/path/to/suture), no root and no access to the hosts.
set -uo pipefail
cd "$(dirname "$0")/.."
suture=${SUTURE:-suture}
environment=${1:-production}
output=${2:-plan-comment.md}

if ! "$suture" validate environments/; then
  echo "manifests are invalid; see the errors above" >&2
  exit 1
fi
"$suture" plan --live "hosts/$environment" "environments/$environment" \
  --format markdown --detailed-exitcode >"$output"
status=$?
case $status in
  0) echo "no changes for $environment; comment written to $output" ;;
  2) echo "changes planned for $environment; comment written to $output" ;;
  *) echo "plan failed (exit $status)" >&2 ;;
esac
exit $status
