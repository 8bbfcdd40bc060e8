package org.pyfront;

import java.io.IOException;
import java.net.InetAddress;
import java.net.Socket;
import java.net.UnknownHostException;
import java.util.Map;
import java.util.function.Supplier;
import javax.net.SocketFactory;
import org.pyfront.internal.WorkerControl;
import py4j.ClientServer;
import py4j.Py4JAuthenticationException;

/**
 * The Py4J control channel to one worker: hello, signature, health, load. Tensors never travel
 * here. Py4J leaves Nagle's algorithm on; its sockets come from a factory that turns it off.
 */
final class ControlClient implements AutoCloseable {
    private final ClientServer clientServer;
    private final WorkerControl control;
    final String host;
    final int port;

    private ControlClient(ClientServer clientServer, WorkerControl control, String host, int port) {
        this.clientServer = clientServer;
        this.control = control;
        this.host = host;
        this.port = port;
    }

    static ControlClient connect(String host, int port, String token, int timeoutMillis) {
        InetAddress address;
        try {
            address = InetAddress.getByName(host);
        } catch (UnknownHostException e) {
            throw new WorkerUnavailableException("unknown worker host " + host, e);
        }
        ClientServer cs = new ClientServer.ClientServerBuilder()
                .pythonAddress(address)
                .pythonPort(port)
                .javaAddress(InetAddress.getLoopbackAddress())
                .javaPort(0)
                .autoStartJavaServer(false)
                .authToken(token)
                .connectTimeout(timeoutMillis)
                .readTimeout(timeoutMillis)
                .socketFactory(NoDelaySocketFactory.INSTANCE)
                .build();
        WorkerControl control = (WorkerControl) cs.getPythonServerEntryPoint(
                new Class<?>[] {WorkerControl.class});
        return new ControlClient(cs, control, host, port);
    }

    /** hello(): the worker's data socket, pid and models. */
    Map<String, Object> hello() {
        return call(() -> control.hello(DataConnection.PROTOCOL_VERSION), "hello");
    }

    Signature signature(String model) {
        return Signature.fromJson(call(() -> control.signature(model), "signature"));
    }

    String health() {
        return rawCall(control::health, "health");
    }

    private Map<String, Object> call(Supplier<String> method, String what) {
        Map<String, Object> reply = Json.object(Json.parse(rawCall(method, what)), what);
        Object error = reply.get("error");
        if (error != null) {
            Map<String, Object> e = Json.object(error, "error");
            throw new RemoteModelException(String.valueOf(e.get("type")),
                    String.valueOf(e.get("message")));
        }
        return reply;
    }

    private String rawCall(Supplier<String> method, String what) {
        try {
            return method.get();
        } catch (RuntimeException e) {
            if (causedByAuthentication(e)) {
                throw new AuthenticationException("the worker at " + host + ":" + port
                        + " refused the control connection: wrong or missing token", e);
            }
            Throwable root = e;
            while (root.getCause() != null) {
                root = root.getCause();
            }
            throw new WorkerUnavailableException("control call " + what + "() to the worker at "
                    + host + ":" + port + " failed: " + e.getMessage()
                    + (root != e ? " (" + root + ")" : ""), e);
        }
    }

    private static boolean causedByAuthentication(Throwable e) {
        // py4j reports a refused token as IOException("Authentication with callback server
        // unsuccessful.") inside a Py4JException; newer versions may use their own type
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof Py4JAuthenticationException || (t instanceof java.io.IOException
                    && String.valueOf(t.getMessage()).startsWith("Authentication"))) {
                return true;
            }
        }
        return false;
    }

    @Override
    public void close() {
        try {
            clientServer.shutdown();
        } catch (RuntimeException ignored) {
            // the worker may be gone already; its sockets are closed either way
        }
    }

    /** Py4J's sockets, with TCP_NODELAY so small control messages are not held back. */
    static final class NoDelaySocketFactory extends SocketFactory {
        static final NoDelaySocketFactory INSTANCE = new NoDelaySocketFactory();

        private static Socket noDelay(Socket s) throws IOException {
            s.setTcpNoDelay(true);
            return s;
        }

        @Override
        public Socket createSocket() throws IOException {
            return noDelay(new Socket());
        }

        @Override
        public Socket createSocket(String host, int port) throws IOException {
            return noDelay(new Socket(host, port));
        }

        @Override
        public Socket createSocket(String host, int port, InetAddress localHost, int localPort)
                throws IOException {
            return noDelay(new Socket(host, port, localHost, localPort));
        }

        @Override
        public Socket createSocket(InetAddress host, int port) throws IOException {
            return noDelay(new Socket(host, port));
        }

        @Override
        public Socket createSocket(InetAddress address, int port, InetAddress localAddress,
                                   int localPort) throws IOException {
            return noDelay(new Socket(address, port, localAddress, localPort));
        }
    }
}
