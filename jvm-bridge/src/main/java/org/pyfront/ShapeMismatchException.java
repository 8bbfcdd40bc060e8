package org.pyfront;

/**
 * Inputs that do not fit the model's signature (count, names, dtypes or shapes). Raised in
 * Java before anything is sent to the worker.
 */
public class ShapeMismatchException extends PyfrontException {
    private static final long serialVersionUID = 1L;

    public ShapeMismatchException(String message) {
        super(message);
    }
}
