package org.pyfront;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * An immutable n-dimensional array: a dtype, a shape and little-endian row-major data.
 *
 * <pre>
 * Tensor x = Tensor.of(new float[64], 1, 64);   // data, then shape
 * float[] values = y.toFloatArray();
 * </pre>
 *
 * Factories copy their input and check that the element count matches the shape, so a
 * Tensor never changes after it is made and can be shared between threads freely.
 */
public final class Tensor {
    /** PF_MAX_DIMS of native/include/pyfront.h: the kernels' limit, and the protocol's. */
    static final int MAX_RANK = 8;

    private final DType dtype;
    private final long[] shape;
    private final ByteBuffer data; // little-endian, position 0, limit = byte size; never written

    Tensor(DType dtype, long[] shape, ByteBuffer data) {
        this.dtype = dtype;
        this.shape = shape;
        this.data = data;
    }

    // ---- factories ----

    /** A float32 tensor holding a copy of data, with the given shape. */
    public static Tensor of(float[] data, long... shape) {
        ByteBuffer b = allocate(DType.FLOAT32, shape, data.length);
        b.asFloatBuffer().put(data);
        return new Tensor(DType.FLOAT32, shape.clone(), b);
    }

    /** A float64 tensor holding a copy of data, with the given shape. */
    public static Tensor of(double[] data, long... shape) {
        ByteBuffer b = allocate(DType.FLOAT64, shape, data.length);
        b.asDoubleBuffer().put(data);
        return new Tensor(DType.FLOAT64, shape.clone(), b);
    }

    /** An int32 tensor holding a copy of data, with the given shape. */
    public static Tensor of(int[] data, long... shape) {
        ByteBuffer b = allocate(DType.INT32, shape, data.length);
        b.asIntBuffer().put(data);
        return new Tensor(DType.INT32, shape.clone(), b);
    }

    /** An int64 tensor holding a copy of data, with the given shape. */
    public static Tensor of(long[] data, long... shape) {
        ByteBuffer b = allocate(DType.INT64, shape, data.length);
        b.asLongBuffer().put(data);
        return new Tensor(DType.INT64, shape.clone(), b);
    }

    /** A float32 matrix (rows x columns) from equal-length rows. */
    public static Tensor of(float[][] rows) {
        int cols = rows.length == 0 ? 0 : rows[0].length;
        float[] flat = new float[Math.multiplyExact(rows.length, cols)];
        for (int i = 0; i < rows.length; i++) {
            if (rows[i].length != cols) {
                throw new IllegalArgumentException("row " + i + " has " + rows[i].length
                        + " values, row 0 has " + cols);
            }
            System.arraycopy(rows[i], 0, flat, i * cols, cols);
        }
        return of(flat, rows.length, cols);
    }

