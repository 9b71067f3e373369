#!/usr/bin/env bash
# The whole test suite, runnable on a fresh Linux machine with a Rust toolchain.
# It installs what the tests need (when missing) and runs every test; benchmarks are separate
# (see BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."

# The browser tests (tests/browser/, `cargo test --test browser`) drive Debian's Chromium through its chromedriver; each
# test starts its own chromedriver on a free port and a headless Chromium with a fresh profile.
# A CJK font makes the screenshots under target/screenshots/ readable.
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
# The export tests open every .sps in GNU PSPP, as statisticians do.
command -v pspp >/dev/null || need+=(pspp)
# The print tests count an A4 PDF's pages with pdfinfo and read its text with pdftotext.
command -v pdfinfo >/dev/null || need+=(poppler-utils)
# `fc-list | grep -q` fails under pipefail when grep stops early and fc-list gets SIGPIPE, which
# reinstalled the font on every run: read fc-list's whole output first.
fonts="$(fc-list 2>/dev/null || true)"
if ! grep -qi "wenquanyi\|wqy" <<<"$fonts"; then
    need+=(fonts-wqy-microhei)
fi
# tests/it/plan_reference.rs runs tests/reference/plan_reference.py (standard library only).
command -v python3 >/dev/null || need+=(python3)
# The PostgreSQL tests (tests/pg_*.rs) run against a throwaway cluster (tests/pg_cluster.sh).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        echo "tests/run.sh: installing ${need[*]} for the tests" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "${need[@]}" >/dev/null
    else
        echo "tests/run.sh: the browser tests need Debian packages ${need[*]} (run as root to install them)" >&2
    fi
fi
mkdir -p target/screenshots

# One throwaway PostgreSQL cluster for the whole run, stopped and removed afterwards; each
# PostgreSQL test makes a database of its own in it. SHEPING_REQUIRE_PG=1: a PostgreSQL test
# that finds no cluster fails instead of skipping.
export SHEPING_REQUIRE_PG=1
bash tests/pg_cluster.sh cargo test --locked --lib --bins --tests "$@"

# The integration suite again on PostgreSQL (issue 22): SHEPING_TEST_BACKEND=postgres puts every
# test's database (tests/common/mod.rs, `Sheping::new`) on a fresh database of a new throwaway
# cluster, so every command, page and API is checked on both backends. Tests about the SQLite
# file itself say "SKIPPED … on PostgreSQL" and why. The browser binary too: the screens in
# Chromium on a PostgreSQL-backed server.
bash tests/pg_cluster.sh env SHEPING_TEST_BACKEND=postgres cargo test --locked --test it --test browser "$@"
