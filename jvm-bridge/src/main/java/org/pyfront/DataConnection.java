package org.pyfront;

import java.io.EOFException;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;

/**
 * One Unix-domain-socket connection to a worker, carrying binary tensor frames (the layout is
 * documented in pyfront/jvm/protocol.py, which mirrors the constants here). Not thread-safe:
 * a Lane owns it.
 */
final class DataConnection implements AutoCloseable {
    static final int PROTOCOL_VERSION = 1;
    static final int MAGIC = 0x31424650; // "PFB1" read little-endian
    static final int HEADER_SIZE = 24;
    static final int HELLO = 1, INFER = 2, PING = 3;
    static final int HELLO_OK = 0x81, RESULT = 0x82, PONG = 0x83, ERROR = 0xFF;
    // error codes
    static final int BAD_FRAME = 1, FRAME_TOO_LARGE = 2, AUTH_FAILED = 3, UNKNOWN_MODEL = 4,
            BAD_INPUT = 5, MODEL_ERROR = 6, UNSUPPORTED = 7, BAD_MAGIC = 8, WORKER_ERROR = 9,
            BUSY = 10;

    /** An ERROR frame from the worker. */
    static final class RemoteError extends Exception {
        private static final long serialVersionUID = 1L;
        final int code;
        final String type;
        final String detail;
        final boolean fromWorker; // false: refused here, before anything was sent

        RemoteError(int code, String type, String detail, boolean fromWorker) {
            super(type + ": " + detail);
            this.code = code;
            this.type = type;
            this.detail = detail;
            this.fromWorker = fromWorker;
        }

        /** Whether the worker drops the connection after sending this error. */
        boolean closesConnection() {
            return fromWorker
                    && (code == FRAME_TOO_LARGE || code == AUTH_FAILED || code == BAD_MAGIC
                        || code == BUSY);
        }
    }

    /** The request could not be written: the worker never saw it whole, so it may be retried. */
    static final class SendFailed extends IOException {
        private static final long serialVersionUID = 1L;

        SendFailed(IOException cause) {
            super(cause.getMessage(), cause);
        }
    }

    /** One output of a RESULT frame, viewed in the receive buffer until the next call. */
    static final class OutputView {
        final String name;
        final DType dtype;
        final long[] shape;
        final int offset;
        final int bytes;

        OutputView(String name, DType dtype, long[] shape, int offset, int bytes) {
            this.name = name;
            this.dtype = dtype;
            this.shape = shape;
            this.offset = offset;
            this.bytes = bytes;
        }
    }

