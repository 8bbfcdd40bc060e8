package org.pyfront;

/**
 * No worker could serve the call: it died or closed the connection during the call, could not
 * be reached, or was restarted too often. Calls made after a supervised restart succeed.
 */
public class WorkerUnavailableException extends PyfrontException {
    private static final long serialVersionUID = 1L;

    public WorkerUnavailableException(String message) {
        super(message);
    }

    public WorkerUnavailableException(String message, Throwable cause) {
        super(message, cause);
    }
}
