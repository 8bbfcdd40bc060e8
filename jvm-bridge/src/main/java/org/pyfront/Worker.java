package org.pyfront;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * One worker endpoint and its supervision. An owned worker is a Python process this JVM
 * started: when it dies it is restarted (within the restart policy). A remote worker was
 * started by someone else (Model.connect): when it goes away, it is reconnected to.
 */
final class Worker implements AutoCloseable {
    static final String TOKEN_ENV = "PYFRONT_JVM_TOKEN";
    private static final String READY_MARK = "PYFRONT_WORKER_READY ";
    private static final String FAILED_MARK = "PYFRONT_WORKER_FAILED ";
    private static final int LOG_TAIL_LINES = 40;

    enum State { STARTING, READY, DOWN, FAILED, CLOSED }

    /** One incarnation of the worker: where to reach it. */
    static final class Endpoint {
        final int generation;
        final long pid;
        final Path dataSocket;
        final ControlClient control;
        final Process process; // null for a remote worker

        Endpoint(int generation, long pid, Path dataSocket, ControlClient control,
                 Process process) {
            this.generation = generation;
            this.pid = pid;
            this.dataSocket = dataSocket;
            this.control = control;
            this.process = process;
        }
    }

    private final String modelName;
    private final Path modelPath; // null for a remote worker
    private final String host;
    private final int port;
    final String token;
    private final ModelOptions options;

    private final Object lock = new Object();
    private State state = State.STARTING;
    private Endpoint endpoint;
    private volatile Endpoint current; // the ready endpoint, or null; read without the lock
    private String failure;
    private final Deque<Long> restarts = new ArrayDeque<>();

    private Worker(String modelName, Path modelPath, String host, int port, String token,
                   ModelOptions options) {
        this.modelName = modelName;
        this.modelPath = modelPath;
        this.host = host;
        this.port = port;
        this.token = token;
        this.options = options;
    }

    /** Start a supervised worker process serving modelPath; returns once it is ready. */
    static Worker start(String modelName, Path modelPath, String token, ModelOptions options) {
        Worker w = new Worker(modelName, modelPath, null, 0, token, options);
        Endpoint ep = w.launch(0);
        w.becomeReady(ep);
        return w;
    }

    /** Attach to a worker that is already running. */
    static Worker attach(String host, int port, String token, ModelOptions options) {
        Worker w = new Worker(null, null, host, port, token, options);
        w.becomeReady(w.connectRemote(0));
        return w;
    }

    private int controlTimeoutMillis() {
        return (int) Math.min(Integer.MAX_VALUE, options.startupTimeout.toMillis());
    }

    // ---- owned workers ----

