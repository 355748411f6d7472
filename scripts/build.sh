#!/usr/bin/env bash
# Builds kendali into build/ (configured once, debugoptimized).
# The server ends up at build/server/kendali.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ ! -f build/build.ninja ]]; then
	if [[ -d build/meson-private ]]; then
		meson setup --reconfigure build --buildtype=debugoptimized
	else
		meson setup build --buildtype=debugoptimized
	fi
fi
ninja -C build
