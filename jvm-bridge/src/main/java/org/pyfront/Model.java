package org.pyfront;

import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * A trained pyfront model, served by Python worker processes and called from Java.
 *
 * <pre>
 * try (Model model = Model.load(Path.of("digits.pf"))) {   // starts and supervises a worker
 *     Tensor y = model.output(Tensor.of(pixels, 1, 64));
 * }
 * </pre>
 *
 * Thread-safe: concurrent calls are stacked into batches along the batch dimension and spread
 * over the workers' connections. Inputs are checked against the signature before anything is
 * sent. A worker that dies is restarted; the calls it was serving fail with
 * WorkerUnavailableException and later calls succeed once it is back.
 */
public final class Model implements AutoCloseable {
    private static final SecureRandom RANDOM = new SecureRandom();

    private final String name;
    private final Signature signature;
    private final ModelOptions options;
    private final List<Worker> workers;
    private final Dispatcher dispatcher;
    private volatile boolean closed;

    private Model(String name, Signature signature, ModelOptions options, List<Worker> workers) {
        this.name = name;
        this.signature = signature;
        this.options = options;
        this.workers = workers;
        this.dispatcher = new Dispatcher(name, signature, workers, options);
    }

    // ---- making one ----

    /** Start a worker for the model file at path (written by pf.save) with default options. */
    public static Model load(Path path) {
        return load(path, ModelOptions.defaults());
    }

    /** Start options.workers() supervised workers for the model file at path. */
    public static Model load(Path path, ModelOptions options) {
        if (!Files.isRegularFile(path)) {
            throw new ModelLoadException("model file not found: " + path.toAbsolutePath());
        }
        String name = options.modelName != null ? options.modelName : nameFromFile(path);
        String token = newToken();
        List<Worker> workers = Collections.synchronizedList(new ArrayList<>());
        List<Thread> starters = new ArrayList<>();
        List<RuntimeException> errors = Collections.synchronizedList(new ArrayList<>());
        for (int i = 0; i < options.workers; i++) {
            Thread t = new Thread(() -> {
                try {
                    workers.add(Worker.start(name, path, token, options));
                } catch (RuntimeException e) {
                    errors.add(e);
                }
            }, "pyfront-start-" + i);
            starters.add(t);
            t.start();
        }
        for (Thread t : starters) {
            try {
                t.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                errors.add(new ModelLoadException("interrupted while starting workers"));
            }
        }
        if (!errors.isEmpty()) {
            closeAll(workers);
            throw onCallerThread(errors.get(0));
        }
        Signature sig;
        try {
            sig = workers.get(0).signature(name);
        } catch (RuntimeException e) {
            closeAll(workers);
            throw new ModelLoadException("the worker loaded " + path + " but its signature could "
                    + "not be read: " + e.getMessage(), null, e);
        }
        return new Model(name, sig, options, new ArrayList<>(workers));
    }

    /** Use a worker that is already running (started with python -m pyfront.jvm serve). */
    public static Model connect(String host, int port, String token, String name) {
        return connect(host, port, token, name, ModelOptions.defaults());
    }

    /**
     * Use a worker that is already running. Only options about calls apply (batching, timeout,
     * connections); the worker's process is not this JVM's to restart, but a dropped
     * connection is re-established.
     */
    public static Model connect(String host, int port, String token, String name,
                                ModelOptions options) {
        if (token == null || token.isEmpty()) {
            throw new AuthenticationException("a token is required to connect to a worker");
        }
        Worker w = Worker.attach(host, port, token, options);
        Signature sig;
        try {
            sig = w.signature(name);
        } catch (RemoteModelException e) {
            w.close();
            throw new ModelLoadException("the worker at " + host + ":" + port + " cannot serve '"
                    + name + "': " + e.pythonMessage(), e.pythonType(), e);
        } catch (RuntimeException e) {
            w.close();
            throw e;
        }
        return new Model(name, sig, options, List.of(w));
    }