    private Endpoint launch(int gen) {
        List<String> cmd = new ArrayList<>(List.of(options.pythonExecutable, "-m", "pyfront.jvm",
                "serve", "--model", modelName + "=" + modelPath.toAbsolutePath()));
        int threads = options.workerThreads != null ? options.workerThreads
                : Math.max(1, (Runtime.getRuntime().availableProcessors() - 1) / options.workers);
        cmd.add("--threads");
        cmd.add(Integer.toString(threads));
        cmd.add("--spin-us");
        cmd.add(Long.toString(options.spin.toNanos() / 1000));
        // the token goes through the stdin pipe: the command line (ps) and the environment
        // (/proc/PID/environ) are readable by other processes of the same user
        cmd.add("--token-stdin");
        cmd.addAll(options.workerArguments);
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().putAll(options.environment);
        pb.environment().remove(TOKEN_ENV);
        pb.redirectInput(ProcessBuilder.Redirect.PIPE); // its end closing tells the worker to exit
        Process process;
        try {
            process = pb.start();
        } catch (IOException e) {
            throw new ModelLoadException("cannot start the Python worker '"
                    + options.pythonExecutable + "' (set ModelOptions.pythonExecutable or "
                    + "$PYFRONT_PYTHON): " + e.getMessage(), null, e);
        }
        Reaper.register(process);
        try {
            process.getOutputStream().write((token + "\n").getBytes(StandardCharsets.UTF_8));
            process.getOutputStream().flush();
        } catch (IOException ignored) {
            // it exited already: the wait below reports how, with its output
        }
        LogTail tail = new LogTail(LOG_TAIL_LINES);
        CompletableFuture<String> announced = new CompletableFuture<>();
        // the worker's own log lines carry this prefix already (pyfront.jvm.worker.LOG_PREFIX)
        String prefix = "[pyfront worker " + process.pid() + "] ";
        java.util.function.Consumer<String> relay = line -> {
            tail.add(line);
            options.workerLog.accept(line.startsWith(prefix) ? line : prefix + line);
        };
        pump(process.getInputStream(), line -> {
            if (line.startsWith(READY_MARK) || line.startsWith(FAILED_MARK)) {
                announced.complete(line);
            } else {
                relay.accept(line);
            }
        }, "pyfront-worker-stdout-" + process.pid());
        pump(process.getErrorStream(), relay, "pyfront-worker-stderr-" + process.pid());
        process.onExit().thenRun(() -> announced.complete(null));

        String line;
        try {
            line = announced.get(options.startupTimeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            kill(process);
            throw new ModelLoadException("the worker did not become ready within "
                    + options.startupTimeout + "; its last output:\n" + tail);
        } catch (InterruptedException e) {
            kill(process);
            Thread.currentThread().interrupt();
            throw new ModelLoadException("interrupted while the worker was starting");
        } catch (ExecutionException e) {
            kill(process);
            throw new ModelLoadException("the worker failed to start: " + e.getCause(), null, e);
        }
        if (line == null) {
            waitQuietly(process, 2000);
            String status = process.isAlive() ? "" : " with status " + process.exitValue();
            throw new ModelLoadException("the worker (" + String.join(" ", cmd) + ") exited"
                    + status + " before it was ready; its last output:\n" + tail);
        }
        if (line.startsWith(FAILED_MARK)) {
            Map<String, Object> info = Json.object(Json.parse(line.substring(FAILED_MARK.length())),
                    "worker failure");
            waitQuietly(process, 2000);
            kill(process);
            throw new ModelLoadException("cannot load " + modelPath + ": " + info.get("type")
                    + ": " + info.get("message"), String.valueOf(info.get("type")), null);
        }
        Path announcedSocket = null;
        try {
            Map<String, Object> ready = Json.object(Json.parse(line.substring(READY_MARK.length())),
                    "worker announcement");
            announcedSocket = Paths.get((String) ready.get("data_socket"));
            int controlPort = ((Number) ready.get("control_port")).intValue();
            ControlClient control = ControlClient.connect("127.0.0.1", controlPort, token,
                    controlTimeoutMillis());
            Map<String, Object> hello = control.hello();
            return new Endpoint(gen, process.pid(), Paths.get((String) hello.get("data_socket")),
                    control, process);
        } catch (RuntimeException e) {
            kill(process);
            if (announcedSocket != null) {
                removeSocketDir(announcedSocket);
            }
            throw new ModelLoadException("the worker started but its control channel failed: "
                    + e.getMessage(), null, e);
        }
    }

    private void onExit(Endpoint ep) {
        synchronized (lock) {
            if (state == State.CLOSED || endpoint != ep) {
                return;
            }
            state = State.DOWN;
            current = null;
            lock.notifyAll();
        }
        ep.control.close();
        removeSocketDir(ep);
        options.workerLog.accept("[pyfront] worker " + ep.pid + " exited with status "
                + ep.process.exitValue() + "; restarting it");
        Thread t = new Thread(() -> restartLoop(ep.generation + 1), "pyfront-restart-" + ep.pid);
        t.setDaemon(true);
        t.start();
    }

    private void restartLoop(int gen) {
        long backoffMillis = 100;
        while (true) {
            synchronized (lock) {
                if (state == State.CLOSED) {
                    return;
                }
                long now = System.nanoTime();
                while (!restarts.isEmpty()
                        && now - restarts.peekFirst() > options.restartWindow.toNanos()) {
                    restarts.removeFirst();
                }
                if (restarts.size() >= options.maxRestarts) {
                    fail("the worker for " + modelPath + " was restarted " + restarts.size()
                            + " times within " + options.restartWindow + " and is given up");
                    return;
                }
                restarts.addLast(now);
            }
            try {
                Endpoint ep = launch(gen);
                synchronized (lock) {
                    if (state == State.CLOSED) {
                        shutdownEndpoint(ep);
                        return;
                    }
                }
                becomeReady(ep);
                return;
            } catch (ModelLoadException e) {
                options.workerLog.accept("[pyfront] restarting the worker failed: "
                        + e.getMessage());
                sleepQuietly(backoffMillis);
                backoffMillis = Math.min(2000, backoffMillis * 2);
            }
        }
    }

    // ---- remote workers ----

    private Endpoint connectRemote(int gen) {
        ControlClient control = ControlClient.connect(host, port, token, controlTimeoutMillis());
        try {
            Map<String, Object> hello = control.hello();
            return new Endpoint(gen, ((Number) hello.get("pid")).longValue(),
                    Paths.get((String) hello.get("data_socket")), control, null);
        } catch (RuntimeException e) {
            control.close();
            throw e;
        }
    }

    private void reconnectLoop(int gen) {
        long backoffMillis = 50;
        while (true) {
            synchronized (lock) {
                if (state != State.DOWN) {
                    return;
                }
            }
            try {
                becomeReady(connectRemote(gen));
                return;
            } catch (AuthenticationException e) {
                fail(e.getMessage());
                return;
            } catch (RuntimeException e) {
                sleepQuietly(backoffMillis);
                backoffMillis = Math.min(2000, backoffMillis * 2);
            }
        }
    }

    // ---- state ----

    private void becomeReady(Endpoint ep) {
        synchronized (lock) {
            if (state == State.CLOSED) {
                shutdownEndpoint(ep);
                return;
            }
            endpoint = ep;
            current = ep;
            state = State.READY;
            lock.notifyAll();
        }
        if (ep.process != null) {
            ep.process.onExit().thenRun(() -> onExit(ep));
        }
    }

    private void fail(String reason) {
        synchronized (lock) {
            if (state == State.CLOSED) {
                return;
            }
            state = State.FAILED;
            current = null;
            failure = reason;
            lock.notifyAll();
        }
        options.workerLog.accept("[pyfront] " + reason);
    }

    /**
     * The endpoint once the worker is ready, waiting at most waitMillis; null when it is not
     * ready by then, or has failed or been closed (see state()).
     */
    Endpoint awaitReady(long waitMillis) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(waitMillis);
        synchronized (lock) {
            while (state == State.STARTING || state == State.DOWN) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return null;
                }
                TimeUnit.NANOSECONDS.timedWait(lock, left);
            }
            return state == State.READY ? endpoint : null;
        }
    }

    /** A lane lost its connection to ep (or could not open one). */
    void connectionLost(Endpoint ep) {
        if (ep.process != null) {
            return; // the process exit handler restarts it; a live process is just reconnected
        }
        synchronized (lock) {
            if (state != State.READY || endpoint != ep) {
                return;
            }
            state = State.DOWN;
            current = null;
        }
        ep.control.close();
        Thread t = new Thread(() -> reconnectLoop(ep.generation + 1), "pyfront-reconnect");
        t.setDaemon(true);
        t.start();
    }

    /** The endpoint while the worker is ready, else null (lock-free, for the call path). */
    Endpoint current() {
        return current;
    }

    State state() {
        synchronized (lock) {
            return state;
        }
    }

    String failure() {
        synchronized (lock) {
            return failure;
        }
    }

    Endpoint endpoint() {
        synchronized (lock) {
            return endpoint;
        }
    }

    Signature signature(String model) {
        Endpoint ep = endpoint();
        if (ep == null) {
            throw new WorkerUnavailableException("the worker is not ready");
        }
        return ep.control.signature(model);
    }

    long pid() {
        Endpoint ep = endpoint();
        return ep == null ? -1 : ep.pid;
    }

    @Override
    public void close() {
        Endpoint ep;
        synchronized (lock) {
            if (state == State.CLOSED) {
                return;
            }
            state = State.CLOSED;
            current = null;
            ep = endpoint;
            lock.notifyAll();
        }
        if (ep != null) {
            shutdownEndpoint(ep);
        }
    }

    private void shutdownEndpoint(Endpoint ep) {
        ep.control.close();
        if (ep.process == null) {
            return;
        }
        Process p = ep.process;
        try {
            p.getOutputStream().close(); // the worker exits when its stdin closes
        } catch (IOException ignored) {
            // already closed: the process is exiting
        }
        waitQuietly(p, options.shutdownTimeout.toMillis());
        kill(p);
        removeSocketDir(ep);
    }

    private static void removeSocketDir(Endpoint ep) {
        removeSocketDir(ep.dataSocket);
    }

    private static void removeSocketDir(Path dataSocket) {
        // the worker removes it on a clean exit; after a kill -9 only we can
        Path dir = dataSocket.getParent();
        if (dir == null || !dir.getFileName().toString().startsWith("pyfront-jvm-")) {
            return;
        }
        try {
            Files.deleteIfExists(dataSocket);
            Files.deleteIfExists(dir);
        } catch (IOException ignored) {
            // left for the temp cleaner; it holds no data
        }
    }

    static void kill(Process p) {
        if (!p.isAlive()) {
            return;
        }
        p.destroy();
        waitQuietly(p, 1000);
        if (p.isAlive()) {
            p.destroyForcibly();
            waitQuietly(p, 5000);
        }
    }

    private static void waitQuietly(Process p, long millis) {
        try {
            p.waitFor(millis, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static void sleepQuietly(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static void pump(InputStream stream, java.util.function.Consumer<String> sink,
                             String name) {
        Thread t = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(
                    new InputStreamReader(stream, StandardCharsets.UTF_8))) {
                String line;
                while ((line = r.readLine()) != null) {
                    sink.accept(line);
                }
            } catch (IOException ignored) {
                // the process is gone; nothing more to read
            }
        }, name);
        t.setDaemon(true);
        t.start();
    }

    /** The last lines a worker wrote, for error messages. */
    private static final class LogTail {
        private final int limit;
        private final Deque<String> lines = new ArrayDeque<>();

        LogTail(int limit) {
            this.limit = limit;
        }

        synchronized void add(String line) {
            if (lines.size() == limit) {
                lines.removeFirst();
            }
            lines.addLast(line);
        }

        @Override
        public synchronized String toString() {
            return lines.isEmpty() ? "(nothing)" : String.join("\n", lines);
        }
    }

    /** Kills the workers this JVM started if it exits without closing its models. */
    static final class Reaper {
        private static final Set<Process> LIVE = ConcurrentHashMap.newKeySet();

        static {
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                for (Process p : LIVE) {
                    p.destroyForcibly();
                }
            }, "pyfront-worker-reaper"));
        }

        private Reaper() {
        }

        static void register(Process p) {
            LIVE.add(p);
            p.onExit().thenRun(() -> LIVE.remove(p));
        }
    }
}
