package org.pyfront.internal;

/**
 * The worker's control interface, implemented in Python (pyfront.jvm.worker.Control) and
 * called through Py4J. Every method answers JSON; failures are {"error": {"type", "message"}}.
 * Public only because Py4J's proxies need it; not part of the API.
 */
public interface WorkerControl {
    /** Protocol check; answers the data socket path, the pid and the models served. */
    String hello(int protocolVersion);

    /** The signature of a served model. */
    String signature(String model);

    /** Liveness and request counts. */
    String health();

    /** Loads another model file into the running worker; answers its signature. */
    String load(String name, String path);
}
