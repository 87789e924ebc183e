#!/usr/bin/env bash
# Install everything the test suite needs, then run all of it.
#   - system tools via apt when running as root (tshark is the oracle; tcpdump,
#     curl, nginx, nftables, iproute2 and ethtool make the real captures)
#   - netinspect itself in editable mode with its [test] extras
# Extra arguments go to pytest (e.g. `bash tests/run-all.sh -k tcp`).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(tshark tcpdump curl nginx nftables iproute2 ethtool openssl nghttp2-client dnsmasq-base bind9-dnsutils tmux)

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    missing=()
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
elif ! command -v tshark >/dev/null 2>&1; then
    echo "tshark is missing: install it (e.g. apt-get install tshark tcpdump nginx nftables) and run again as root" >&2
    exit 2
fi

python3 -m pip install -q --disable-pip-version-check -e '.[test]'
exec python3 -m pytest -q "$@"
