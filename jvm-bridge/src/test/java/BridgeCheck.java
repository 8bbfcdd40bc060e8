import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.pyfront.AuthenticationException;
import org.pyfront.DType;
import org.pyfront.InferenceTimeoutException;
import org.pyfront.Model;
import org.pyfront.ModelLoadException;
import org.pyfront.ModelOptions;
import org.pyfront.RemoteModelException;
import org.pyfront.ShapeMismatchException;
import org.pyfront.Tensor;
import org.pyfront.WorkerUnavailableException;

/**
 * Scenarios the pytest suite (tests/jvm/test_bridge.py) runs against real workers. Each check
 * prints "CHECK name ok" or "CHECK name FAIL detail"; facts for pytest print as "FACT key value".
 */
public final class BridgeCheck {
    private static int failures;

    public static void main(String[] args) throws Exception {
        switch (args[0]) {
            case "exact": exact(Path.of(args[1]), Path.of(args[2]), Integer.parseInt(args[3]),
                    Integer.parseInt(args[4]), Path.of(args[5])); break;
            case "errors": errors(Path.of(args[1]), Path.of(args[2]), Path.of(args[3])); break;
            case "restart": restart(Path.of(args[1])); break;
            case "concurrency": concurrency(Path.of(args[1]), Path.of(args[2]),
                    Integer.parseInt(args[3]), Integer.parseInt(args[4]), Path.of(args[5]),
                    Integer.parseInt(args[6]), Integer.parseInt(args[7])); break;
            case "hold": hold(Path.of(args[1])); break;
            case "close": closeCheck(Path.of(args[1])); break;
            case "connect": connect(Integer.parseInt(args[1]), args[2], args[3],
                    Path.of(args[4]), Integer.parseInt(args[5]), Path.of(args[6])); break;
            default: throw new IllegalArgumentException("unknown scenario " + args[0]);
        }
        System.out.println("DONE failures=" + failures);
        System.exit(failures == 0 ? 0 : 1);
    }

    // ---- helpers ----

    static void check(String name, boolean ok, String detail) {
        if (ok) {
            System.out.println("CHECK " + name + " ok");
        } else {
            failures++;
            System.out.println("CHECK " + name + " FAIL " + detail);
        }
        System.out.flush();
    }

    static void fact(String key, Object value) {
        System.out.println("FACT " + key + " " + value);
        System.out.flush();
    }

    interface Call {
        void run() throws Exception;
    }

    /** Run call; check it throws exactly `expected` (or a subclass); return what it threw. */
    static Throwable expect(String name, Class<? extends Throwable> expected, Call call) {
        try {
            call.run();
            check(name, false, "no exception, expected " + expected.getSimpleName());
            return null;
        } catch (Throwable t) {
            Throwable cause = t instanceof ExecutionException ? t.getCause() : t;
            check(name, expected.isInstance(cause), "got " + cause);
            return cause;
        }
    }

