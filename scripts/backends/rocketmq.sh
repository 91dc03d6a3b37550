# shellcheck shell=bash
# RocketMQ: name server (9876) and one broker (remoting 10911, "fast" VIP channel
# 10909, HA 10912) from the Maven Central jars, all on 127.0.0.1, small heaps.
# Java sources in rocketmq/ (compiled into the cache):
#   LoopbackHAService  the broker's HA listener binds every interface in 5.x; this moves
#                      it to 127.0.0.1 (loaded through RocketMQ's META-INF/service hook)
#   RocketCheck        health check: send one message, pull it back by queue/offset

ROCKETMQ_NAMESRV_PORT="${OUTRIG_ROCKETMQ_NAMESRV_PORT:-9876}"
ROCKETMQ_BROKER_PORT="${OUTRIG_ROCKETMQ_BROKER_PORT:-10911}"
ROCKETMQ_LIB="$CACHE/rocketmq-$ROCKETMQ_VERSION/lib"
ROCKETMQ_CLASSES="$CACHE/rocketmq-$ROCKETMQ_VERSION/classes"

rocketmq_ports() {
	printf '%s\n' "$ROCKETMQ_NAMESRV_PORT" "$ROCKETMQ_BROKER_PORT" \
		$((ROCKETMQ_BROKER_PORT - 2)) $((ROCKETMQ_BROKER_PORT + 1))
}
rocketmq_pidname() { printf '%s\n' rocketmq-namesrv rocketmq-broker; }
rocketmq_log() { echo "$DIR/rocketmq/broker.log"; }

rocketmq_install() {
	ensure_java
	mvn_fetch rocketmq "$ROCKETMQ_LIB" \
		"org.apache.rocketmq:rocketmq-namesrv:$ROCKETMQ_VERSION" \
		"org.apache.rocketmq:rocketmq-broker:$ROCKETMQ_VERSION" \
		"org.apache.rocketmq:rocketmq-tools:$ROCKETMQ_VERSION"
	local src="$PARTS/rocketmq" sum
	sum="$(cat "$src"/*.java "$ROCKETMQ_LIB/.stamp" | sha256sum | cut -c1-16)"
	[[ -f "$ROCKETMQ_CLASSES/.stamp" && "$(cat "$ROCKETMQ_CLASSES/.stamp")" == "$sum" ]] && return 0
	log "rocketmq: compiling helper classes"
	rm -rf "$ROCKETMQ_CLASSES"
	mkdir -p "$ROCKETMQ_CLASSES/META-INF/service"
	javac -nowarn -d "$ROCKETMQ_CLASSES" -cp "$ROCKETMQ_LIB/*" "$src"/*.java
	echo outrig.rocketmq.LoopbackHAService \
		>"$ROCKETMQ_CLASSES/META-INF/service/org.apache.rocketmq.store.ha.HAService"
	echo "$sum" >"$ROCKETMQ_CLASSES/.stamp"
}

# rocketmq_jvm_flags ROLE prints the JVM flags shared by every RocketMQ process.
# user.home points into our folder: RocketMQ writes its detailed logs to
# ~/logs/rocketmqlogs and keeps client state under ~.
rocketmq_jvm_flags() {
	local role="$1"
	printf '%s\n' -Djava.net.preferIPv4Stack=true \
		--add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/sun.nio.ch=ALL-UNNAMED \
		--add-exports=java.base/sun.nio.ch=ALL-UNNAMED --add-exports=java.base/jdk.internal.ref=ALL-UNNAMED \
		-Duser.home="$DIR/rocketmq/home" -Drocketmq.home.dir="$DIR/rocketmq" \
		-Drmq.logback.configurationFile="rmq.$role.logback.xml" \
		-Dlogback.statusListenerClass=org.apache.rocketmq.logging.ch.qos.logback.core.status.NopStatusListener
}

rocketmq_start() {
	local d="$DIR/rocketmq" flags
	mkdir -p "$d/home" "$d/store"
	cat >"$d/namesrv.conf" <<CONF
listenPort=$ROCKETMQ_NAMESRV_PORT
bindAddress=127.0.0.1
CONF
	cat >"$d/broker.conf" <<CONF
brokerClusterName=DefaultCluster
brokerName=broker-a
brokerId=0
brokerRole=ASYNC_MASTER
flushDiskType=ASYNC_FLUSH
namesrvAddr=127.0.0.1:$ROCKETMQ_NAMESRV_PORT
brokerIP1=127.0.0.1
brokerIP2=127.0.0.1
bindAddress=127.0.0.1
listenPort=$ROCKETMQ_BROKER_PORT
haListenPort=$((ROCKETMQ_BROKER_PORT + 1))
storePathRootDir=$d/store
storePathCommitLog=$d/store/commitlog
autoCreateTopicEnable=true
autoCreateSubscriptionGroup=true
mappedFileSizeCommitLog=67108864
deleteWhen=04
fileReservedTime=24
CONF
	mapfile -t flags < <(rocketmq_jvm_flags namesrv)
	pid_of rocketmq-namesrv >/dev/null || launch rocketmq-namesrv "$d/home" "$d/namesrv.log" java -Xms128m -Xmx128m -XX:+UseG1GC "${flags[@]}" \
		-cp "$ROCKETMQ_LIB/*" org.apache.rocketmq.namesrv.NamesrvStartup -c "$d/namesrv.conf"
	mapfile -t flags < <(rocketmq_jvm_flags broker)
	pid_of rocketmq-broker >/dev/null || launch rocketmq-broker "$d/home" "$d/broker.log" java -Xms256m -Xmx256m -Xmn128m \
		-XX:+UseG1GC -XX:MaxDirectMemorySize=256m "${flags[@]}" \
		-cp "$ROCKETMQ_CLASSES:$ROCKETMQ_LIB/*" org.apache.rocketmq.broker.BrokerStartup -c "$d/broker.conf"
}

rocketmq_check() {
	local flags
	pid_of rocketmq-broker >/dev/null || port_busy "$ROCKETMQ_BROKER_PORT" || return 1
	mapfile -t flags < <(rocketmq_jvm_flags client)
	(cd "$DIR/rocketmq/home" && java_tool "$ROCKETMQ_CLASSES:$ROCKETMQ_LIB/*" "${flags[@]}" \
		outrig.rocketmq.RocketCheck "127.0.0.1:$ROCKETMQ_NAMESRV_PORT" outrig-healthcheck)
}

rocketmq_ready() {
	local ns broker
	ns="$(pid_of rocketmq-namesrv)" || return 1
	broker="$(pid_of rocketmq-broker)" || return 1
	wait_for "rocketmq (namesrv port)" "$ns" port_busy "$ROCKETMQ_NAMESRV_PORT" || return 1
	wait_for "rocketmq (broker port)" "$broker" port_busy "$ROCKETMQ_BROKER_PORT" || return 1
	wait_for "rocketmq (send+pull)" "$broker" rocketmq_check
}

rocketmq_stop() {
	# The broker's shutdown hook takes ~15 s; let the name server stop meanwhile.
	local p pid
	for p in rocketmq-broker rocketmq-namesrv; do
		if pid="$(pid_of "$p")"; then kill -TERM "$pid" 2>/dev/null || true; fi
	done
	stop_pid rocketmq-broker 40
	stop_pid rocketmq-namesrv 20
}
