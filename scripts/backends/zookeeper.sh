# shellcheck shell=bash
# ZooKeeper: the Maven Central jar, standalone, with our own zoo.cfg. The AdminServer
# (Jetty, 8080) is off and the client port is bound to 127.0.0.1.

ZK_PORT="${OUTRIG_ZOOKEEPER_PORT:-2181}"
ZK_LIB="$CACHE/zookeeper-$ZOOKEEPER_VERSION/lib"

zookeeper_ports() { echo "$ZK_PORT"; }
zookeeper_pidname() { echo zookeeper; }
zookeeper_log() { echo "$DIR/zookeeper/zookeeper.log"; }

zookeeper_install() {
	ensure_java
	# metrics-core and snappy are "provided" in ZooKeeper's pom but needed at run time;
	# slf4j-simple gives it a logger that writes to stderr (our log file).
	mvn_fetch zookeeper "$ZK_LIB" \
		"org.apache.zookeeper:zookeeper:$ZOOKEEPER_VERSION" \
		io.dropwizard.metrics:metrics-core:4.1.12.1 \
		org.xerial.snappy:snappy-java:1.1.10.5 \
		org.slf4j:slf4j-simple:2.0.13
}

zookeeper_start() {
	local d="$DIR/zookeeper"
	mkdir -p "$d/data"
	cat >"$d/zoo.cfg" <<CONF
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$d/data
clientPort=$ZK_PORT
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,stat,mntr,conf,cons
maxClientCnxns=0
autopurge.snapRetainCount=3
autopurge.purgeInterval=1
CONF
	launch zookeeper "$d" "$d/zookeeper.log" java -Xms64m -Xmx256m -XX:+UseG1GC \
		-Djava.net.preferIPv4Stack=true -Dzookeeper.admin.enableServer=false \
		-Dorg.slf4j.simpleLogger.showDateTime=true \
		-Dorg.slf4j.simpleLogger.dateTimeFormat="yyyy-MM-dd HH:mm:ss,SSS" \
		-cp "$ZK_LIB/*" org.apache.zookeeper.server.ZooKeeperServerMain "$d/zoo.cfg"
}

# `ruok` answers imok even when the server failed to load its data; `srvr` does not.
zookeeper_check() {
	tcp_cmd "$ZK_PORT" srvr 2>/dev/null | grep -q '^Mode: standalone'
}

zookeeper_ready() {
	local pid
	pid="$(pid_of zookeeper)" || return 1
	wait_for zookeeper "$pid" zookeeper_check
}

zookeeper_stop() {
	stop_pid zookeeper 20
}
