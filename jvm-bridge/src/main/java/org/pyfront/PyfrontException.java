package org.pyfront;

/** Base of every error the bridge raises; unchecked, so lambdas and Scala stay simple. */
public class PyfrontException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public PyfrontException(String message) {
        super(message);
    }

    public PyfrontException(String message, Throwable cause) {
        super(message, cause);
    }
}