    /**
     * A start-up thread's failure as a new exception thrown here, with the original as its
     * cause: an exception rethrown as is carries the short stack of the thread that made it,
     * and the JDK's source launcher (java File.java) fails trimming it ("0 > -3"), hiding
     * the real error.
     */
    private static ModelLoadException onCallerThread(RuntimeException e) {
        String pythonType = e instanceof ModelLoadException
                ? ((ModelLoadException) e).pythonType() : null;
        return new ModelLoadException(e.getMessage(), pythonType, e);
    }

    private static String nameFromFile(Path path) {
        String file = path.getFileName().toString();
        int dot = file.lastIndexOf('.');
        String stem = dot > 0 ? file.substring(0, dot) : file;
        return stem.isEmpty() || stem.contains("=") ? "model" : stem;
    }

    private static String newToken() {
        byte[] b = new byte[32];
        RANDOM.nextBytes(b);
        StringBuilder sb = new StringBuilder();
        for (byte x : b) {
            sb.append(String.format("%02x", x));
        }
        return sb.toString();
    }

    private static void closeAll(List<Worker> workers) {
        synchronized (workers) {
            for (Worker w : workers) {
                w.close();
            }
        }
    }

    // ---- calling ----

    /** The model's name on its worker. */
    public String name() {
        return name;
    }

    /** Input and output names, dtypes and shapes (-1 for the batch dimension). */
    public Signature signature() {
        return signature;
    }

    /**
     * Run a single-output model on inputs given in signature order.
     *
     * @throws ShapeMismatchException when the inputs do not fit the signature
     * @throws IllegalStateException when the model has several outputs (use the Map form)
     */
    public Tensor output(Tensor... inputs) {
        checkOpen();
        requireSingleOutput();
        return await(submit(ordered(inputs), true))[0];
    }

    /** Run the model on inputs by name; returns every output by name. */
    public Map<String, Tensor> output(Map<String, Tensor> inputs) {
        checkOpen();
        return named(await(submit(ordered(inputs), true)));
    }

    /** output(Tensor...) without blocking; the future fails with the same exceptions. */
    public CompletableFuture<Tensor> outputAsync(Tensor... inputs) {
        checkOpen();
        requireSingleOutput();
        return submit(ordered(inputs), false).thenApply(outs -> outs[0]);
    }

    /** output(Map) without blocking; the future fails with the same exceptions. */
    public CompletableFuture<Map<String, Tensor>> outputAsync(Map<String, Tensor> inputs) {
        checkOpen();
        return submit(ordered(inputs), false).thenApply(this::named);
    }

    /** Each worker's health report (JSON from its control channel), one per line. */
    public String health() {
        StringBuilder sb = new StringBuilder();
        for (Worker w : workers) {
            Worker.Endpoint ep = w.endpoint();
            String line;
            if (w.state() != Worker.State.READY || ep == null) {
                line = "{\"ok\": false, \"state\": \"" + w.state() + "\"}";
            } else {
                try {
                    line = ep.control.health();
                } catch (RuntimeException e) {
                    line = "{\"ok\": false, \"error\": \"" + e.getMessage().replace("\"", "'")
                            + "\"}";
                }
            }
            sb.append(line).append('\n');
        }
        return sb.toString();
    }

    /** Process ids of the current workers (-1 for one that is restarting). */
    public long[] workerPids() {
        long[] pids = new long[workers.size()];
        for (int i = 0; i < pids.length; i++) {
            pids[i] = workers.get(i).pid();
        }
        return pids;
    }

