#!/usr/bin/env bash
# Builds Dapr's daprd v1.16.0 from the Go module proxy into a cache folder,
# once, for the side-by-side benchmark. Nothing of Dapr's code is committed:
# the module source is downloaded by the go command and built in a copy.
# Prints the binary's path.
set -euo pipefail
version=${DAPR_VERSION:-v1.16.0}
cache=${OUTRIG_CACHE:-$HOME/.cache/outrig}/daprd-$version
bin=$cache/daprd
if [[ -x $bin ]]; then echo "$bin"; exit 0; fi
mkdir -p "$cache"
src=$(go mod download -json "github.com/dapr/dapr@$version" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
[[ -n $src ]] || { echo "build-daprd: module download failed" >&2; exit 1; }
work=$cache/src
rm -rf "$work"; cp -r "$src" "$work"; chmod -R u+w "$work"
# stablecomponents leaves out the alpha kitex binding, whose assembly Go 1.26 rejects.
(cd "$work" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -tags=stablecomponents -o "$bin" ./cmd/daprd) >&2
rm -rf "$work"
echo "$bin"
