package org.pyfront;

/** The model (or the worker) raised a Python exception while serving the call. */
public class RemoteModelException extends PyfrontException {
    private static final long serialVersionUID = 1L;
    private final String pythonType;
    private final String pythonMessage;

    public RemoteModelException(String pythonType, String pythonMessage) {
        super(pythonType + ": " + pythonMessage);
        this.pythonType = pythonType;
        this.pythonMessage = pythonMessage;
    }

    /** The Python exception's qualified type, e.g. "pyfront.errors.ShapeError". */
    public String pythonType() {
        return pythonType;
    }

    /** The Python exception's message. */
    public String pythonMessage() {
        return pythonMessage;
    }
}
