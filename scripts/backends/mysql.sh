# shellcheck shell=bash
# MySQL protocol: Debian's MariaDB with a data directory of our own, root via the
# unix socket, and user outrig/outrig (database `outrig`, plus any `outrig_%` database
# a test wants to create) over TCP 127.0.0.1.

MYSQL_PORT="${OUTRIG_MYSQL_PORT:-3306}"
MYSQL_SOCK="$DIR/mysql/mysqld.sock"

mysql_ports() { echo "$MYSQL_PORT"; }
mysql_pidname() { echo mysql; }
mysql_log() { echo "$DIR/mysql/mysqld.log"; }

mysql_install() {
	command -v mariadbd >/dev/null && command -v mariadb-install-db >/dev/null \
		&& command -v mariadb >/dev/null && return 0
	apt_install mariadb-server mariadb-client
}

mysql_start() {
	local d="$DIR/mysql"
	mkdir -p "$d"
	if [[ ! -d "$d/data/mysql" ]]; then
		log "mysql: initialising data directory $d/data"
		rm -rf "$d/data"
		mariadb-install-db --no-defaults --user=root --datadir="$d/data" --skip-test-db \
			--auth-root-authentication-method=socket >"$d/install-db.log" 2>&1 || {
			tail -20 "$d/install-db.log" >&2
			return 1
		}
	fi
	# --no-defaults: ignore /etc/mysql entirely; everything is on this command line.
	launch mysql "$d" "$d/mysqld.out" mariadbd --no-defaults --user=root \
		--datadir="$d/data" --socket="$MYSQL_SOCK" --pid-file="$d/mysqld.pid" \
		--port="$MYSQL_PORT" --bind-address=127.0.0.1 --log-error="$d/mysqld.log" \
		--skip-name-resolve --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
		--innodb-buffer-pool-size=64M --innodb-log-file-size=48M --max-connections=300 \
		--performance-schema=OFF
}

# shellcheck disable=SC2120 # called with and without arguments
mysql_root() { mariadb --no-defaults --protocol=socket --socket="$MYSQL_SOCK" -uroot "$@"; }

mysql_check() {
	mariadb --no-defaults --protocol=tcp -h127.0.0.1 -P"$MYSQL_PORT" -uoutrig -poutrig outrig \
		-N -e 'SELECT 1' 2>/dev/null | grep -qx 1
}

mysql_ready() {
	local pid
	pid="$(pid_of mysql)" || return 1
	wait_for "mysql (socket)" "$pid" mysql_root -e 'SELECT 1' || return 1
	# shellcheck disable=SC2119 # the SQL comes on stdin
	mysql_root <<'SQL' || return 1
CREATE DATABASE IF NOT EXISTS outrig CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS 'outrig'@'127.0.0.1' IDENTIFIED BY 'outrig';
CREATE USER IF NOT EXISTS 'outrig'@'localhost' IDENTIFIED BY 'outrig';
CREATE USER IF NOT EXISTS 'outrig'@'%' IDENTIFIED BY 'outrig';
GRANT ALL PRIVILEGES ON `outrig`.* TO 'outrig'@'127.0.0.1', 'outrig'@'localhost', 'outrig'@'%';
GRANT ALL PRIVILEGES ON `outrig\_%`.* TO 'outrig'@'127.0.0.1', 'outrig'@'localhost', 'outrig'@'%';
FLUSH PRIVILEGES;
SQL
	wait_for "mysql (tcp as outrig)" "$pid" mysql_check
}

mysql_stop() {
	stop_pid mysql 60
}