    private final SocketChannel channel;
    private final long maxResponseBytes;
    private final long spinNanos;
    private boolean blocking = true; // the channel's mode (see blocking())
    private ByteBuffer out = ByteBuffer.allocateDirect(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
    // a reply is read whole into raw (usually one read); in views its body, at offset 0
    private ByteBuffer raw;
    private ByteBuffer in;
    private long nextRequestId = 1;
    private long workerMaxFrameBytes;
    private int workerPid;

    private DataConnection(SocketChannel channel, long maxResponseBytes, long spinNanos) {
        this.channel = channel;
        this.maxResponseBytes = maxResponseBytes;
        this.spinNanos = spinNanos;
        allocateIn(1 << 16);
    }

    private void allocateIn(int capacity) {
        raw = ByteBuffer.allocateDirect(capacity).order(ByteOrder.LITTLE_ENDIAN);
        in = raw.duplicate().position(HEADER_SIZE).slice().order(ByteOrder.LITTLE_ENDIAN);
    }

    /** Connect and authenticate; AuthenticationException when the token is refused. */
    static DataConnection open(Path socket, String token, long maxResponseBytes,
            long spinNanos) throws IOException {
        SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
        DataConnection c = new DataConnection(ch, maxResponseBytes, spinNanos);
        try {
            ch.connect(UnixDomainSocketAddress.of(socket));
            c.hello(token);
        } catch (IOException | RuntimeException e) {
            c.close();
            throw e;
        }
        return c;
    }

    private void hello(String token) throws IOException {
        byte[] t = token.getBytes(StandardCharsets.UTF_8);
        long id = nextRequestId++;
        out.clear();
        header(HELLO, id, 6 + t.length);
        out.putInt(PROTOCOL_VERSION).putShort((short) t.length).put(t);
        send();
        try {
            int length = receive(id, HELLO_OK);
            if (length < 16) {
                throw new IOException("short HELLO reply from the worker");
            }
            workerPid = in.getInt(4);
            workerMaxFrameBytes = in.getLong(8);
        } catch (RemoteError e) {
            if (e.code == AUTH_FAILED) {
                throw new AuthenticationException("the worker refused the data connection: "
                        + e.detail);
            }
            throw new WorkerUnavailableException("the worker refused the data connection: "
                    + e.getMessage());
        }
    }

    int workerPid() {
        return workerPid;
    }

    long workerMaxFrameBytes() {
        return workerMaxFrameBytes;
    }

    /** Bytes an INFER frame body takes for these inputs (stacked when there are several rows). */
    static long inferBodyBytes(String model, List<TensorSpec> specs, long[] inputBytes) {
        long size = pad8(2 + utf8Length(model) + 2);
        for (int i = 0; i < specs.size(); i++) {
            size += recordHeadBytes(specs.get(i).name(), specs.get(i).rank());
            size += pad8(inputBytes[i]);
        }
        return size;
    }

    /**
     * Send the requests' inputs stacked along dimension 0 (one request: as they are) and return
     * the outputs, viewed in the receive buffer until the next call.
     */
    OutputView[] infer(String model, List<TensorSpec> specs, List<Tensor[]> requests,
                       long totalRows, boolean stacked) throws IOException, RemoteError {
        int nInputs = specs.size();
        long[] inputBytes = new long[nInputs];
        for (Tensor[] req : requests) {
            for (int i = 0; i < nInputs; i++) {
                inputBytes[i] += req[i].byteSize();
            }
        }
        long body = inferBodyBytes(model, specs, inputBytes);
        if (body > workerMaxFrameBytes) {
            throw new RemoteError(FRAME_TOO_LARGE, "FrameError", "request of " + body
                    + " bytes exceeds the worker's frame limit of " + workerMaxFrameBytes
                    + " bytes (python -m pyfront.jvm serve --max-frame-mb)", false);
        }
        ensureOut(HEADER_SIZE + body);
        long id = nextRequestId++;
        out.clear();
        header(INFER, id, body);
        byte[] m = model.getBytes(StandardCharsets.UTF_8);
        out.putShort((short) m.length).put(m).putShort((short) nInputs);
        align();
        for (int i = 0; i < nInputs; i++) {
            TensorSpec spec = specs.get(i);
            long[] shape = requests.get(0)[i].shapeNoCopy();
            recordHead(spec.name(), spec.dtype(), shape, stacked ? totalRows : shape[0],
                    inputBytes[i]);
            for (Tensor[] req : requests) {
                out.put(req[i].rawData());
            }
            align();
        }
        send();
        int length = receive(id, RESULT);
        return parseResult(length);
    }

    /** PING / PONG round trip (health check of the data path). */
    void ping() throws IOException, RemoteError {
        long id = nextRequestId++;
        out.clear();
        header(PING, id, 0);
        send();
        receive(id, PONG);
    }

    /** Bytes of the receive buffer (valid until the next call). */
    ByteBuffer received() {
        return in;
    }

    // ---- encoding ----

    private static int utf8Length(String s) {
        return s.getBytes(StandardCharsets.UTF_8).length;
    }

    private static long pad8(long n) {
        return (n + 7) & ~7L;
    }

    private static long recordHeadBytes(String name, int rank) {
        return pad8(2 + utf8Length(name) + 2) + 8L * rank + 8;
    }

    private void header(int kind, long id, long bodyLength) {
        out.putInt(MAGIC).putShort((short) kind).putShort((short) 0).putLong(id)
                .putLong(bodyLength);
    }

    private void recordHead(String name, DType dtype, long[] shape, long dim0, long bytes) {
        byte[] n = name.getBytes(StandardCharsets.UTF_8);
        out.putShort((short) n.length).put(n).put((byte) dtype.code).put((byte) shape.length);
        align();
        for (int d = 0; d < shape.length; d++) {
            out.putLong(d == 0 ? dim0 : shape[d]);
        }
        out.putLong(bytes);
    }

    private void align() {
        // body offsets are counted from the body start, which sits at offset 24 (8-aligned)
        while ((out.position() & 7) != 0) {
            out.put((byte) 0);
        }
    }

    private void ensureOut(long bytes) {
        if (bytes > Integer.MAX_VALUE - 64) {
            throw new IllegalArgumentException("request of " + bytes
                    + " bytes is over the 2 GiB one frame can carry");
        }
        if (out.capacity() < bytes) {
            out = ByteBuffer.allocateDirect((int) Math.min(Integer.MAX_VALUE - 64,
                    Math.max(bytes, 2L * out.capacity()))).order(ByteOrder.LITTLE_ENDIAN);
        }
    }

    private void send() throws IOException {
        out.flip();
        try {
            while (out.hasRemaining()) {
                if (channel.write(out) == 0) {
                    blocking(true); // the socket's buffer is full (a large frame): wait in write
                }
            }
        } catch (IOException e) {
            throw new SendFailed(e);
        }
    }

    /**
     * The channel's mode, switched only when it changes: a small call in the spinning steady
     * state stays non-blocking throughout (each switch is a system call and two locks, about
     * 0.7 us here, 10% of a near-empty model's round trip).
     */
    private void blocking(boolean on) throws IOException {
        if (blocking != on) {
            channel.configureBlocking(on);
            blocking = on;
        }
    }

    // ---- decoding ----

    /**
     * Read one reply frame (body into in, at 0..length); RemoteError for an ERROR frame. The
     * worker answers with one write, so the header and the body usually come in one read.
     */
    private int receive(long id, int expectedKind) throws IOException, RemoteError {
        raw.clear();
        spinForReply();
        readAtLeast(HEADER_SIZE);
        int magic = raw.getInt(0);
        int kind = raw.getShort(4) & 0xFFFF;
        long replyId = raw.getLong(8);
        long length = raw.getLong(16);
        if (magic != MAGIC) {
            throw new IOException("the worker sent a frame with bad magic 0x"
                    + Integer.toHexString(magic));
        }
        if (length < 0 || length > maxResponseBytes) {
            throw new IOException("the worker announced a reply of " + length
                    + " bytes, over the limit of " + maxResponseBytes);
        }
        int frame = (int) (HEADER_SIZE + length);
        if (raw.position() > frame) {
            // one request is in flight per connection: nothing may follow its reply
            throw new IOException("the worker sent " + (raw.position() - frame)
                    + " bytes after a reply of " + length + " bytes");
        }
        if (raw.capacity() < frame) {
            ByteBuffer head = raw.flip();
            allocateIn((int) Math.max(frame, Math.min(Integer.MAX_VALUE - 64,
                    2L * head.capacity())));
            raw.put(head);
        }
        raw.limit(frame);
        readAtLeast(frame);
        if (kind == ERROR) {
            throw parseError((int) length);
        }
        if (replyId != id || kind != expectedKind) {
            throw new IOException("out-of-sequence reply from the worker (kind 0x"
                    + Integer.toHexString(kind) + ", id " + replyId + ", expected id " + id + ")");
        }
        return (int) length;
    }

    /**
     * Non-blocking reads into raw until the reply's first bytes arrive or spinNanos pass:
     * a blocking read would pay the wake-up of a sleeping thread (see ModelOptions.spin).
     */
    private void spinForReply() throws IOException {
        if (spinNanos <= 0) {
            return;
        }
        blocking(false);
        long start = System.nanoTime();
        while (true) {
            int n = channel.read(raw);
            if (n != 0) {
                if (n < 0) {
                    throw new EOFException("the worker closed the connection");
                }
                return;
            }
            long spent = System.nanoTime() - start;
            if (spent >= spinNanos) {
                blocking(true);
                return;
            }
            Thread.yield();
        }
    }

    /**
     * Read into raw until it holds at least bytes (up to its limit); the rest of a frame that
     * has not arrived yet (a large reply) is waited for in blocking reads.
     */
    private void readAtLeast(int bytes) throws IOException {
        while (raw.position() < bytes) {
            int n = channel.read(raw);
            if (n < 0) {
                throw new EOFException("the worker closed the connection");
            }
            if (n == 0) {
                blocking(true);
            }
        }
    }

    private RemoteError parseError(int length) throws IOException {
        try {
            int code = in.getShort(0) & 0xFFFF;
            int typeLength = in.getShort(2) & 0xFFFF;
            String type = string(4, typeLength);
            int msgLength = in.getInt(4 + typeLength);
            String msg = string(8 + typeLength, msgLength);
            return new RemoteError(code, type, msg, true);
        } catch (IndexOutOfBoundsException e) {
            throw new IOException("malformed ERROR frame from the worker (" + length + " bytes)");
        }
    }

    private String string(int at, int length) {
        byte[] b = new byte[length];
        in.get(at, b);
        return new String(b, StandardCharsets.UTF_8);
    }

    private OutputView[] parseResult(int length) throws IOException {
        try {
            int pos = 0;
            int count = in.getShort(pos) & 0xFFFF;
            pos = 8;
            OutputView[] views = new OutputView[count];
            for (int i = 0; i < count; i++) {
                int nameLength = in.getShort(pos) & 0xFFFF;
                String name = string(pos + 2, nameLength);
                pos += 2 + nameLength;
                DType dtype = DType.fromCode(in.get(pos) & 0xFF);
                int rank = in.get(pos + 1) & 0xFF;
                pos = (int) pad8(pos + 2);
                long[] shape = new long[rank];
                for (int d = 0; d < rank; d++) {
                    shape[d] = in.getLong(pos);
                    pos += 8;
                }
                long bytes = in.getLong(pos);
                pos += 8;
                if (bytes != Tensor.elementCount(shape, dtype) * dtype.byteSize()
                        || pos + bytes > length) {
                    throw new IOException("malformed RESULT frame from the worker (output '"
                            + name + "')");
                }
                views[i] = new OutputView(name, dtype, shape, pos, (int) bytes);
                pos = (int) pad8(pos + bytes);
            }
            return views;
        } catch (IndexOutOfBoundsException | IllegalArgumentException e) {
            throw new IOException("malformed RESULT frame from the worker: " + e.getMessage());
        }
    }

    /** Copy rows [row, row + rows) of an output (all of it when rows == -1) into a Tensor. */
    Tensor copyRows(OutputView v, long row, long rows) {
        long[] shape = v.shape.clone();
        int start = v.offset;
        int bytes = v.bytes;
        if (rows >= 0) {
            long rowBytes = shape[0] == 0 ? 0 : v.bytes / shape[0];
            start = (int) (v.offset + row * rowBytes);
            bytes = (int) (rows * rowBytes);
            shape[0] = rows;
        }
        ByteBuffer data = ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN);
        data.put(in.duplicate().limit(start + bytes).position(start)).clear();
        return new Tensor(v.dtype, shape, data);
    }

    boolean isOpen() {
        return channel.isOpen();
    }

    @Override
    public void close() {
        try {
            channel.close();
        } catch (IOException ignored) {
            // closing a socket that already failed: nothing to report
        }
    }
}
