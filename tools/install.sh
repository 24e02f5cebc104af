#!/usr/bin/env bash
# Installs Constellation: the daemon (`constellation`), `cdeploy`, the systemd
# units and the documentation. Starts nothing, enables nothing, creates no user.
#
#   tools/install.sh                       build with `bazel build -c opt`, install under /usr/local
#   PREFIX=/usr tools/install.sh           binaries in /usr/bin (the units are rewritten to match)
#   DESTDIR=/tmp/pkg tools/install.sh      stage into a directory (for packaging)
#   BIN_DIR=path tools/install.sh          take built `constellation` and `cdeploy` from path, build nothing
#
#   PREFIX   default /usr/local      binaries in $PREFIX/bin
#   UNITDIR  default /etc/systemd/system
#   DOCDIR   default /usr/share/doc/constellation (the units' Documentation= names it)
set -euo pipefail
cd "$(dirname "$0")/.."

PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
UNITDIR=${UNITDIR:-/etc/systemd/system}
DOCDIR=${DOCDIR:-/usr/share/doc/constellation}

if [ -z "${BIN_DIR:-}" ]; then
  bazel build -c opt //daemon:constellation //cli:cdeploy
  daemon=$(bazel cquery -c opt --output=files //daemon:constellation 2>/dev/null)
  cdeploy=$(bazel cquery -c opt --output=files //cli:cdeploy 2>/dev/null)
else
  daemon=$BIN_DIR/constellation
  cdeploy=$BIN_DIR/cdeploy
fi
for f in "$daemon" "$cdeploy"; do
  [ -x "$f" ] || { echo "install: $f is not an executable" >&2; exit 1; }
done

install -d "$DESTDIR$PREFIX/bin" "$DESTDIR$UNITDIR" "$DESTDIR$DOCDIR"
install -m 755 "$daemon" "$DESTDIR$PREFIX/bin/constellation"
install -m 755 "$cdeploy" "$DESTDIR$PREFIX/bin/cdeploy"
for unit in daemon/systemd/*.service; do
  # The units name /usr/local/bin and /usr/share/doc/constellation: point them where these went.
  sed -e "s#/usr/local/bin/constellation#$PREFIX/bin/constellation#" \
    -e "s#file:///usr/share/doc/constellation/#file://$DOCDIR/#" "$unit" >"$DESTDIR$UNITDIR/$(basename "$unit")"
  chmod 644 "$DESTDIR$UNITDIR/$(basename "$unit")"
done
install -m 644 README.md docs/*.md "$DESTDIR$DOCDIR/"

echo "installed $PREFIX/bin/constellation, $PREFIX/bin/cdeploy, the units in $UNITDIR and the docs in $DOCDIR${DESTDIR:+ (under $DESTDIR)}"
echo "next (docs/operations.md): useradd --system --user-group --no-create-home constellation;"
echo "  /etc/default/constellation with CONSTELLATION_BIND=...; the TLS bundle in /etc/constellation/tls;"
echo "  systemctl daemon-reload && systemctl enable --now constellation-node (or constellation-master)"
