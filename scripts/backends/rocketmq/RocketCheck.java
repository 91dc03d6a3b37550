package outrig.rocketmq;

import java.nio.charset.StandardCharsets;
import java.util.UUID;

import org.apache.rocketmq.client.consumer.DefaultMQPullConsumer;
import org.apache.rocketmq.client.consumer.PullResult;
import org.apache.rocketmq.client.consumer.PullStatus;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;

/**
 * Health check for the local RocketMQ: sends one message through the name server's
 * route (remoting protocol, like rocketmq-client-go) and reads that exact message back
 * from its queue and offset. Exit code 0 only if the body comes back unchanged.
 *
 * Usage: RocketCheck NAMESRV_ADDR TOPIC
 */
public final class RocketCheck {
    private RocketCheck() {
    }

    @SuppressWarnings("deprecation")
    public static void main(String[] args) throws Exception {
        String namesrv = args[0];
        String topic = args[1];
        String body = "outrig-check-" + UUID.randomUUID();

        DefaultMQProducer producer = new DefaultMQProducer("outrig_check_producer");
        producer.setNamesrvAddr(namesrv);
        producer.setSendMsgTimeout(5000);
        producer.setRetryTimesWhenSendFailed(3);
        DefaultMQPullConsumer consumer = new DefaultMQPullConsumer("outrig_check_consumer");
        consumer.setNamesrvAddr(namesrv);
        int code = 1;
        try {
            producer.start();
            SendResult sent = producer.send(new Message(topic, body.getBytes(StandardCharsets.UTF_8)));
            if (sent.getSendStatus() != SendStatus.SEND_OK) {
                System.err.println("send: " + sent);
                return;
            }
            consumer.start();
            PullResult pulled = consumer.pull(sent.getMessageQueue(), "*", sent.getQueueOffset(), 1, 5000);
            if (pulled.getPullStatus() == PullStatus.FOUND) {
                MessageExt got = pulled.getMsgFoundList().get(0);
                if (body.equals(new String(got.getBody(), StandardCharsets.UTF_8))) {
                    System.out.println("ok " + sent.getMessageQueue() + " offset " + sent.getQueueOffset());
                    code = 0;
                    return;
                }
                System.err.println("pull: unexpected body in " + got);
                return;
            }
            System.err.println("pull: " + pulled);
        } finally {
            consumer.shutdown();
            producer.shutdown();
            System.exit(code);
        }
    }
}