    static float[] readFloats(Path path) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(path)).order(ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[b.remaining() / 4];
        b.asFloatBuffer().get(out);
        return out;
    }

    static void writeFloats(Path path, float[] data) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(data.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(data);
        Files.write(path, b.array());
    }

    static Tensor row(float[] all, int i, int features) {
        return Tensor.of(Arrays.copyOfRange(all, i * features, (i + 1) * features), 1, features);
    }

    static long requestsServed(Model m) {
        long total = 0;
        for (String line : m.health().split("\n")) {
            int at = line.indexOf("\"requests\": ");
            if (at >= 0) {
                int end = line.indexOf(',', at);
                total += Long.parseLong(line.substring(at + 12, end).trim());
            }
        }
        return total;
    }

    static void signal(String sig, long pid) throws Exception {
        Process p = new ProcessBuilder("kill", "-" + sig, Long.toString(pid)).inheritIO().start();
        check("kill -" + sig, p.waitFor() == 0, "kill exited " + p.exitValue());
        if (sig.equals("STOP")) {
            // kill returns once the signal is queued; the threads stop only when the kernel
            // next runs them, which on a loaded machine can be milliseconds later
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (!allThreadsStopped(pid) && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            check("stopped " + pid, allThreadsStopped(pid), "threads still running");
        }
    }

    static boolean allThreadsStopped(long pid) throws IOException {
        try (var tasks = Files.list(Path.of("/proc", Long.toString(pid), "task"))) {
            return tasks.allMatch(t -> {
                try {
                    String stat = Files.readString(t.resolve("stat"));
                    return stat.substring(stat.lastIndexOf(')') + 2).startsWith("T");
                } catch (IOException e) {
                    return true; // the thread is gone
                }
            });
        }
    }

    static boolean alive(long pid) {
        return ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false);
    }

    // ---- scenarios ----

    /** Row by row, then the whole batch, written out for pytest to compare bit for bit. */
    static void exact(Path model, Path inputs, int rows, int features, Path out) throws Exception {
        float[] x = readFloats(inputs);
        try (Model m = Model.load(model)) {
            check("signature input", m.signature().inputs().get(0).shape()[1] == features,
                    m.signature().toString());
            List<Float> result = new ArrayList<>();
            Tensor[] single = new Tensor[rows];
            for (int i = 0; i < rows; i++) {
                single[i] = m.output(row(x, i, features));
                check("row shape " + i, single[i].shape()[0] == 1,
                        Arrays.toString(single[i].shape()));
                for (float v : single[i].toFloatArray()) {
                    result.add(v);
                }
            }
            Tensor batch = m.output(Tensor.of(x, rows, features));
            check("batch shape", batch.shape()[0] == rows, Arrays.toString(batch.shape()));
            for (float v : batch.toFloatArray()) {
                result.add(v);
            }
            // the Map form and the async forms give the same tensors
            Map<String, Tensor> byName = m.output(Map.of(m.signature().inputs().get(0).name(),
                    row(x, 0, features)));
            check("map form", byName.get(m.signature().outputs().get(0).name()).equals(single[0]),
                    byName.toString());
            check("async form", m.outputAsync(row(x, 1, features)).get(10, TimeUnit.SECONDS)
                    .equals(single[1]), "async differs");
            // spinning for replies and requests is a speed choice, never a different answer
            try (Model blocking = Model.load(model,
                    ModelOptions.builder().spin(Duration.ZERO).build())) {
                check("spin off: same output", blocking.output(row(x, 2, features))
                        .equals(single[2]), "differs with spin(0)");
            }
            float[] flat = new float[result.size()];
            for (int i = 0; i < flat.length; i++) {
                flat[i] = result.get(i);
            }
            writeFloats(out, flat);
        }
    }

    /** Every exception type where it belongs. */
    static void errors(Path model, Path lookup, Path corrupt) throws Exception {
        ModelOptions quick = ModelOptions.builder().timeout(Duration.ofMillis(700)).build();
        try (Model m = Model.load(model, quick)) {
            long features = m.signature().inputs().get(0).shape()[1];
            Tensor good = Tensor.of(new float[(int) features], 1, features);
            m.output(good);
            long before = requestsServed(m);
            String input = m.signature().inputs().get(0).name();
            expect("shape: wrong width", ShapeMismatchException.class,
                    () -> m.output(Tensor.of(new float[(int) features + 1], 1, features + 1)));
            expect("shape: wrong rank", ShapeMismatchException.class,
                    () -> m.output(Tensor.of(new float[(int) features], features)));
            expect("shape: wrong dtype", ShapeMismatchException.class,
                    () -> m.output(Tensor.of(new int[(int) features], 1, features)));
            expect("shape: two inputs for one", ShapeMismatchException.class,
                    () -> m.output(good, good));
            expect("shape: unknown name", ShapeMismatchException.class,
                    () -> m.output(Map.of(input, good, "extra", good)));
            expect("shape: missing name", ShapeMismatchException.class,
                    () -> m.output(Map.of("not_" + input, good)));
            expect("shape: async", ShapeMismatchException.class,
                    () -> m.outputAsync(Tensor.of(new float[3], 1, 3)));
            check("shape errors never reach the worker", requestsServed(m) == before,
                    "served " + before + " -> " + requestsServed(m));
            expect("options: negative spin refused", IllegalArgumentException.class,
                    () -> ModelOptions.builder().spin(Duration.ofMillis(-1)));
            expect("options: a spin over a second refused", IllegalArgumentException.class,
                    () -> ModelOptions.builder().spin(Duration.ofDays(365_000_000L)));
            expect("tensor factory checks the element count", IllegalArgumentException.class,
                    () -> Tensor.of(new float[5], 2, 3));
            // the kernels' rank limit (PF_MAX_DIMS = 8), as the worker enforces it
            check("tensor factory takes rank 8",
                    Tensor.zeros(DType.FLOAT32, 1, 1, 1, 1, 1, 1, 1, 2).size() == 2, "");
            Throwable rank9 = expect("tensor factory refuses rank 9",
                    IllegalArgumentException.class,
                    () -> Tensor.zeros(DType.FLOAT32, 1, 1, 1, 1, 1, 1, 1, 1, 1));
            check("rank error names the limit", rank9 != null
                    && rank9.getMessage().contains("rank 9") && rank9.getMessage()
                    .contains("limit of 8"), String.valueOf(rank9));
            expect("tensor factory refuses a zero-size tensor of absurd shape",
                    IllegalArgumentException.class,
                    () -> Tensor.zeros(DType.FLOAT32, 1L << 62, 0));

            // a hung worker: the call times out, and the worker is fine once it resumes
            long pid = m.workerPids()[0];
            signal("STOP", pid);
            long t0 = System.nanoTime();
            expect("timeout: sync", InferenceTimeoutException.class, () -> m.output(good));
            double seconds = (System.nanoTime() - t0) / 1e9;
            check("timeout: sync took about the timeout", seconds > 0.6 && seconds < 3.0,
                    seconds + " s");
            CompletableFuture<Tensor> pending = m.outputAsync(good);
            expect("timeout: async", InferenceTimeoutException.class,
                    () -> pending.get(5, TimeUnit.SECONDS));
            signal("CONT", pid);
            Tensor after = null;
            for (int i = 0; i < 3 && after == null; i++) {
                try {
                    after = m.output(good);
                } catch (InferenceTimeoutException e) {
                    Thread.sleep(200); // the resumed worker first finishes the abandoned calls
                }
            }
            check("timeout: the worker serves again", after != null && after.equals(m.output(good)),
                    String.valueOf(after));
            check("timeout: same worker", m.workerPids()[0] == pid, "pid changed");
        }

        // a Python exception inside the model
        try (Model m = Model.load(lookup)) {
            Tensor ok = m.output(Tensor.of(new long[] {1, 2, 3}, 1, 3));
            check("lookup values", ok.getFloat(0, 2, 1) == 13f && ok.shape().length == 3,
                    ok.toString());
            Throwable t = expect("remote: model raises", RemoteModelException.class,
                    () -> m.output(Tensor.of(new long[] {1, 99, 3}, 1, 3)));
            if (t instanceof RemoteModelException) {
                RemoteModelException r = (RemoteModelException) t;
                check("remote: python type", r.pythonType().endsWith("IndexOutOfRange"),
                        r.pythonType());
                check("remote: python message", r.pythonMessage().contains("99"),
                        r.pythonMessage());
            }
            // a bad request stacked with good ones fails alone
            List<CompletableFuture<Tensor>> mixed = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                long bad = i == 3 ? 99 : i;
                mixed.add(m.outputAsync(Tensor.of(new long[] {0, bad, 2}, 1, 3)));
            }
            int failed = 0;
            for (int i = 0; i < 8; i++) {
                try {
                    Tensor y = mixed.get(i).get(10, TimeUnit.SECONDS);
                    check("stacked good request " + i, y.getFloat(0, 1, 0) == 4f * i, y.toString());
                } catch (ExecutionException e) {
                    failed++;
                    check("stacked bad request " + i, i == 3
                            && e.getCause() instanceof RemoteModelException, e.toString());
                }
            }
            check("exactly one stacked request failed", failed == 1, failed + " failed");
            check("remote: worker still up", m.output(Tensor.of(new long[] {1, 2, 3}, 1, 3))
                    .equals(ok), "differs");
        }

        Model closed = Model.load(model);
        closed.close();
        expect("unavailable: after close", WorkerUnavailableException.class,
                () -> closed.output(Tensor.of(new float[4], 1, 4)));

        expect("load: missing file", ModelLoadException.class,
                () -> Model.load(Path.of("no/such/model.pf")));
        Throwable bad = expect("load: corrupt file", ModelLoadException.class,
                () -> Model.load(corrupt));
        if (bad instanceof ModelLoadException) {
            check("load: python type named", String.valueOf(((ModelLoadException) bad).pythonType())
                    .contains("ModelFormatError"), bad.getMessage());
        }
        expect("load: no such python", ModelLoadException.class, () -> Model.load(model,
                ModelOptions.builder().pythonExecutable("/no/such/python3").build()));
    }

    /** A worker killed mid-call: that call fails fast, the next one succeeds on a new worker. */
    static void restart(Path model) throws Exception {
        try (Model m = Model.load(model)) {
            long features = m.signature().inputs().get(0).shape()[1];
            Tensor x = Tensor.of(new float[(int) features], 1, features);
            Tensor expected = m.output(x);
            long pid = m.workerPids()[0];
            fact("first_pid", pid);
            signal("STOP", pid); // hold the call in flight
            CompletableFuture<Tensor> inFlight = m.outputAsync(x);
            Thread.sleep(300);
            long t0 = System.nanoTime();
            signal("KILL", pid);
            expect("killed mid-call: WorkerUnavailableException", WorkerUnavailableException.class,
                    () -> inFlight.get(10, TimeUnit.SECONDS));
            double seconds = (System.nanoTime() - t0) / 1e9;
            check("killed mid-call: fails fast", seconds < 2.0, seconds + " s");
            Tensor y = m.output(x);
            check("next call succeeds", y.equals(expected), y.toString());
            long newPid = m.workerPids()[0];
            fact("second_pid", newPid);
            check("restarted as a new process", newPid != pid && newPid > 0, "pid " + newPid);
            check("old process gone", !alive(pid), "pid " + pid + " alive");
        }
        // with no restarts allowed, a dead worker is given up and calls fail at once
        ModelOptions noRestarts = ModelOptions.builder().restartPolicy(0, Duration.ofMinutes(1))
                .build();
        try (Model m = Model.load(model, noRestarts)) {
            long features = m.signature().inputs().get(0).shape()[1];
            Tensor x = Tensor.of(new float[(int) features], 1, features);
            m.output(x);
            long pid = m.workerPids()[0];
            signal("KILL", pid);
            Thread.sleep(500);
            long t0 = System.nanoTime();
            Throwable t = expect("given up: WorkerUnavailableException",
                    WorkerUnavailableException.class, () -> m.output(x));
            check("given up: says why", t != null && t.getMessage().contains("given up"),
                    String.valueOf(t));
            check("given up: fails fast", (System.nanoTime() - t0) / 1e9 < 1.0, "slow");
        }
    }

    /** Many threads, many calls, batched over two workers; every result checked. */
    static void concurrency(Path model, Path inputs, int rows, int features, Path expectedPath,
                            int threads, int calls) throws Exception {
        float[] x = readFloats(inputs);
        float[] expected = readFloats(expectedPath);
        int outWidth = expected.length / rows;
        Tensor[] in = new Tensor[rows];
        for (int i = 0; i < rows; i++) {
            in[i] = row(x, i, features);
        }
        ModelOptions opts = ModelOptions.builder().workers(2).maxBatchSize(32).build();
        try (Model m = Model.load(model, opts)) {
            AtomicLong errors = new AtomicLong();
            AtomicLong exact = new AtomicLong();
            AtomicLong wrong = new AtomicLong();
            AtomicReference<String> firstError = new AtomicReference<>();
            AtomicReference<Double> worst = new AtomicReference<>(0.0);
            CountDownLatch start = new CountDownLatch(1);
            List<Thread> pool = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                final int tid = t;
                Thread th = new Thread(() -> {
                    try {
                        start.await();
                    } catch (InterruptedException e) {
                        return;
                    }
                    for (int c = 0; c < calls; c++) {
                        int r = (tid * 7919 + c * 31) % rows;
                        try {
                            float[] y = m.output(in[r]).toFloatArray();
                            boolean same = true;
                            double diff = 0;
                            for (int k = 0; k < outWidth; k++) {
                                float e = expected[r * outWidth + k];
                                same &= Float.floatToRawIntBits(y[k]) == Float.floatToRawIntBits(e);
                                diff = Math.max(diff, Math.abs(y[k] - e) / (1 + Math.abs(e)));
                            }
                            if (same) {
                                exact.incrementAndGet();
                            }
                            if (diff > 1e-5) {
                                wrong.incrementAndGet();
                            }
                            final double d = diff;
                            worst.accumulateAndGet(d, Math::max);
                        } catch (RuntimeException e) {
                            errors.incrementAndGet();
                            firstError.compareAndSet(null, e.toString());
                        }
                    }
                });
                pool.add(th);
                th.start();
            }
            long t0 = System.nanoTime();
            start.countDown();
            for (Thread th : pool) {
                th.join();
            }
            double seconds = (System.nanoTime() - t0) / 1e9;
            long total = (long) threads * calls;
            fact("calls", total);
            fact("seconds", seconds);
            fact("exact", exact.get());
            fact("worst_relative_difference", worst.get());
            fact("worker_requests", requestsServed(m));
            fact("health", m.health().replace('\n', ' '));
            check("no errors", errors.get() == 0,
                    errors.get() + " errors, first: " + firstError.get());
            check("every result correct", wrong.get() == 0, wrong.get() + " wrong results");
            check("batched (fewer worker requests than calls)", requestsServed(m) < total,
                    requestsServed(m) + " requests for " + total + " calls");
            String[] health = m.health().split("\n");
            boolean bothServed = health.length == 2;
            for (String h : health) {
                bothServed &= !h.contains("\"requests\": 0,");
            }
            check("both workers served", bothServed, m.health());
        }
    }

    /** Start two workers and wait to be killed (pytest then checks the workers exit). */
    static void hold(Path model) throws Exception {
        Model m = Model.load(model, ModelOptions.builder().workers(2).build());
        fact("pids", Arrays.toString(m.workerPids()));
        Thread.sleep(600_000);
    }

    /** close() leaves no worker process behind. */
    static void closeCheck(Path model) throws Exception {
        Model m = Model.load(model, ModelOptions.builder().workers(2).build());
        long[] pids = m.workerPids();
        fact("pids", Arrays.toString(pids));
        check("workers alive before close", alive(pids[0]) && alive(pids[1]),
                Arrays.toString(pids));
        m.close();
        check("workers gone after close", !alive(pids[0]) && !alive(pids[1]),
                Arrays.toString(pids));

        // closing with calls pending on a hung worker: they fail, close() still cleans up
        Model hung = Model.load(model, ModelOptions.builder()
                .shutdownTimeout(Duration.ofMillis(200)).build());
        long features = hung.signature().inputs().get(0).shape()[1];
        Tensor x = Tensor.of(new float[(int) features], 1, features);
        hung.output(x);
        long pid = hung.workerPids()[0];
        signal("STOP", pid);
        List<CompletableFuture<Tensor>> pending = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            pending.add(hung.outputAsync(x));
        }
        Thread.sleep(200);
        long t0 = System.nanoTime();
        hung.close();
        check("close with pending calls is quick", (System.nanoTime() - t0) / 1e9 < 5,
                (System.nanoTime() - t0) / 1e9 + " s");
        for (int i = 0; i < pending.size(); i++) {
            final int k = i;
            expect("pending call " + i + " fails on close", WorkerUnavailableException.class,
                    () -> pending.get(k).get(1, TimeUnit.SECONDS));
        }
        check("hung worker gone after close", !alive(pid), "pid " + pid);
    }

    /** Model.connect to a worker pytest started; a wrong or missing token is refused. */
    static void connect(int port, String token, String name, Path inputs, int features,
                        Path expectedPath) throws Exception {
        float[] x = readFloats(inputs);
        float[] expected = readFloats(expectedPath);
        try (Model m = Model.connect("127.0.0.1", port, token, name)) {
            float[] y = m.output(row(x, 0, features)).toFloatArray();
            check("connect: exact output", Arrays.equals(y, Arrays.copyOf(expected, y.length)),
                    Arrays.toString(y));
        }
        expect("connect: wrong token", AuthenticationException.class,
                () -> Model.connect("127.0.0.1", port, token + "x", name));
        expect("connect: missing token", AuthenticationException.class,
                () -> Model.connect("127.0.0.1", port, "", name));
        expect("connect: unknown model", ModelLoadException.class,
                () -> Model.connect("127.0.0.1", port, token, "no_such_model"));
    }
}
