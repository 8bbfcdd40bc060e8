package org.pyfront;

/** The worker could not be started, or could not load the model file. */
public class ModelLoadException extends PyfrontException {
    private static final long serialVersionUID = 1L;
    private final String pythonType;

    public ModelLoadException(String message) {
        this(message, null, null);
    }

    public ModelLoadException(String message, String pythonType, Throwable cause) {
        super(message, cause);
        this.pythonType = pythonType;
    }

    /** The Python exception type that failed the load (null when the failure was not Python's). */
    public String pythonType() {
        return pythonType;
    }
}
