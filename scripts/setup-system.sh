#!/usr/bin/env bash
# System packages the project needs beyond PyPI: Debian's chromium (browser tests, kaleido
# figure export), poppler-utils (pdftotext / pdftoppm for report checks) and R with rpact and
# survival (tests recompute reference values live: conditional power, repeated CIs and
# boundaries in tests/test_decision.py; they skip when R is absent), nginx (the reverse proxy of
# the deployment, started by tests/test_deploy_nginx.py) and the PostgreSQL server (the shared
# audit store, started by the audit-sink tests in a private folder). Idempotent.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v pdftotext >/dev/null 2>&1 || need+=(poppler-utils)
fc-list 2>/dev/null | grep -qi dejavu || need+=(fonts-dejavu-core)
command -v Rscript >/dev/null 2>&1 || need+=(r-base-core)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
for pkg in rpact survival; do
    [ -d "/usr/lib/R/site-library/$pkg" ] || [ -d "/usr/lib/R/library/$pkg" ] || need+=("r-cran-$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
echo "system packages ready: $(command -v chromium) $(command -v pdftotext) $(command -v Rscript)" \
     "$(ls /usr/sbin/nginx 2>/dev/null)" "$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | tail -1)"
