#!/usr/bin/env bash
# Talks to demo-server: ./client.sh PORT [COMMAND...]   (default commands: GET 1, GET 4, STATS)
# "GET 4" is the crafted request: one slot past the end of the table.
set -euo pipefail
port=${1:-7878}
shift || true
if [ $# -eq 0 ]; then set -- "GET 1" "GET 4" "STATS"; fi
exec 3<>"/dev/tcp/127.0.0.1/$port"
for cmd in "$@"; do
    printf '%s\n' "$cmd" >&3
    IFS= read -r answer <&3
    printf '%-8s -> %s\n' "$cmd" "$answer"
done
printf 'QUIT\n' >&3
exec 3>&-
