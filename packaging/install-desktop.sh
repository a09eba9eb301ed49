#!/usr/bin/env bash
# Put ftwiz in the desktop's application menu (it opens in a terminal: ftwiz is a terminal app).
#
#   bash packaging/install-desktop.sh             # install for this user
#   bash packaging/install-desktop.sh --uninstall # remove it again
#
# Follows the XDG base directories: $XDG_DATA_HOME (default ~/.local/share)/applications and
# .../icons/hicolor/scalable/apps. No root needed. The menu entry runs `ftwiz` from PATH; when ftwiz
# lives somewhere else (a venv), set FTWIZ_BIN=/path/to/ftwiz and the entry gets that absolute path.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
data="${XDG_DATA_HOME:-$HOME/.local/share}"
apps="$data/applications"
icons="$data/icons/hicolor/scalable/apps"

refresh() {
  # Menus pick new entries up on their own; these only make it immediate where the tools exist.
  if command -v update-desktop-database >/dev/null 2>&1; then update-desktop-database -q "$apps" || true; fi
  if command -v gtk-update-icon-cache >/dev/null 2>&1; then
    gtk-update-icon-cache -q -t "$data/icons/hicolor" 2>/dev/null || true
  fi
}

if [ "${1:-}" = "--uninstall" ]; then
  rm -f "$apps/ftwiz.desktop" "$icons/ftwiz.svg"
  refresh
  echo "removed the ftwiz menu entry"
  exit 0
fi

mkdir -p "$apps" "$icons"
bin="${FTWIZ_BIN:-}"
if [ -z "$bin" ] && ! command -v ftwiz >/dev/null 2>&1; then
  echo "warning: ftwiz is not on PATH; the menu entry will not start until it is (or set FTWIZ_BIN)" >&2
fi
# Write beside the target and rename: a menu never sees a half-written entry.
tmp="$(mktemp "$apps/.ftwiz.desktop.XXXXXX")"
if [ -n "$bin" ]; then
  sed -e "s|^Exec=ftwiz$|Exec=\"$bin\"|" -e "s|^TryExec=ftwiz$|TryExec=$bin|" "$here/ftwiz.desktop" > "$tmp"
else
  cp "$here/ftwiz.desktop" "$tmp"
fi
chmod 644 "$tmp"
mv -f "$tmp" "$apps/ftwiz.desktop"
install -m 644 "$here/ftwiz.svg" "$icons/ftwiz.svg"
refresh
echo "installed $apps/ftwiz.desktop and $icons/ftwiz.svg"
