# shellcheck shell=bash
# MongoDB wire protocol: FerretDB on SQLite, built from source (the Go module proxy has
# the source; `go install` of it is refused here). Debug/metrics HTTP listener off,
# telemetry off, listens on 127.0.0.1:27017 only.

MONGODB_PORT="${OUTRIG_MONGODB_PORT:-27017}"
FERRETDB_HOME="$CACHE/ferretdb-$FERRETDB_VERSION"
FERRETDB_BIN="$FERRETDB_HOME/ferretdb"
MONGOPROBE_BIN="$FERRETDB_HOME/mongoprobe"

mongodb_ports() { echo "$MONGODB_PORT"; }
mongodb_pidname() { echo mongodb; }
mongodb_log() { echo "$DIR/mongodb/ferretdb.log"; }

mongodb_probe_sum() { sha256sum "$PARTS/mongodb/mongoprobe.go" | cut -c1-16; }

mongodb_installed() {
	[[ -x "$FERRETDB_BIN" && -x "$MONGOPROBE_BIN" && -f "$FERRETDB_HOME/.stamp" \
		&& "$(cat "$FERRETDB_HOME/.stamp")" == "$FERRETDB_VERSION $(mongodb_probe_sum)" ]]
}

# Builds ferretdb and mongoprobe into the cache. Module and build caches are ours too
# (under $CACHE/go), so a cold machine is really cold and a warm one downloads nothing.
mongodb_install() {
	mongodb_installed && return 0
	command -v go >/dev/null || die "mongodb: Go is needed to build FerretDB (Go 1.24 or newer)"
	export GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build" GOFLAGS="-modcacherw -buildvcs=false"
	export GOTOOLCHAIN=local CGO_ENABLED=0
	local mod src
	log "mongodb: go mod download github.com/FerretDB/FerretDB@$FERRETDB_VERSION"
	mod="$(cd / && GOWORK=off go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
	[[ -d "$mod" ]] || die "mongodb: go mod download gave no source directory"
	src="$FERRETDB_HOME/src"
	rm -rf "$src"
	mkdir -p "$FERRETDB_HOME"
	cp -r "$mod" "$src"
	chmod -R u+w "$src"
	# FerretDB refuses to start without a version; its build normally writes it from git.
	echo "$FERRETDB_VERSION" >"$src/build/version/version.txt"
	mkdir -p "$src/cmd/outrig-mongoprobe"
	cp "$PARTS/mongodb/mongoprobe.go" "$src/cmd/outrig-mongoprobe/main.go"
	log "mongodb: go build ferretdb (sqlite handler only; takes a few minutes on 2 cores)"
	(cd "$src" && go build -trimpath -tags ferretdb_no_postgresql -o "$FERRETDB_BIN.tmp" ./cmd/ferretdb)
	# listed as a file, so the `ignore` build tag does not apply
	(cd "$src" && go build -trimpath -o "$MONGOPROBE_BIN.tmp" ./cmd/outrig-mongoprobe/main.go)
	mv "$FERRETDB_BIN.tmp" "$FERRETDB_BIN"
	mv "$MONGOPROBE_BIN.tmp" "$MONGOPROBE_BIN"
	echo "$FERRETDB_VERSION $(mongodb_probe_sum)" >"$FERRETDB_HOME/.stamp"
	log "mongodb: built $FERRETDB_BIN"
}

mongodb_start() {
	local d="$DIR/mongodb"
	mkdir -p "$d/data" "$d/state"
	launch mongodb "$d" "$d/ferretdb.log" "$FERRETDB_BIN" \
		--handler=sqlite --sqlite-url="file:$d/data/" --state-dir="$d/state" \
		--listen-addr="127.0.0.1:$MONGODB_PORT" --debug-addr=- --telemetry=disable \
		--log-level=info
}

mongodb_check() {
	timeout 15 "$MONGOPROBE_BIN" "mongodb://127.0.0.1:$MONGODB_PORT/"
}

mongodb_ready() {
	local pid
	pid="$(pid_of mongodb)" || return 1
	wait_for mongodb "$pid" mongodb_check
}

mongodb_stop() {
	stop_pid mongodb 20
}
