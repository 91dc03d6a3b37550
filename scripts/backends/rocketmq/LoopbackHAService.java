package outrig.rocketmq;

import java.io.IOException;
import java.lang.reflect.Field;
import java.net.InetAddress;
import java.net.InetSocketAddress;

import org.apache.rocketmq.store.DefaultMessageStore;
import org.apache.rocketmq.store.ha.DefaultHAService;

/**
 * The broker's HA (master/slave replication) listener binds every interface in
 * RocketMQ 5.x. A single-node test broker has no slave, so we keep the listener
 * but move it to the loopback address before it starts accepting.
 */
public class LoopbackHAService extends DefaultHAService {
    @Override
    public void init(DefaultMessageStore store) throws IOException {
        super.init(store);
        int port = store.getMessageStoreConfig().getHaListenPort();
        try {
            Field addr = DefaultHAService.AcceptSocketService.class.getDeclaredField("socketAddressListen");
            addr.setAccessible(true);
            addr.set(this.acceptSocketService, new InetSocketAddress(InetAddress.getLoopbackAddress(), port));
        } catch (ReflectiveOperationException e) {
            throw new IOException("cannot bind the HA listener to loopback", e);
        }
    }
}
