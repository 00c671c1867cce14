#!/bin/sh
# Install the OS packages the test suite drives when they are missing: Debian's chromium (the
# dashboard's browser tests) and php-cli (`php -l` and the payload builders of the Magento module
# under integrations/magento). Only from the OS package archive, never a browser download.
# Needs root (or sudo).
set -eu
missing=""
[ -x /usr/bin/chromium ] || missing="$missing chromium fonts-dejavu-core"
command -v php >/dev/null 2>&1 || missing="$missing php-cli"
if [ -z "$missing" ]; then
    echo "present: $(/usr/bin/chromium --version 2>/dev/null | head -n1), $(php --version | head -n1)"
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else echo "need root to apt-get install:$missing" >&2; exit 1; fi
fi
export DEBIAN_FRONTEND=noninteractive
echo "installing from Debian's archive:$missing" >&2
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
/usr/bin/chromium --version 2>/dev/null | head -n1
php --version | head -n1