    /**
     * A tensor from raw little-endian bytes (the buffer's remaining bytes, copied; its position
     * and byte order are left alone).
     */
    public static Tensor fromBytes(DType dtype, ByteBuffer littleEndianData, long... shape) {
        long count = elementCount(shape, dtype);
        long expected = count * dtype.byteSize();
        if (littleEndianData.remaining() != expected) {
            throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " of " + dtype
                    + " needs " + expected + " bytes, the buffer has "
                    + littleEndianData.remaining());
        }
        ByteBuffer b = allocate(dtype, shape, count);
        b.put(littleEndianData.duplicate()).clear();
        return new Tensor(dtype, shape.clone(), b);
    }

    /** A tensor of zeros. */
    public static Tensor zeros(DType dtype, long... shape) {
        return new Tensor(dtype, shape.clone(),
                allocate(dtype, shape, elementCount(shape, dtype)));
    }

    private static ByteBuffer allocate(DType dtype, long[] shape, long dataLength) {
        long count = elementCount(shape, dtype);
        if (count != dataLength) {
            throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " holds "
                    + count + " elements but " + dataLength + " values were given");
        }
        long bytes = Math.multiplyExact(count, (long) dtype.byteSize());
        if (bytes > Integer.MAX_VALUE - 64) {
            throw new IllegalArgumentException("tensor of " + bytes
                    + " bytes is over the 2 GiB a Java buffer can hold");
        }
        return ByteBuffer.allocate((int) bytes).order(ByteOrder.LITTLE_ENDIAN);
    }

    /**
     * The element count of a shape of dtype, checked as the worker checks it: rank at most
     * MAX_RANK, no negative dimension, and the bytes the shape spans (zero dimensions counted
     * as one, so a zero-size tensor cannot name an absurd shape) addressable by a long.
     */
    static long elementCount(long[] shape, DType dtype) {
        if (shape == null) {
            throw new IllegalArgumentException("shape must not be null");
        }
        if (shape.length > MAX_RANK) {
            throw new IllegalArgumentException("rank " + shape.length + " of shape "
                    + Arrays.toString(shape) + " is over the limit of " + MAX_RANK);
        }
        long n = 1;
        long extent = dtype.byteSize();
        for (long d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("negative dimension in shape "
                        + Arrays.toString(shape));
            }
            n *= d; // cannot overflow while extent does not
            try {
                extent = Math.multiplyExact(extent, Math.max(d, 1));
            } catch (ArithmeticException e) {
                throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " of "
                        + dtype + " is too large: its bytes, zero dimensions counted as one, "
                        + "exceed " + Long.MAX_VALUE);
            }
        }
        return n;
    }

    // ---- accessors ----

    public DType dtype() {
        return dtype;
    }

    /** The shape (a copy). */
    public long[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    /** Length of dimension i. */
    public long dim(int i) {
        return shape[i];
    }

    /** Number of elements. */
    public long size() {
        return elementCount(shape, dtype);
    }

    /** Size of the data in bytes. */
    public int byteSize() {
        return data.capacity();
    }

    /** A read-only little-endian view of the data. */
    public ByteBuffer data() {
        return data.asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
    }

    /** The data as float[] (float32 tensors only). */
    public float[] toFloatArray() {
        require(DType.FLOAT32);
        float[] out = new float[(int) size()];
        data.duplicate().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
        return out;
    }

    /** The data as double[] (float64 tensors only). */
    public double[] toDoubleArray() {
        require(DType.FLOAT64);
        double[] out = new double[(int) size()];
        data.duplicate().order(ByteOrder.LITTLE_ENDIAN).asDoubleBuffer().get(out);
        return out;
    }

    /** The data as int[] (int32 tensors only). */
    public int[] toIntArray() {
        require(DType.INT32);
        int[] out = new int[(int) size()];
        data.duplicate().order(ByteOrder.LITTLE_ENDIAN).asIntBuffer().get(out);
        return out;
    }

    /** The data as long[] (int64 tensors only). */
    public long[] toLongArray() {
        require(DType.INT64);
        long[] out = new long[(int) size()];
        data.duplicate().order(ByteOrder.LITTLE_ENDIAN).asLongBuffer().get(out);
        return out;
    }

    /** One element of a float32 tensor, by index in each dimension. */
    public float getFloat(long... index) {
        require(DType.FLOAT32);
        return data.getFloat(byteOffset(index));
    }

    /** One element of a float64 tensor, by index in each dimension. */
    public double getDouble(long... index) {
        require(DType.FLOAT64);
        return data.getDouble(byteOffset(index));
    }

    /** One element of an int32 tensor, by index in each dimension. */
    public int getInt(long... index) {
        require(DType.INT32);
        return data.getInt(byteOffset(index));
    }

    /** One element of an int64 tensor, by index in each dimension. */
    public long getLong(long... index) {
        require(DType.INT64);
        return data.getLong(byteOffset(index));
    }

    /** The same data with another shape of the same element count (no copy). */
    public Tensor reshape(long... newShape) {
        long count = elementCount(newShape, dtype);
        if (count != size()) {
            throw new IllegalArgumentException("cannot reshape " + Arrays.toString(shape)
                    + " (" + size() + " elements) to " + Arrays.toString(newShape));
        }
        return new Tensor(dtype, newShape.clone(), data);
    }

    private int byteOffset(long[] index) {
        if (index.length != shape.length) {
            throw new IndexOutOfBoundsException("index " + Arrays.toString(index)
                    + " for a tensor of rank " + shape.length);
        }
        long flat = 0;
        for (int i = 0; i < shape.length; i++) {
            if (index[i] < 0 || index[i] >= shape[i]) {
                throw new IndexOutOfBoundsException("index " + Arrays.toString(index)
                        + " out of range for shape " + Arrays.toString(shape));
            }
            flat = flat * shape[i] + index[i];
        }
        return (int) (flat * dtype.byteSize());
    }

    private void require(DType expected) {
        if (dtype != expected) {
            throw new IllegalStateException("this tensor holds " + dtype + ", not " + expected);
        }
    }

    /** The raw little-endian data, shared (internal: callers never write to it). */
    ByteBuffer rawData() {
        return data.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    }

    long[] shapeNoCopy() {
        return shape;
    }

    // ---- value semantics ----

    /** Equal dtype, shape and bytes (so NaNs with equal bits are equal: bit-exact comparison). */
    @Override
    public boolean equals(Object o) {
        if (this == o) {
            return true;
        }
        if (!(o instanceof Tensor)) {
            return false;
        }
        Tensor t = (Tensor) o;
        return dtype == t.dtype && Arrays.equals(shape, t.shape) && rawData().equals(t.rawData());
    }

    @Override
    public int hashCode() {
        return 31 * (31 * dtype.hashCode() + Arrays.hashCode(shape)) + rawData().hashCode();
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("Tensor(").append(dtype).append(", ")
                .append(Arrays.toString(shape)).append(", [");
        long n = Math.min(size(), 8);
        ByteBuffer b = rawData();
        for (int i = 0; i < n; i++) {
            if (i > 0) {
                sb.append(", ");
            }
            int at = i * dtype.byteSize();
            switch (dtype) {
                case FLOAT32: sb.append(b.getFloat(at)); break;
                case FLOAT64: sb.append(b.getDouble(at)); break;
                case INT32: sb.append(b.getInt(at)); break;
                default: sb.append(b.getLong(at)); break;
            }
        }
        return sb.append(size() > n ? ", ...])" : "])").toString();
    }
}
