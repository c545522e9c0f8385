#!/usr/bin/env bash
# Installs what kiln needs on a fresh Debian/Ubuntu machine, only what is missing:
# Debian packages (as root), then a Python venv with kiln and its test extras.
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES=(python3 python3-venv bubblewrap slirp4netns mmdebstrap busybox-static qemu-utils e2fsprogs
              skopeo zstd tar util-linux ca-certificates debian-archive-keyring iproute2
              postgresql
              rpm openssh-client
              db5.3-util
              qemu-system-x86 ovmf grub-pc-bin grub-efi-amd64-bin dosfstools mtools)

missing=()
for pkg in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "kiln setup: missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
    exit 1
  fi
  echo "kiln setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
if [[ ! -x "$VENV/bin/python" ]]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
"$VENV/bin/python" -m pip install -q -e ".[test]"
# pydantic_core built for the other CPython minors a VM guest may have (kiln's AWSTOE runner runs there);
# only the wheels not yet downloaded are fetched
"$VENV/bin/python" -m kiln.runtime.guest_wheels
