# shellcheck shell=bash
# Redis: Debian's redis-server, daemonized with our own config. No persistence.

REDIS_PORT="${OUTRIG_REDIS_PORT:-6379}"

redis_ports() { echo "$REDIS_PORT"; }
redis_pidname() { echo redis; }
redis_log() { echo "$DIR/redis/redis.log"; }

redis_install() {
	command -v redis-server >/dev/null && command -v redis-cli >/dev/null && return 0
	apt_install redis-server redis-tools
}

redis_start() {
	local d="$DIR/redis"
	mkdir -p "$d"
	cat >"$d/redis.conf" <<CONF
bind 127.0.0.1
port $REDIS_PORT
protected-mode yes
daemonize yes
pidfile $DIR/redis.pid
logfile $d/redis.log
dir $d
save ""
appendonly no
databases 16
CONF
	# cwd = $d so that `down` can recognise a straggler as ours
	(cd "$d" && redis-server "$d/redis.conf")
}

redis_check() {
	[[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]
}

redis_ready() {
	wait_for redis - redis_check
}

redis_stop() {
	local pid
	if pid="$(pid_of redis)" && ours "$pid"; then
		redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
	fi
	stop_pid redis 10
}
