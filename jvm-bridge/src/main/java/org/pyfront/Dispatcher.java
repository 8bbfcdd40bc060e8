package org.pyfront;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingDeque;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Supplier;

/**
 * Turns calls into frames: a queue of requests, and lanes (one connection each, several per
 * worker) that take requests off it, stack concurrent ones into one batch and send it.
 *
 * <p>A synchronous call that finds the queue empty and a lane idle runs on the caller's own
 * thread (no hand-off between threads, the lowest latency); otherwise it queues, and the lanes
 * batch it with whatever else is waiting. A watchdog enforces timeouts: queued requests expire,
 * and a call in flight past its deadline has its connection closed (the lane reconnects).
 */
final class Dispatcher implements AutoCloseable {
    /** One call: its inputs in signature order, and the future its caller waits on. */
    static final class Request {
        final Tensor[] inputs;
        final long rows;
        final long bytes;
        final long deadline; // System.nanoTime()
        final CompletableFuture<Tensor[]> future = new CompletableFuture<>();

        Request(Tensor[] inputs, long rows, long deadline) {
            this.inputs = inputs;
            this.rows = rows;
            long b = 0;
            for (Tensor t : inputs) {
                b += t.byteSize();
            }
            this.bytes = b;
            this.deadline = deadline;
        }

        boolean expired(long now) {
            return now - deadline >= 0;
        }
    }

    // in-flight deadlines are stored relative to this, so that 0 and -1 stay free as markers
    private static final long EPOCH = System.nanoTime() - 1;

    private final String model;
    private final Signature signature;
    private final List<Worker> workers;
    private final ModelOptions options;
    private final boolean stackable;
    private final long maxDelayNanos;
    private final LinkedBlockingDeque<Request> queue = new LinkedBlockingDeque<>();
    private final List<Lane> lanes = new ArrayList<>();
    private final AtomicInteger nextLane = new AtomicInteger();
    private final Thread watchdog;
    private volatile boolean closed;

    Dispatcher(String model, Signature signature, List<Worker> workers, ModelOptions options) {
        this.model = model;
        this.signature = signature;
        this.workers = workers;
        this.options = options;
        this.stackable = signature.isBatchable();
        this.maxDelayNanos = options.maxBatchDelay.toNanos();
        int id = 0;
        for (Worker w : workers) {
            for (int c = 0; c < options.connectionsPerWorker; c++) {
                lanes.add(new Lane(w, id++));
            }
        }
        for (Lane lane : lanes) {
            lane.thread.start();
        }
        long tick = Math.max(1, Math.min(20, options.timeout.toMillis() / 10));
        watchdog = new Thread(() -> watch(tick), "pyfront-watchdog-" + model);
        watchdog.setDaemon(true);
        watchdog.start();
    }

    /** Run r now on the caller's thread if a lane is free, else queue it. */
    void submitSync(Request r) {
        checkOpen();
        if (queue.isEmpty()) {
            int n = lanes.size();
            int start = nextLane.getAndIncrement();
            for (int k = 0; k < n; k++) {
                if (lanes.get(Math.floorMod(start + k, n)).tryRunOnCaller(r)) {
                    return;
                }
            }
        }
        queue.offerLast(r);
    }

    /** Queue r for the lanes. */
    void submitAsync(Request r) {
        checkOpen();
        queue.offerLast(r);
    }

    private void checkOpen() {
        if (closed) {
            throw new WorkerUnavailableException("model '" + model + "' is closed");
        }
        String dead = allWorkersFailed();
        if (dead != null) {
            throw new WorkerUnavailableException(dead);
        }
    }

    /** The reason no worker can serve any more, or null while one can. */
    private String allWorkersFailed() {
        String reason = null;
        for (Worker w : workers) {
            if (w.state() != Worker.State.FAILED) {
                return null;
            }
            reason = w.failure();
        }
        return reason;
    }

