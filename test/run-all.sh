#!/usr/bin/env bash
# The whole test suite (README's second command): typecheck, every vitest file on SQLite, then the
# API and driver tests (which use the database) again on MariaDB. Ends with one line "N passed, N failed".
# Needs MariaDB on 127.0.0.1:3306 (root, empty password). The Keystone integration test runs when
# ARGONAUT_KEYSTONE_URL is set (CI sets it after starting Keystone).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
out=$(mktemp -d)
status=0

echo "== typecheck"
npx tsc --noEmit -p . || status=1

# These restart RabbitMQ or kill and restart a controller process against timing deadlines, so they
# run one at a time after everything else (amphora-restart timed out once when run beside the
# other loopback-VIP tests on the loaded 2-core machine, and passes alone).
broker_restarts=(test/integration/amqp.test.ts test/amphora-agent/agent-amqp.test.ts test/integration/amphora-amqp.test.ts test/integration/amphora-restart.test.ts)

echo "== vitest (SQLite)"
npx vitest run "${broker_restarts[@]/#/--exclude=}" --reporter=default --reporter=json --outputFile.json="$out/sqlite.json" || status=1

echo "== vitest: tests that restart RabbitMQ or a controller, one file at a time"
npx vitest run "${broker_restarts[@]}" --no-file-parallelism --reporter=default --reporter=json --outputFile.json="$out/broker.json" || status=1

echo "== vitest: API and driver tests again on MariaDB"
ARGONAUT_TEST_DB=mysql npx vitest run test/api test/driver --reporter=default --reporter=json --outputFile.json="$out/mysql.json" || status=1

# shellcheck disable=SC2016 # JavaScript, not shell
node -e '
  let passed = 0, failed = 0, skipped = 0;
  for (const f of process.argv.slice(1)) {
    let r; try { r = JSON.parse(require("fs").readFileSync(f, "utf8")); } catch { failed++; continue; }
    passed += r.numPassedTests; failed += r.numFailedTests + (r.numRuntimeErrorTestSuites ?? 0);
    skipped += r.numPendingTests + (r.numTodoTests ?? 0);
  }
  console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
 ' "$out/sqlite.json" "$out/broker.json" "$out/mysql.json"
rm -rf "$out"
exit $status
