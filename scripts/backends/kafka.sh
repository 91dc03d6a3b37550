# shellcheck shell=bash
# Kafka: one KRaft node (broker + controller) from the Maven Central jars. Clients use
# 127.0.0.1:9092, the controller listens on 127.0.0.1:9093. No JMX port (we do not set
# com.sun.management.jmxremote.*). Topics are created on first use.

KAFKA_PORT="${OUTRIG_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${OUTRIG_KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_LIB="$CACHE/kafka-$KAFKA_VERSION/lib"

kafka_ports() { printf '%s\n' "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; }
kafka_pidname() { echo kafka; }
kafka_log() { echo "$DIR/kafka/kafka.log"; }

kafka_install() {
	ensure_java
	# kafka-tools brings TopicCommand (kafka-topics.sh) for the health check.
	mvn_fetch kafka "$KAFKA_LIB" \
		"org.apache.kafka:kafka_2.13:$KAFKA_VERSION" \
		"org.apache.kafka:kafka-tools:$KAFKA_VERSION"
}

kafka_java() {
	java_tool "$KAFKA_LIB/*" -Dlog4j.configuration="file:$DIR/kafka/tools-log4j.properties" "$@"
}

kafka_start() {
	local d="$DIR/kafka"
	mkdir -p "$d/data"
	cat >"$d/server.properties" <<CONF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$d/data
num.partitions=1
default.replication.factor=1
auto.create.topics.enable=true
delete.topic.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=24
log.segment.bytes=67108864
CONF
	cat >"$d/log4j.properties" <<'CONF'
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.org.apache.kafka.clients=WARN
log4j.logger.kafka.log.LogCleaner=WARN
CONF
	cat >"$d/tools-log4j.properties" <<'CONF'
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
CONF
	if [[ ! -f "$d/data/meta.properties" ]]; then
		[[ -s "$d/cluster.id" ]] || kafka_java kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1 >"$d/cluster.id"
		log "kafka: formatting $d/data (cluster id $(cat "$d/cluster.id"))"
		kafka_java kafka.tools.StorageTool format --ignore-formatted \
			-t "$(cat "$d/cluster.id")" -c "$d/server.properties" >"$d/format.log" 2>&1 || {
			cat "$d/format.log" >&2
			return 1
		}
	fi
	launch kafka "$d" "$d/kafka.log" java -Xms256m -Xmx512m -XX:+UseG1GC \
		-XX:MaxGCPauseMillis=20 -Djava.awt.headless=true -Djava.net.preferIPv4Stack=true \
		-Dlog4j.configuration="file:$d/log4j.properties" \
		-cp "$KAFKA_LIB/*" kafka.Kafka "$d/server.properties"
}

kafka_topics() {
	printf '%s\n' request.timeout.ms=5000 default.api.timeout.ms=10000 >"$DIR/kafka/tools.properties"
	java_tool "$KAFKA_LIB/*" -Dlog4j.configuration="file:$DIR/kafka/tools-log4j.properties" \
		org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
		--command-config "$DIR/kafka/tools.properties" "$@"
}

# kafka_started succeeds once the log of the current run says the server started.
kafka_started() {
	awk '/^===== /{up=0} /Kafka Server started/{up=1} END{exit !up}' "$DIR/kafka/kafka.log"
}

# A round trip through the broker: list the topics.
kafka_check() {
	kafka_topics --list >/dev/null
}

kafka_ready() {
	local pid
	pid="$(pid_of kafka)" || return 1
	wait_for "kafka (start)" "$pid" kafka_started || return 1
	wait_for "kafka (create topic)" "$pid" kafka_topics --create --if-not-exists \
		--topic outrig-healthcheck --partitions 1 --replication-factor 1 || return 1
	kafka_topics --list | grep -qx outrig-healthcheck
}

kafka_stop() {
	stop_pid kafka 40
}
