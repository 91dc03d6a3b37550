#!/usr/bin/env bash
# Real backend servers on 127.0.0.1 for Outrig's integration tests.
#
#   scripts/backends.sh up     [NAME...]   install what is missing, start, wait until each answers
#   scripts/backends.sh down   [NAME...]   stop them (TERM, then KILL after a grace period)
#   scripts/backends.sh status [NAME...]   one line per backend: state, address, pid, log
#
# NAME is one of: redis mysql zookeeper kafka rocketmq mongodb (none = all).
# Logs, data and pid files live under $OUTRIG_BACKENDS_DIR (default /tmp/outrig-backends);
# downloads and builds are cached under $OUTRIG_CACHE (default ~/.cache/outrig).
# Each backend's details are in scripts/backends/<name>.sh; docs/backends.md explains it all.
set -euo pipefail

ALL_BACKENDS=(redis mysql zookeeper kafka rocketmq mongodb)

DIR="${OUTRIG_BACKENDS_DIR:-/tmp/outrig-backends}"
CACHE="${OUTRIG_CACHE:-$HOME/.cache/outrig}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PARTS="$HERE/backends"

# Versions (override with the environment for a one-off experiment); used by the parts.
# shellcheck disable=SC2034
KAFKA_VERSION="${OUTRIG_KAFKA_VERSION:-3.9.1}"
# shellcheck disable=SC2034
ZOOKEEPER_VERSION="${OUTRIG_ZOOKEEPER_VERSION:-3.9.4}"
# shellcheck disable=SC2034
ROCKETMQ_VERSION="${OUTRIG_ROCKETMQ_VERSION:-5.3.3}"
FERRETDB_VERSION="${OUTRIG_FERRETDB_VERSION:-v1.24.2}"

# How long `up` waits for one backend to answer, in seconds.
READY_TIMEOUT="${OUTRIG_READY_TIMEOUT:-120}"

# ---------------------------------------------------------------- helpers

log() { printf '[backends +%3ds] %s\n' "$SECONDS" "$*" >&2; }
warn() { printf '[backends +%3ds] WARNING: %s\n' "$SECONDS" "$*" >&2; }
die() {
	printf '[backends] ERROR: %s\n' "$*" >&2
	exit 1
}

APT_UPDATED=0
# apt_install PKG... installs the Debian packages that are not installed yet.
apt_install() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	if ((APT_UPDATED == 0)); then
		log "apt-get update"
		apt-get update -q >"$DIR/apt.log" 2>&1 || {
			tail -20 "$DIR/apt.log" >&2
			die "apt-get update failed"
		}
		APT_UPDATED=1
	fi
	log "apt-get install ${missing[*]}"
	# The packages' own services (a system redis/mariadb on our ports) must not start:
	# every server here runs with our own config in $DIR. Debian's policy-rc.d hook
	# (exit 101 = "not allowed") does that; add one for the install if there is none.
	local policy=/usr/sbin/policy-rc.d added=0 rc=0
	if [[ ! -e "$policy" ]]; then
		printf '#!/bin/sh\n# temporary, from outrig scripts/backends.sh\nexit 101\n' >"$policy"
		chmod +x "$policy"
		added=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" \
		>>"$DIR/apt.log" 2>&1 || rc=$?
	((added == 0)) || rm -f "$policy"
	if ((rc != 0)); then
		tail -20 "$DIR/apt.log" >&2
		die "apt-get install ${missing[*]} failed (log: $DIR/apt.log)"
	fi
}

