#!/usr/bin/env bash
# Keep the kernel from handing the test stacks' fixed ports to outgoing connections.
#
# The stacks the tests start listen on fixed ports (gRPC 50051 + a per-stack offset up to ~600, the local
# PostgreSQL 55432 / 56432), and those lie inside Linux's ephemeral range (32768-60999): an outgoing connection
# (to Kafka, PostgreSQL, the browser driver) that happened to get one of them as its local port made the next
# stack's bind fail with "Address already in use" (seen in CI: one module's eight tests). Reserving them is what
# ip_local_reserved_ports is for. Best effort: without the right to write it (not root), say so and go on.
set -euo pipefail
reserved="50000-50999,55432,56432"
file=/proc/sys/net/ipv4/ip_local_reserved_ports
if [ -w "$file" ]; then
  echo "$reserved" > "$file"
  echo "reserve-ports.sh: ports $reserved kept out of the ephemeral range"
else
  echo "reserve-ports.sh: cannot write $file (not root?): a test stack may rarely meet a busy port" >&2
fi
