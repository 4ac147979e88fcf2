#!/bin/sh
# Reproduce hextrackr_cli/server/static/vendor/ from the npm registry packages (never a CDN).
# Usage: scripts/vendor_assets.sh   (needs npm and tar; run from anywhere)
set -eu

SOCKET_IO_CLIENT_VERSION=${SOCKET_IO_CLIENT_VERSION:-4.8.1}
BOOTSTRAP_VERSION=${BOOTSTRAP_VERSION:-5.3.8}

here=$(cd "$(dirname "$0")/.." && pwd)
dest="$here/hextrackr_cli/server/static/vendor"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

cd "$work"
npm pack --silent "socket.io-client@$SOCKET_IO_CLIENT_VERSION" "bootstrap@$BOOTSTRAP_VERSION" >/dev/null
mkdir sio bs
tar -xzf "socket.io-client-$SOCKET_IO_CLIENT_VERSION.tgz" -C sio
tar -xzf "bootstrap-$BOOTSTRAP_VERSION.tgz" -C bs

rm -rf "$dest"
mkdir -p "$dest/socket.io" "$dest/bootstrap/css" "$dest/bootstrap/js"
cp sio/package/dist/socket.io.min.js "$dest/socket.io/socket.io.min.js"
cp sio/package/LICENSE "$dest/socket.io/LICENSE"
cp bs/package/dist/css/bootstrap.min.css "$dest/bootstrap/css/bootstrap.min.css"
cp bs/package/dist/js/bootstrap.bundle.min.js "$dest/bootstrap/js/bootstrap.bundle.min.js"
cp bs/package/LICENSE "$dest/bootstrap/LICENSE"

# Files are copied byte for byte (compare the sha256 below with the npm tarballs). Their source maps are not
# vendored; the server answers 404 for *.map, which browsers only ask for with the developer tools open.

{
    echo "Vendored by scripts/vendor_assets.sh from the npm registry (npm pack), not from a CDN."
    echo "socket.io-client $SOCKET_IO_CLIENT_VERSION  dist/socket.io.min.js  (MIT, see socket.io/LICENSE)"
    echo "bootstrap $BOOTSTRAP_VERSION  dist/css/bootstrap.min.css, dist/js/bootstrap.bundle.min.js  (MIT, see bootstrap/LICENSE; the bundle includes Popper, MIT)"
    echo
    echo "sha256:"
    (cd "$dest" && find . -type f ! -name VERSIONS.txt | sort | xargs sha256sum)
} > "$dest/VERSIONS.txt"
echo "vendored into $dest"