    /** first plus whatever queued requests fit in its batch (waiting up to maxBatchDelay). */
    private List<Request> gather(Request first, boolean mayWait, long frameLimit) {
        List<Request> batch = new ArrayList<>();
        batch.add(first);
        if (!stackable || options.maxBatchSize <= 1) {
            return batch;
        }
        long rows = first.rows;
        long bytes = first.bytes;
        long waitUntil = System.nanoTime() + maxDelayNanos;
        while (rows < options.maxBatchSize) {
            Request r;
            long left = waitUntil - System.nanoTime();
            if (mayWait && left > 0) {
                try {
                    r = queue.pollFirst(left, TimeUnit.NANOSECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt(); // closing: send what we have
                    break;
                }
            } else {
                r = queue.pollFirst();
            }
            if (r == null) {
                break;
            }
            if (r.future.isDone()) {
                continue; // timed out while queued
            }
            if (rows + r.rows > options.maxBatchSize
                    || bytes + r.bytes > frameLimit - 4096) { // room for the tensor heads
                queue.offerFirst(r);
                break;
            }
            batch.add(r);
            rows += r.rows;
            bytes += r.bytes;
        }
        return batch;
    }

    private void watch(long tickMillis) {
        while (!closed) {
            try {
                Thread.sleep(tickMillis);
            } catch (InterruptedException e) {
                return;
            }
            long now = System.nanoTime();
            for (Lane lane : lanes) {
                lane.abortIfOverdue(now);
            }
            String dead = allWorkersFailed();
            for (Iterator<Request> it = queue.iterator(); it.hasNext(); ) {
                Request r = it.next();
                if (dead != null) {
                    it.remove();
                    r.future.completeExceptionally(new WorkerUnavailableException(dead));
                } else if (r.future.isDone()) {
                    it.remove();
                } else if (r.expired(now)) {
                    it.remove();
                    r.future.completeExceptionally(timeoutException());
                }
            }
        }
    }

    InferenceTimeoutException timeoutException() {
        return new InferenceTimeoutException("model '" + model + "': no result within "
                + options.timeout, options.timeout);
    }

    private RuntimeException remoteException(DataConnection.RemoteError e) {
        switch (e.code) {
            case DataConnection.BAD_INPUT:
                return new ShapeMismatchException("model '" + model + "' (checked by the worker): "
                        + e.detail);
            case DataConnection.AUTH_FAILED:
                return new AuthenticationException(e.detail);
            default:
                return new RemoteModelException(e.type, e.detail);
        }
    }

    @Override
    public void close() {
        closed = true;
        watchdog.interrupt();
        for (Lane lane : lanes) {
            lane.thread.interrupt();
        }
        for (Lane lane : lanes) {
            try {
                lane.thread.join(2000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
            lane.dropConnection();
        }
        Request r;
        while ((r = queue.pollFirst()) != null) {
            r.future.completeExceptionally(
                    new WorkerUnavailableException("model '" + model + "' was closed"));
        }
    }

    /** One connection to one worker, and the thread that feeds it from the queue. */
    private final class Lane implements Runnable {
        private final Worker worker;
        final Thread thread;
        private final ReentrantLock lock = new ReentrantLock();
        private DataConnection conn;               // guarded by lock
        private Worker.Endpoint endpoint;          // guarded by lock
        private volatile DataConnection active;    // for the watchdog to close
        private volatile boolean connected;
        private volatile long frameLimit = Long.MAX_VALUE; // the worker's, once connected
        // deadline of the call in flight; 0 when idle, -1 once the watchdog aborted it
        private final AtomicLong inFlight = new AtomicLong();

        Lane(Worker worker, int id) {
            this.worker = worker;
            this.thread = new Thread(this, "pyfront-lane-" + model + "-" + id);
            this.thread.setDaemon(true);
        }

        boolean tryRunOnCaller(Request r) {
            if (!connected || !lock.tryLock()) {
                return false;
            }
            try {
                if (conn == null) {
                    return false;
                }
                execute(gather(r, false, conn.workerMaxFrameBytes()));
                return true;
            } finally {
                lock.unlock();
            }
        }

        @Override
        public void run() {
            try {
                while (!closed) {
                    if (!connected) {
                        if (!connect()) {
                            Worker.State s = worker.state();
                            if (s == Worker.State.FAILED || s == Worker.State.CLOSED) {
                                return;
                            }
                        }
                        continue;
                    }
                    Request first = queue.pollFirst(100, TimeUnit.MILLISECONDS);
                    if (first == null || first.future.isDone()) {
                        continue;
                    }
                    lock.lock();
                    try {
                        // gathered with the connection in hand: calls that queued while a
                        // caller's own call held it join this batch
                        List<Request> batch = gather(first, true, frameLimit);
                        if (conn == null) {
                            requeue(batch);
                        } else {
                            execute(batch); // interrupted: unsent requests go back to the queue
                        }
                    } finally {
                        lock.unlock();
                    }
                }
            } catch (InterruptedException e) {
                // closing; close() fails whatever is still queued
            }
        }

        private boolean connect() throws InterruptedException {
            Worker.Endpoint ep = worker.awaitReady(200);
            if (ep == null) {
                return false;
            }
            try {
                DataConnection c = DataConnection.open(ep.dataSocket, worker.token,
                        options.maxResponseBytes, options.spin.toNanos());
                lock.lock();
                try {
                    conn = c;
                    endpoint = ep;
                    active = c;
                    frameLimit = c.workerMaxFrameBytes();
                    connected = true;
                } finally {
                    lock.unlock();
                }
                return true;
            } catch (IOException | WorkerUnavailableException e) {
                worker.connectionLost(ep);
                Thread.sleep(50);
                return false;
            }
        }

        void dropConnection() {
            DataConnection c = active;
            connected = false;
            active = null;
            if (c != null) {
                c.close();
            }
        }

        void abortIfOverdue(long now) {
            long deadline = inFlight.get();
            if (deadline > 0 && now - (deadline + EPOCH) >= 0
                    && inFlight.compareAndSet(deadline, -1)) {
                DataConnection c = active;
                if (c != null) {
                    c.close(); // unblocks the lane's read; it fails or requeues the batch
                }
            }
        }

        private void requeue(List<Request> batch) {
            for (int i = batch.size() - 1; i >= 0; i--) {
                queue.offerFirst(batch.get(i));
            }
        }

        /** One round trip for batch; completes every request's future. Holds lock. */
        private void execute(List<Request> batch) {
            if (conn != null && worker.current() != endpoint) {
                closeLocked(); // the worker was restarted: this connection leads nowhere
            }
            if (conn == null) {
                requeue(batch);
                return;
            }
            long now = System.nanoTime();
            List<Tensor[]> inputs = new ArrayList<>(batch.size());
            List<Request> live = new ArrayList<>(batch.size());
            long rows = 0;
            long deadline = 0;
            for (Request r : batch) {
                if (r.future.isDone()) {
                    continue;
                }
                if (r.expired(now)) {
                    r.future.completeExceptionally(timeoutException());
                    continue;
                }
                if (live.isEmpty() || r.deadline - deadline < 0) {
                    deadline = r.deadline;
                }
                live.add(r);
                inputs.add(r.inputs);
                rows += r.rows;
            }
            if (live.isEmpty()) {
                return;
            }
            boolean stacked = stackable && live.size() > 1;
            DataConnection c = conn;
            inFlight.set(deadline - EPOCH);
            DataConnection.OutputView[] views;
            try {
                views = c.infer(model, signature.inputs(), inputs, rows, stacked);
            } catch (IOException e) {
                boolean aborted = inFlight.getAndSet(0) == -1;
                Worker.Endpoint ep = endpoint;
                closeLocked();
                if (aborted || e instanceof DataConnection.SendFailed) {
                    // timed out, or never delivered (a stale connection to a worker that has
                    // died): the expired calls time out, the others go back to the queue
                    long t = System.nanoTime();
                    List<Request> retry = new ArrayList<>();
                    for (Request r : live) {
                        if (r.expired(t)) {
                            r.future.completeExceptionally(timeoutException());
                        } else {
                            retry.add(r);
                        }
                    }
                    requeue(retry);
                    if (!aborted) {
                        worker.connectionLost(ep);
                    }
                    return;
                }
                failAll(live, () -> new WorkerUnavailableException("worker " + ep.pid
                        + " serving '" + model + "' died or dropped the connection during the "
                        + "call (" + e.getMessage() + "); it is being restarted or reconnected",
                        e));
                worker.connectionLost(ep);
                return;
            } catch (DataConnection.RemoteError e) {
                boolean aborted = inFlight.getAndSet(0) == -1;
                if (aborted || e.closesConnection()) {
                    closeLocked();
                }
                if (live.size() > 1 && (e.code == DataConnection.MODEL_ERROR
                        || e.code == DataConnection.BAD_INPUT) && !aborted) {
                    // one bad request must not fail the others stacked with it
                    for (Request r : live) {
                        execute(List.of(r));
                    }
                    return;
                }
                failAll(live, () -> remoteException(e));
                return;
            }
            boolean aborted = inFlight.getAndSet(0) == -1;
            deliver(c, live, views, rows, stacked);
            if (aborted) {
                closeLocked(); // the watchdog closed it just as the reply arrived
            }
        }

        private void deliver(DataConnection c, List<Request> live,
                             DataConnection.OutputView[] views, long rows, boolean stacked) {
            if (views.length != signature.outputs().size()) {
                failAll(live, () -> new RemoteModelException("ProtocolError", "the worker returned "
                        + views.length + " outputs; the signature lists "
                        + signature.outputs().size()));
                return;
            }
            if (!stacked) {
                Tensor[] outs = new Tensor[views.length];
                for (int o = 0; o < views.length; o++) {
                    outs[o] = c.copyRows(views[o], 0, -1);
                }
                live.get(0).future.complete(outs);
                return;
            }
            for (DataConnection.OutputView v : views) {
                if (v.shape.length == 0 || v.shape[0] != rows) {
                    failAll(live, () -> new RemoteModelException("ProtocolError", "output '"
                            + v.name + "' has " + (v.shape.length == 0 ? "no" : v.shape[0])
                            + " rows for a batch of " + rows));
                    return;
                }
            }
            long row = 0;
            for (Request r : live) {
                Tensor[] outs = new Tensor[views.length];
                for (int o = 0; o < views.length; o++) {
                    outs[o] = c.copyRows(views[o], row, r.rows);
                }
                row += r.rows;
                r.future.complete(outs);
            }
        }

        private void closeLocked() {
            if (conn != null) {
                conn.close();
            }
            conn = null;
            active = null;
            connected = false;
        }

        private void failAll(List<Request> live, Supplier<RuntimeException> error) {
            for (Request r : live) {
                r.future.completeExceptionally(error.get()); // one exception object per caller
            }
        }
    }
}
