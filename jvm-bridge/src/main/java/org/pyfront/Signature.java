package org.pyfront;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/** A model's inputs and outputs, as saved with it by pf.save. */
public final class Signature {
    private final List<TensorSpec> inputs;
    private final List<TensorSpec> outputs;
    private final boolean batchable; // asked on every call: computed once

    public Signature(List<TensorSpec> inputs, List<TensorSpec> outputs) {
        this.inputs = Collections.unmodifiableList(new ArrayList<>(inputs));
        this.outputs = Collections.unmodifiableList(new ArrayList<>(outputs));
        this.batchable = allHaveBatchDim(this.inputs) && allHaveBatchDim(this.outputs)
                && !this.inputs.isEmpty();
    }

    private static boolean allHaveBatchDim(List<TensorSpec> specs) {
        for (TensorSpec s : specs) {
            if (!s.hasBatchDim()) {
                return false;
            }
        }
        return true;
    }

    public List<TensorSpec> inputs() {
        return inputs;
    }

    public List<TensorSpec> outputs() {
        return outputs;
    }

    /** The input named name, or null. */
    public TensorSpec input(String name) {
        for (TensorSpec s : inputs) {
            if (s.name().equals(name)) {
                return s;
            }
        }
        return null;
    }

    /** The output named name, or null. */
    public TensorSpec output(String name) {
        for (TensorSpec s : outputs) {
            if (s.name().equals(name)) {
                return s;
            }
        }
        return null;
    }

    /** Whether every input and output has a leading batch dimension (requests can be stacked). */
    public boolean isBatchable() {
        return batchable;
    }

    static Signature fromJson(Object parsed) {
        Map<String, Object> obj = Json.object(parsed, "signature");
        return new Signature(specs(obj.get("inputs"), "inputs"),
                specs(obj.get("outputs"), "outputs"));
    }

    private static List<TensorSpec> specs(Object value, String what) {
        List<TensorSpec> out = new ArrayList<>();
        for (Object item : Json.array(value, "signature " + what)) {
            Map<String, Object> spec = Json.object(item, "signature " + what + " entry");
            List<Object> dims = Json.array(spec.get("shape"), "shape");
            long[] shape = new long[dims.size()];
            for (int i = 0; i < shape.length; i++) {
                shape[i] = ((Number) dims.get(i)).longValue();
            }
            out.add(new TensorSpec((String) spec.get("name"),
                    DType.fromName((String) spec.get("dtype")), shape));
        }
        return out;
    }

    @Override
    public String toString() {
        return "Signature(inputs " + inputs + ", outputs " + outputs + ")";
    }
}