    /** Stop the workers this model started (their processes are gone when this returns). */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        dispatcher.close();
        for (Worker w : workers) {
            w.close();
        }
    }

    // ---- internals ----

    private void requireSingleOutput() {
        if (signature.outputs().size() != 1) {
            throw new IllegalStateException("model '" + name + "' has "
                    + signature.outputs().size() + " outputs " + signature.outputs()
                    + "; call output(Map) to get them all by name");
        }
    }

    private void checkOpen() {
        if (closed) {
            throw new WorkerUnavailableException("model '" + name + "' is closed");
        }
    }

    private CompletableFuture<Tensor[]> submit(Tensor[] inputs, boolean sync) {
        long rows = signature.isBatchable() ? inputs[0].dim(0) : 1;
        Dispatcher.Request r = new Dispatcher.Request(inputs, rows,
                System.nanoTime() + options.timeout.toNanos());
        if (sync) {
            dispatcher.submitSync(r);
        } else {
            dispatcher.submitAsync(r);
        }
        return r.future;
    }

    private Tensor[] await(CompletableFuture<Tensor[]> future) {
        try {
            return future.get(options.timeout.toNanos(), TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
            InferenceTimeoutException timeout = new InferenceTimeoutException("model '" + name
                    + "': no result within " + options.timeout, options.timeout);
            if (future.completeExceptionally(timeout)) {
                throw timeout;
            }
            return await(future); // completed just now
        } catch (ExecutionException | CompletionException e) {
            throw rethrown(e.getCause());
        } catch (CancellationException e) {
            throw new PyfrontException("the call was cancelled", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            future.cancel(false);
            throw new PyfrontException("interrupted while waiting for model '" + name + "'", e);
        }
    }

    /** The failure as thrown in the caller's thread (each caller owns its exception object). */
    private static RuntimeException rethrown(Throwable cause) {
        if (cause instanceof RuntimeException) {
            RuntimeException e = (RuntimeException) cause;
            e.fillInStackTrace();
            return e;
        }
        return new PyfrontException(String.valueOf(cause), cause);
    }

    private Map<String, Tensor> named(Tensor[] outs) {
        Map<String, Tensor> m = new LinkedHashMap<>();
        for (int i = 0; i < outs.length; i++) {
            m.put(signature.outputs().get(i).name(), outs[i]);
        }
        return Collections.unmodifiableMap(m);
    }

    private Tensor[] ordered(Tensor... inputs) {
        List<TensorSpec> specs = signature.inputs();
        if (inputs == null || inputs.length != specs.size()) {
            throw new ShapeMismatchException("model '" + name + "' takes " + specs.size()
                    + " input(s) " + specs + ", got " + (inputs == null ? 0 : inputs.length));
        }
        for (int i = 0; i < inputs.length; i++) {
            check(specs.get(i), inputs[i]);
        }
        checkBatch(inputs);
        return inputs.clone();
    }

    private Tensor[] ordered(Map<String, Tensor> inputs) {
        List<TensorSpec> specs = signature.inputs();
        Set<String> unknown = new HashSet<>(inputs.keySet());
        Tensor[] out = new Tensor[specs.size()];
        for (int i = 0; i < out.length; i++) {
            TensorSpec spec = specs.get(i);
            Tensor t = inputs.get(spec.name());
            if (t == null) {
                throw new ShapeMismatchException("model '" + name + "': missing input '"
                        + spec.name() + "' (" + spec + "); given " + inputs.keySet());
            }
            unknown.remove(spec.name());
            check(spec, t);
            out[i] = t;
        }
        if (!unknown.isEmpty()) {
            throw new ShapeMismatchException("model '" + name + "' has no input(s) " + unknown
                    + "; its inputs are " + specs);
        }
        checkBatch(out);
        return out;
    }

    private void check(TensorSpec spec, Tensor t) {
        if (t == null) {
            throw new ShapeMismatchException("model '" + name + "': input '" + spec.name()
                    + "' is null");
        }
        if (t.dtype() != spec.dtype() || !spec.fitsShape(t.shapeNoCopy())) {
            throw new ShapeMismatchException("model '" + name + "': input '" + spec.name()
                    + "' expects " + spec.dtype() + " " + spec.shapeString() + ", got "
                    + t.dtype() + " " + TensorSpec.formatShape(t.shapeNoCopy()));
        }
    }

    private void checkBatch(Tensor[] inputs) {
        if (!signature.isBatchable()) {
            return;
        }
        long rows = inputs[0].dim(0);
        for (int i = 1; i < inputs.length; i++) {
            if (inputs[i].dim(0) != rows) {
                throw new ShapeMismatchException("model '" + name + "': inputs disagree on the "
                        + "batch size: '" + signature.inputs().get(0).name() + "' has " + rows
                        + " rows, '" + signature.inputs().get(i).name() + "' has "
                        + inputs[i].dim(0));
            }
        }
    }

    @Override
    public String toString() {
        return "Model(" + name + ", " + signature + ", " + workers.size() + " worker(s))";
    }
}