JAVA_OK=0
# ensure_java makes java 17+, javac and mvn available (the Java backends need them).
ensure_java() {
	((JAVA_OK == 0)) || return 0
	local pkgs=()
	command -v java >/dev/null || pkgs+=(openjdk-17-jdk-headless)
	command -v javac >/dev/null || pkgs+=(openjdk-17-jdk-headless)
	command -v mvn >/dev/null || pkgs+=(maven)
	((${#pkgs[@]} == 0)) || apt_install "${pkgs[@]}"
	local v
	v="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)"
	[[ -n "$v" && "$v" -ge 17 ]] || die "java 17 or newer is needed, found: $(java -version 2>&1 | head -1)"
	JAVA_OK=1
}

# mvn_fetch NAME DEST G:A:V... copies the artifacts and their runtime dependencies into
# DEST (once: a stamp file records what DEST holds). The Maven repository is our cache.
mvn_fetch() {
	local name="$1" dest="$2"
	shift 2
	local want="$*"
	if [[ -f "$dest/.stamp" && "$(cat "$dest/.stamp")" == "$want" ]]; then
		return 0
	fi
	ensure_java
	log "$name: fetching $want from Maven Central"
	local work="$CACHE/poms/$name"
	mkdir -p "$work" "$CACHE/m2"
	{
		echo '<project xmlns="http://maven.apache.org/POM/4.0.0">'
		echo '  <modelVersion>4.0.0</modelVersion>'
		echo "  <groupId>outrig.backends</groupId><artifactId>$name</artifactId><version>1</version>"
		echo '  <packaging>pom</packaging>'
		echo '  <dependencies>'
		local gav g a v
		for gav in "$@"; do
			IFS=: read -r g a v <<<"$gav"
			echo "    <dependency><groupId>$g</groupId><artifactId>$a</artifactId><version>$v</version></dependency>"
		done
		echo '  </dependencies>'
		echo '</project>'
	} >"$work/pom.xml"
	rm -rf "$dest.tmp"
	if ! mvn -B -q -f "$work/pom.xml" -Dmaven.repo.local="$CACHE/m2" \
		dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$dest.tmp" \
		>"$work/mvn.log" 2>&1; then
		tail -30 "$work/mvn.log" >&2
		die "$name: mvn dependency:copy-dependencies failed (log: $work/mvn.log)"
	fi
	rm -rf "$dest"
	mv "$dest.tmp" "$dest"
	echo "$want" >"$dest/.stamp"
}

# pid_of NAME prints the pid recorded for NAME if that process is alive and still ours
# (a recycled pid belongs to someone else and is never signalled).
pid_of() {
	local f="$DIR/$1.pid" pid
	[[ -f "$f" ]] || return 1
	pid="$(cat "$f")"
	[[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && ours "$pid" || return 1
	echo "$pid"
}

# listener_pid PORT prints the pid listening on 127.0.0.1/any:PORT, if any.
listener_pid() {
	ss -Hltnp "sport = :$1" 2>/dev/null | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1
}

# port_busy PORT succeeds if anything listens on PORT.
port_busy() {
	[[ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]]
}

# ours PID succeeds if the process was started by this script (its cwd is under $DIR).
ours() {
	local cwd
	cwd="$(readlink "/proc/$1/cwd" 2>/dev/null)" || return 1
	[[ "$cwd" == "$(realpath -m "$DIR")"/* ]]
}

# launch NAME WORKDIR LOG CMD... starts CMD in the background in its own session, with
# WORKDIR as its cwd (that is how `down` recognises our stragglers), and records its pid.
launch() {
	local name="$1" wd="$2" logf="$3"
	shift 3
	mkdir -p "$wd"
	printf '===== %s: scripts/backends.sh starting %s\n' "$(date -Is)" "$name" >>"$logf"
	(cd "$wd" && exec setsid "$@") </dev/null >>"$logf" 2>&1 &
	echo $! >"$DIR/$name.pid"
}

# stop_pid NAME [GRACE] stops the recorded process of NAME: TERM, then KILL after GRACE s.
stop_pid() {
	local name="$1" grace="${2:-30}" pid i
	pid="$(pid_of "$name")" || {
		rm -f "$DIR/$name.pid"
		return 0
	}
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < grace * 5; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	if kill -0 "$pid" 2>/dev/null; then
		warn "$name (pid $pid) did not stop in ${grace}s, killing it"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$DIR/$name.pid"
}

# kill_stragglers PORT... kills processes of ours still listening on these ports.
kill_stragglers() {
	local port pid i
	for port in "$@"; do
		pid="$(listener_pid "$port")"
		[[ -n "$pid" ]] || continue
		if ours "$pid"; then
			warn "killing straggler pid $pid on port $port"
			kill -KILL "$pid" 2>/dev/null || true
			for ((i = 0; i < 50; i++)); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.1
			done
		fi
	done
}

# wait_for DESC PID FUNC [ARGS...] retries FUNC until it succeeds or READY_TIMEOUT
# passes; gives up early if process PID (use - for none) exits.
wait_for() {
	local desc="$1" pid="$2" deadline=$((SECONDS + READY_TIMEOUT))
	shift 2
	until "$@" >/dev/null 2>&1; do
		if [[ "$pid" != - ]] && ! kill -0 "$pid" 2>/dev/null; then
			log "$desc: process $pid exited"
			return 1
		fi
		if ((SECONDS >= deadline)); then
			log "$desc: no answer after ${READY_TIMEOUT}s"
			return 1
		fi
		sleep 0.5
	done
}

# tcp_cmd PORT WORD sends a four-letter word (or any text) and prints the answer.
tcp_cmd() {
	# shellcheck disable=SC2016 # $1 and $2 expand in the inner bash
	timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"; printf "%s" "$2" >&3; cat <&3' _ "$1" "$2"
}

# java_tool CLASSPATH MAINCLASS ARGS... runs a short-lived JVM tool with a small heap,
# killed after 60 s if it hangs.
java_tool() {
	local cp="$1"
	shift
	timeout 60 java -Xmx192m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Djava.net.preferIPv4Stack=true -cp "$cp" "$@"
}

# ---------------------------------------------------------------- backends

# Every part defines, for NAME:
#   NAME_install   install/fetch/build what is missing (idempotent, cached)
#   NAME_start     launch the server(s) without waiting
#   NAME_ready     wait until it really answers and do first-start setup; non-zero on failure
#   NAME_check     a quick health check of a running server
#   NAME_stop      stop it
#   NAME_ports     print the ports it listens on (first one is the main one)
#   NAME_pidname   the pid file names (under $DIR) of its processes, main one first
#   NAME_log       the main log file
for part in "${ALL_BACKENDS[@]}"; do
	# shellcheck source=/dev/null
	source "$PARTS/$part.sh"
done

# ---------------------------------------------------------------- commands

# all_alive NAME prints the main pid if every process of backend NAME is alive.
all_alive() {
	local p pid first=""
	for p in $("${1}_pidname"); do
		pid="$(pid_of "$p")" || return 1
		first="${first:-$pid}"
	done
	echo "$first"
}

# state NAME prints "up <pid>", "foreign <pid>" or "down".
state() {
	local name="$1" pid port
	port="$("${name}_ports" | head -1)"
	if pid="$(all_alive "$name")" && port_busy "$port"; then
		echo "up $pid"
	elif pid="$(listener_pid "$port")" && [[ -n "$pid" ]] && ! ours "$pid"; then
		echo "foreign $pid"
	else
		echo "down"
	fi
}

# cmd_status check|nocheck NAME... prints one line per backend; with `check`, a running
# backend is also asked whether it answers (and shown as unhealthy if not).
cmd_status() {
	local mode="$1" name st pid ports logf
	shift
	for name in "$@"; do
		read -r st pid <<<"$(state "$name")"
		ports="$("${name}_ports" | paste -sd, -)"
		logf="$("${name}_log")"
		case "$st" in
		up) [[ "$mode" == nocheck ]] || "${name}_check" >/dev/null 2>&1 || st="unhealthy" ;;
		foreign) st="up(not-ours)" logf="- (started outside this script)" ;;
		esac
		printf '%-10s %-13s %-33s pid %-8s log %s\n' "$name" "$st" "127.0.0.1:$ports" "${pid:--}" "$logf"
	done
}

cmd_up() {
	local name st pid failed=() started=()
	mkdir -p "$DIR" "$CACHE"
	log "data and logs: $DIR   cache: $CACHE"
	command -v ss >/dev/null || apt_install iproute2

	# 1. install. The FerretDB build (the slow part of a cold start) runs in the
	#    background while the rest installs.
	local build_pid=""
	if [[ " $* " == *" mongodb "* ]] && ! mongodb_installed; then
		mongodb_install >"$DIR/mongodb-build.log" 2>&1 &
		build_pid=$!
		log "mongodb: building FerretDB $FERRETDB_VERSION in the background (log: $DIR/mongodb-build.log)"
	fi
	for name in "$@"; do
		[[ "$name" == mongodb ]] || "${name}_install"
	done
	if [[ -n "$build_pid" ]] && ! wait "$build_pid"; then
		tail -30 "$DIR/mongodb-build.log" >&2
		die "mongodb: FerretDB build failed (log: $DIR/mongodb-build.log)"
	fi

	# 2. start what is not running (all at once, they boot in parallel).
	for name in "$@"; do
		read -r st pid <<<"$(state "$name")"
		case "$st" in
		up) log "$name: already running (pid $pid)" ;;
		foreign) warn "$name: port $("${name}_ports" | head -1) is held by pid $pid, which this script did not start; checking it as is" ;;
		down)
			log "$name: starting"
			# shellcheck disable=SC2046
			kill_stragglers $("${name}_ports")
			if "${name}_start"; then
				started+=("$name")
			else
				failed+=("$name")
			fi
			;;
		esac
	done

	# 3. wait until each answers.
	for name in "$@"; do
		if [[ " ${failed[*]:-} " == *" $name "* ]]; then
			continue
		elif [[ " ${started[*]:-} " == *" $name "* ]]; then
			if "${name}_ready"; then
				log "$name: up"
			else
				failed+=("$name")
			fi
		elif "${name}_check" >/dev/null; then
			log "$name: answers"
		else
			failed+=("$name")
		fi
	done

	if ((${#failed[@]})); then
		for name in "${failed[@]}"; do
			log "$name FAILED; last lines of $("${name}_log"):"
			tail -25 "$("${name}_log")" >&2 2>/dev/null || true
		done
		cmd_status nocheck "$@"
		die "not up: ${failed[*]}"
	fi
	cmd_status nocheck "$@"
	log "all up: $*   (data and logs in $DIR)"
}

# cmd_down NAME... stops the backends in parallel (RocketMQ's broker alone takes ~15 s).
cmd_down() {
	local name pids=()
	for name in "$@"; do
		log "$name: stopping"
		(
			"${name}_stop"
			# shellcheck disable=SC2046
			kill_stragglers $("${name}_ports")
		) &
		pids+=($!)
	done
	wait "${pids[@]}"
	log "stopped: $*"
}

main() {
	local cmd="${1:-}"
	[[ -n "$cmd" ]] || die "usage: $0 up|down|status [${ALL_BACKENDS[*]}]"
	shift
	local names=("$@") n
	((${#names[@]})) || names=("${ALL_BACKENDS[@]}")
	for n in "${names[@]}"; do
		[[ " ${ALL_BACKENDS[*]} " == *" $n "* ]] || die "unknown backend '$n' (known: ${ALL_BACKENDS[*]})"
	done
	case "$cmd" in
	up) cmd_up "${names[@]}" ;;
	down) mkdir -p "$DIR" && cmd_down "${names[@]}" ;;
	status) cmd_status check "${names[@]}" ;;
	*) die "unknown command '$cmd' (use up, down or status)" ;;
	esac
}

main "$@"
