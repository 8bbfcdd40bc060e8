import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Executors;
import org.pyfront.Model;
import org.pyfront.ModelOptions;
import org.pyfront.Tensor;

/**
 * A small Java service that classifies 8x8 digit images with a model trained in Python by
 * examples/train_digits.py.
 *
 * <pre>
 * DigitsService digits.pf digits_test.csv   # classify a CSV (64 pixels 0..16[, label] a line)
 * DigitsService digits.pf --serve 8080      # HTTP: POST /predict with "p1,...,p64"
 * </pre>
 *
 * The model runs in a Python worker that Model.load starts and supervises; concurrent HTTP
 * requests are batched into one call to the worker.
 */
public final class DigitsService {
    private static final int PIXELS = 64;

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: DigitsService MODEL.pf (DIGITS.csv | --serve PORT)");
            System.exit(2);
        }
        ModelOptions options = ModelOptions.builder().maxBatchSize(64).build();
        try (Model model = Model.load(Path.of(args[0]), options)) {
            System.out.println("loaded " + model.signature());
            if (args[1].equals("--serve")) {
                serve(model, Integer.parseInt(args[2]));
            } else {
                classifyFile(model, Path.of(args[1]));
            }
        }
    }

    /** Pixels 0..16 scaled the way train_digits.py scaled them for training. */
    static Tensor image(String[] fields) {
        float[] x = new float[PIXELS];
        for (int i = 0; i < PIXELS; i++) {
            x[i] = (float) (Integer.parseInt(fields[i].trim()) / 16.0);
        }
        return Tensor.of(x, 1, PIXELS);
    }

    static int argmax(float[] scores) {
        int best = 0;
        for (int i = 1; i < scores.length; i++) {
            if (scores[i] > scores[best]) {
                best = i;
            }
        }
        return best;
    }

    static void classifyFile(Model model, Path csv) throws IOException {
        List<String> lines = Files.readAllLines(csv);
        int correct = 0;
        int labelled = 0;
        for (String line : lines) {
            String[] fields = line.split(",");
            int digit = argmax(model.output(image(fields)).toFloatArray());
            String label = fields.length > PIXELS ? fields[PIXELS].trim() : "?";
            System.out.println("predicted " + digit + " label " + label);
            if (fields.length > PIXELS) {
                labelled++;
                correct += Integer.parseInt(label) == digit ? 1 : 0;
            }
        }
        if (labelled > 0) {
            System.out.printf("accuracy %.4f on %d digits%n", (double) correct / labelled,
                    labelled);
        }
    }

    static void serve(Model model, int port) throws Exception {
        HttpServer server = HttpServer.create(
                new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 64);
        server.createContext("/predict", exchange -> {
            int status = 200;
            String reply;
            try {
                String body = new String(exchange.getRequestBody().readAllBytes(),
                        StandardCharsets.UTF_8);
                float[] scores = model.output(image(body.split(","))).toFloatArray();
                StringBuilder sb = new StringBuilder("{\"digit\": ").append(argmax(scores))
                        .append(", \"scores\": [");
                for (int i = 0; i < scores.length; i++) {
                    sb.append(i == 0 ? "" : ", ").append(scores[i]);
                }
                reply = sb.append("]}").toString();
            } catch (RuntimeException e) {
                status = 400;
                reply = "{\"error\": \"" + e.getMessage().replace("\"", "'") + "\"}";
            }
            byte[] bytes = reply.getBytes(StandardCharsets.UTF_8);
            exchange.getResponseHeaders().set("Content-Type", "application/json");
            exchange.sendResponseHeaders(status, bytes.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(bytes);
            }
        });
        server.setExecutor(Executors.newFixedThreadPool(8));
        server.start();
        System.out.println("listening on http://127.0.0.1:" + server.getAddress().getPort()
                + "/predict");
        Thread.currentThread().join(); // until the process is stopped
    }
}
