import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;
import org.pyfront.Model;
import org.pyfront.ModelOptions;
import org.pyfront.Tensor;
import py4j.ClientServer;

/**
 * The JVM bridge benchmark, driven by benchmarks/bench_jvm.py: pyfront's bridge against a raw
 * Py4J baseline (a Python object behind a Java interface taking and returning byte[]) in the
 * same run. Writes one JSON object of figures.
 *
 * args: mlp.pf echo.pf tiny.pf rawPort rawToken out.json quick(0|1)
 */
public final class BenchJvm {
    /** The raw Py4J baseline, implemented by a Python object in bench_jvm.py. */
    public interface RawPredictor {
        byte[] predict(byte[] input);

        byte[] echo(byte[] input);
    }

    interface Call {
        void run() throws Exception;
    }

    public static void main(String[] args) throws Exception {
        Path mlp = Path.of(args[0]);
        Path echo = Path.of(args[1]);
        Path tiny = Path.of(args[2]);
        int rawPort = Integer.parseInt(args[3]);
        String rawToken = args[4];
        Path out = Path.of(args[5]);
        boolean quick = args[6].equals("1");
        int latencyCalls = quick ? 2000 : 10000;
        double throughputSeconds = quick ? 2 : 5;
        int bigCalls = quick ? 30 : 100;

        Map<String, Object> results = new LinkedHashMap<>();
        float[] x = new float[784];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) Math.sin(i);
        }
        byte[] xBytes = littleEndian(x);
        float[] big = new float[256 * 1024]; // 1 MiB of float32
        for (int i = 0; i < big.length; i++) {
            big[i] = (i % 1000) / 1000f;
        }
        byte[] bigBytes = littleEndian(big);

        // ---- raw Py4J baseline ----
        ClientServer raw = new ClientServer.ClientServerBuilder()
                .pythonAddress(InetAddress.getLoopbackAddress()).pythonPort(rawPort)
                .javaPort(0).autoStartJavaServer(false).authToken(rawToken).build();
        ThreadLocal<RawPredictor> rawProxy = ThreadLocal.withInitial(() -> (RawPredictor)
                raw.getPythonServerEntryPoint(new Class<?>[] {RawPredictor.class}));
        byte[] rawOut = rawProxy.get().predict(xBytes);
        results.put("raw_latency_us", latencies(() -> rawProxy.get().predict(xBytes),
                latencyCalls / 4));
        results.put("raw_throughput_8_threads", throughput(8, throughputSeconds, 1,
                () -> rawProxy.get().predict(xBytes)));
        results.put("raw_1mib_round_trip_us", latencies(() -> rawProxy.get().echo(bigBytes),
                Math.max(5, bigCalls / 10)));

        // ---- pyfront bridge ----
        try (Model model = Model.load(mlp)) {
            Tensor input = Tensor.of(x, 1, 784);
            float[] ours = model.output(input).toFloatArray();
            results.put("outputs_match_raw", Arrays.equals(littleEndian(ours), rawOut));
            results.put("latency_us", latencies(() -> model.output(input), latencyCalls));
            results.put("throughput_8_threads", throughput(8, throughputSeconds, 1,
                    () -> model.output(input)));
            results.put("options", ModelOptions.defaults().toString());
        }
        ModelOptions twoWorkers = ModelOptions.builder().workers(2).build();
        try (Model model = Model.load(mlp, twoWorkers)) {
            Tensor input = Tensor.of(x, 1, 784);
            results.put("throughput_8_threads_2_workers", throughput(8, throughputSeconds, 1,
                    () -> model.output(input)));
        }
        try (Model model = Model.load(tiny)) {
            // the bridge's own cost: a model whose inference takes a few microseconds
            Tensor input = Tensor.of(x, 1, 784);
            results.put("tiny_model_latency_us", latencies(() -> model.output(input),
                    latencyCalls));
        }
        // the same with spinning off: both ends block for every message (ModelOptions.spin)
        ModelOptions blocking = ModelOptions.builder().spin(Duration.ZERO).build();
        try (Model model = Model.load(tiny, blocking)) {
            Tensor input = Tensor.of(x, 1, 784);
            results.put("tiny_model_latency_no_spin_us", latencies(() -> model.output(input),
                    latencyCalls));
        }
        try (Model model = Model.load(echo)) {
            Tensor input = Tensor.of(big, 1, big.length);
            Tensor back = model.output(input);
            results.put("echo_exact", back.equals(input));
            results.put("1mib_round_trip_us", latencies(() -> model.output(input), bigCalls));
        }
        try (Model model = Model.load(echo, blocking)) {
            Tensor input = Tensor.of(big, 1, big.length);
            results.put("1mib_round_trip_no_spin_us", latencies(() -> model.output(input),
                    bigCalls));
        }
        raw.shutdown();
        Files.writeString(out, toJson(results));
        System.exit(0);
    }

    static byte[] littleEndian(float[] values) {
        ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(values);
        return b.array();
    }

    static Map<String, Object> latencies(Call call, int n) throws Exception {
        // the steady state a service runs in: the JIT compiles a call path to its final form
        // after thousands of calls (an MLP call's p50 was 90 us after 400 warm-up calls, 56 us
        // after 2,000 and 51 us after 10,000), so warm up for 10,000 calls or 2 s, whichever
        // ends first
        long warmUntil = System.nanoTime() + 2_000_000_000L;
        for (int i = 0; i < 10_000 && (i < 20 || System.nanoTime() < warmUntil); i++) {
            call.run();
        }
        long[] t = new long[n];
        for (int i = 0; i < n; i++) {
            long s = System.nanoTime();
            call.run();
            t[i] = System.nanoTime() - s;
        }
        Arrays.sort(t);
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("p50", t[n / 2] / 1e3);
        m.put("p99", t[Math.min(n - 1, (int) (n * 0.99))] / 1e3);
        m.put("calls", n);
        return m;
    }

    /** Predictions per second from `threads` threads calling for `seconds` (after a warm-up). */
    static Map<String, Object> throughput(int threads, double seconds, int rowsPerCall, Call call)
            throws Exception {
        AtomicLong done = new AtomicLong();
        AtomicLong errors = new AtomicLong();
        long[] window = new long[2];
        CountDownLatch start = new CountDownLatch(1);
        long warmupNanos = (long) (0.5e9);
        long measureNanos = (long) (seconds * 1e9);
        List<Thread> pool = new ArrayList<>();
        long[] startAt = new long[1];
        for (int t = 0; t < threads; t++) {
            Thread th = new Thread(() -> {
                try {
                    start.await();
                } catch (InterruptedException e) {
                    return;
                }
                long begin = startAt[0];
                while (true) {
                    long now = System.nanoTime();
                    if (now - begin > warmupNanos + measureNanos) {
                        break;
                    }
                    try {
                        call.run();
                    } catch (Exception e) {
                        errors.incrementAndGet();
                    }
                    long end = System.nanoTime();
                    if (end - begin > warmupNanos && end - begin <= warmupNanos + measureNanos) {
                        done.incrementAndGet();
                    }
                }
            });
            pool.add(th);
            th.start();
        }
        startAt[0] = System.nanoTime();
        start.countDown();
        for (Thread th : pool) {
            th.join();
        }
        window[0] = done.get();
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("predictions_per_s", window[0] * rowsPerCall / seconds);
        m.put("threads", threads);
        m.put("errors", errors.get());
        return m;
    }

    static String toJson(Object v) {
        if (v instanceof Map) {
            StringBuilder sb = new StringBuilder("{");
            for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                if (sb.length() > 1) {
                    sb.append(", ");
                }
                sb.append('"').append(e.getKey()).append("\": ").append(toJson(e.getValue()));
            }
            return sb.append('}').toString();
        }
        if (v instanceof String) {
            return '"' + ((String) v).replace("\\", "\\\\").replace("\"", "\\\"") + '"';
        }
        return String.valueOf(v);
    }
}
