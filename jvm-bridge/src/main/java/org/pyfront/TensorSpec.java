package org.pyfront;

import java.util.Arrays;

/** One input or output of a model: its name, dtype and shape, -1 marking the batch dimension. */
public final class TensorSpec {
    private final String name;
    private final DType dtype;
    private final long[] shape;

    public TensorSpec(String name, DType dtype, long[] shape) {
        this.name = name;
        this.dtype = dtype;
        this.shape = shape.clone();
    }

    public String name() {
        return name;
    }

    public DType dtype() {
        return dtype;
    }

    /** The shape (a copy); -1 where any length is accepted (the batch dimension). */
    public long[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    /** True when the first dimension is the batch (-1), so requests can be stacked along it. */
    public boolean hasBatchDim() {
        return shape.length > 0 && shape[0] == -1;
    }

    /** Whether a tensor's dtype and shape fit this spec. */
    public boolean accepts(Tensor t) {
        return t.dtype() == dtype && fitsShape(t.shapeNoCopy());
    }

    boolean fitsShape(long[] actual) {
        if (actual.length != shape.length) {
            return false;
        }
        for (int i = 0; i < shape.length; i++) {
            if (shape[i] != -1 && shape[i] != actual[i]) {
                return false;
            }
        }
        return true;
    }

    /** "(batch, 784)" */
    public String shapeString() {
        return formatShape(shape);
    }

    static String formatShape(long[] shape) {
        StringBuilder sb = new StringBuilder("(");
        for (int i = 0; i < shape.length; i++) {
            if (i > 0) {
                sb.append(", ");
            }
            sb.append(shape[i] == -1 ? "batch" : Long.toString(shape[i]));
        }
        return sb.append(shape.length == 1 ? ",)" : ")").toString();
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof TensorSpec)) {
            return false;
        }
        TensorSpec s = (TensorSpec) o;
        return name.equals(s.name) && dtype == s.dtype && Arrays.equals(shape, s.shape);
    }

    @Override
    public int hashCode() {
        return (name.hashCode() * 31 + dtype.hashCode()) * 31 + Arrays.hashCode(shape);
    }

    @Override
    public String toString() {
        return name + ": " + dtype + " " + shapeString();
    }
}
