package org.pyfront;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * How a Model runs its workers and batches its calls. Immutable; make one with
 * {@code ModelOptions.builder()...build()}, or use {@link #defaults()}.
 *
 * <p>Batching follows Deeplearning4j's ParallelInference BATCHED mode: concurrent calls are
 * stacked along the batch dimension up to {@code maxBatchSize} rows, waiting at most
 * {@code maxBatchDelay} for more to arrive (zero: take whatever is queued, never wait).
 */
public final class ModelOptions {
    final String pythonExecutable;
    final int workers;
    final int connectionsPerWorker;
    final int maxBatchSize;
    final Duration maxBatchDelay;
    final Duration timeout;
    final Duration startupTimeout;
    final Duration shutdownTimeout;
    final int maxRestarts;
    final Duration restartWindow;
    final Integer workerThreads;
    final Map<String, String> environment;
    final List<String> workerArguments;
    final String modelName;
    final Consumer<String> workerLog;
    final long maxResponseBytes;
    final Duration spin;

    private ModelOptions(Builder b) {
        this.pythonExecutable = b.pythonExecutable;
        this.workers = b.workers;
        this.connectionsPerWorker = b.connectionsPerWorker;
        this.maxBatchSize = b.maxBatchSize;
        this.maxBatchDelay = b.maxBatchDelay;
        this.timeout = b.timeout;
        this.startupTimeout = b.startupTimeout;
        this.shutdownTimeout = b.shutdownTimeout;
        this.maxRestarts = b.maxRestarts;
        this.restartWindow = b.restartWindow;
        this.workerThreads = b.workerThreads;
        this.environment = Collections.unmodifiableMap(new LinkedHashMap<>(b.environment));
        this.workerArguments = Collections.unmodifiableList(new ArrayList<>(b.workerArguments));
        this.modelName = b.modelName;
        this.workerLog = b.workerLog;
        this.maxResponseBytes = b.maxResponseBytes;
        this.spin = b.spin;
    }

    /** The longest spin: past it a busy core buys nothing a blocking read would not. */
    static final Duration MAX_SPIN = Duration.ofSeconds(1);

    /** The defaults: one worker, batches of up to 32 rows without waiting, 30 s timeout. */
    public static ModelOptions defaults() {
        return builder().build();
    }

    public static Builder builder() {
        return new Builder();
    }

    /** A builder starting from these options. */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.pythonExecutable = pythonExecutable;
        b.workers = workers;
        b.connectionsPerWorker = connectionsPerWorker;
        b.maxBatchSize = maxBatchSize;
        b.maxBatchDelay = maxBatchDelay;
        b.timeout = timeout;
        b.startupTimeout = startupTimeout;
        b.shutdownTimeout = shutdownTimeout;
        b.maxRestarts = maxRestarts;
        b.restartWindow = restartWindow;
        b.workerThreads = workerThreads;
        b.environment.putAll(environment);
        b.workerArguments.addAll(workerArguments);
        b.modelName = modelName;
        b.workerLog = workerLog;
        b.maxResponseBytes = maxResponseBytes;
        b.spin = spin;
        return b;
    }

    public String pythonExecutable() {
        return pythonExecutable;
    }

    public int workers() {
        return workers;
    }

    public int maxBatchSize() {
        return maxBatchSize;
    }

    public Duration maxBatchDelay() {
        return maxBatchDelay;
    }

    public Duration timeout() {
        return timeout;
    }

    public Duration spin() {
        return spin;
    }

    @Override
    public String toString() {
        return "ModelOptions(python=" + pythonExecutable + ", workers=" + workers
                + ", connectionsPerWorker=" + connectionsPerWorker + ", maxBatchSize="
                + maxBatchSize + ", maxBatchDelay=" + maxBatchDelay + ", timeout=" + timeout
                + ", spin=" + spin + ")";
    }

    /** Builder of ModelOptions; every setter checks its argument. */
    public static final class Builder {
        private String pythonExecutable = defaultPython();
        private int workers = 1;
        private int connectionsPerWorker = 1;
        private int maxBatchSize = 32;
        private Duration maxBatchDelay = Duration.ZERO;
        private Duration timeout = Duration.ofSeconds(30);
        private Duration startupTimeout = Duration.ofSeconds(120);
        private Duration shutdownTimeout = Duration.ofSeconds(5);
        private int maxRestarts = 5;
        private Duration restartWindow = Duration.ofMinutes(1);
        private Integer workerThreads;
        private final Map<String, String> environment = new LinkedHashMap<>();
        private final List<String> workerArguments = new ArrayList<>();
        private String modelName;
        private Consumer<String> workerLog = line -> System.err.println(line);
        private long maxResponseBytes = 1L << 30;
        private Duration spin = Duration.ofMillis(1);

        private Builder() {
        }

        private static String defaultPython() {
            String fromEnv = System.getenv("PYFRONT_PYTHON");
            return fromEnv != null && !fromEnv.isEmpty() ? fromEnv : "python3";
        }

        /** The Python that runs workers (default: $PYFRONT_PYTHON, else python3 on the PATH). */
        public Builder pythonExecutable(String executable) {
            if (executable == null || executable.isEmpty()) {
                throw new IllegalArgumentException("pythonExecutable must be non-empty");
            }
            this.pythonExecutable = executable;
            return this;
        }

        /** Worker processes to start and spread calls over (default 1). */
        public Builder workers(int n) {
            this.workers = positive(n, "workers");
            return this;
        }

        /**
         * Concurrent connections (calls in flight) per worker (default 1: calls that arrive while
         * one is in flight are stacked into the next, which keeps batches large).
         */
        public Builder connectionsPerWorker(int n) {
            this.connectionsPerWorker = positive(n, "connectionsPerWorker");
            return this;
        }

        /** Most rows stacked into one call to the worker (default 32; 1 turns batching off). */
        public Builder maxBatchSize(int rows) {
            this.maxBatchSize = positive(rows, "maxBatchSize");
            return this;
        }

        /** Longest a batch waits for more calls once it has one (default 0: never wait). */
        public Builder maxBatchDelay(Duration delay) {
            this.maxBatchDelay = nonNegative(delay, "maxBatchDelay");
            return this;
        }

        /** Time limit of one call, queueing included (default 30 s). */
        public Builder timeout(Duration timeout) {
            this.timeout = positive(timeout, "timeout");
            return this;
        }

        /** Time limit for a worker to start and load the model (default 120 s). */
        public Builder startupTimeout(Duration timeout) {
            this.startupTimeout = positive(timeout, "startupTimeout");
            return this;
        }

        /** How long close() lets a worker exit by itself before it is killed (default 5 s). */
        public Builder shutdownTimeout(Duration timeout) {
            this.shutdownTimeout = nonNegative(timeout, "shutdownTimeout");
            return this;
        }

        /** Restarts allowed per worker within window before it is given up (default 5 a minute). */
        public Builder restartPolicy(int maxRestarts, Duration window) {
            if (maxRestarts < 0) {
                throw new IllegalArgumentException("maxRestarts must be >= 0, got " + maxRestarts);
            }
            this.maxRestarts = maxRestarts;
            this.restartWindow = positive(window, "restart window");
            return this;
        }

        /**
         * Native threads each worker uses for inference (default: the processors this JVM sees,
         * less one left for the JVM, shared among the workers; at least 1).
         */
        public Builder workerThreads(int threads) {
            this.workerThreads = positive(threads, "workerThreads");
            return this;
        }

        /** An environment variable for the worker processes (PYTHONPATH, for instance). */
        public Builder environment(String name, String value) {
            if (name == null || value == null || name.equals("PYFRONT_JVM_TOKEN")) {
                throw new IllegalArgumentException("bad worker environment entry " + name);
            }
            this.environment.put(name, value);
            return this;
        }

        /** Extra arguments for {@code python -m pyfront.jvm serve} (e.g. --max-frame-mb 1024). */
        public Builder workerArguments(List<String> arguments) {
            this.workerArguments.clear();
            this.workerArguments.addAll(arguments);
            return this;
        }

        /** The name the model is served under (default: the file name without extension). */
        public Builder modelName(String name) {
            if (name == null || name.isEmpty() || name.contains("=")) {
                throw new IllegalArgumentException("model name must be non-empty, without '='");
            }
            this.modelName = name;
            return this;
        }

        /** Where the workers' log lines go (default: standard error, prefixed with the pid). */
        public Builder workerLog(Consumer<String> sink) {
            if (sink == null) {
                throw new IllegalArgumentException("workerLog sink must not be null");
            }
            this.workerLog = sink;
            return this;
        }

        /** Largest reply accepted from a worker (default 1 GiB). */
        public Builder maxResponseBytes(long bytes) {
            if (bytes < 1024 || bytes > Integer.MAX_VALUE - 64) {
                throw new IllegalArgumentException("maxResponseBytes out of range: " + bytes);
            }
            this.maxResponseBytes = bytes;
            return this;
        }

        /**
         * How long a call spins waiting for the worker's reply before it blocks, and the worker
         * for the connection's next request (default 1 ms; zero turns spinning off). On a VM a
         * blocked thread's wake-up costs the hypervisor's, 20-50 us per direction where
         * measured, more than the rest of a small model's round trip; a spinning one sees the
         * bytes at once. The spin yields the CPU between checks, so it gives way where threads
         * outnumber cores.
         */
        public Builder spin(Duration spin) {
            nonNegative(spin, "spin");
            if (spin.compareTo(MAX_SPIN) > 0) {
                throw new IllegalArgumentException("spin must be at most " + MAX_SPIN
                        + " (a wait before blocking, not a timeout), got " + spin);
            }
            this.spin = spin;
            return this;
        }

        public ModelOptions build() {
            return new ModelOptions(this);
        }

        private static int positive(int n, String what) {
            if (n < 1) {
                throw new IllegalArgumentException(what + " must be >= 1, got " + n);
            }
            return n;
        }

        private static Duration positive(Duration d, String what) {
            if (d == null || d.isZero() || d.isNegative()) {
                throw new IllegalArgumentException(what + " must be a positive duration, got " + d);
            }
            return d;
        }

        private static Duration nonNegative(Duration d, String what) {
            if (d == null || d.isNegative()) {
                throw new IllegalArgumentException(what + " must not be negative, got " + d);
            }
            return d;
        }
    }
}
