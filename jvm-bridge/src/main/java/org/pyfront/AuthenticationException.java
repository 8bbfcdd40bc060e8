package org.pyfront;

/** The worker refused the connection: wrong or missing token. */
public class AuthenticationException extends WorkerUnavailableException {
    private static final long serialVersionUID = 1L;

    public AuthenticationException(String message) {
        super(message);
    }

    public AuthenticationException(String message, Throwable cause) {
        super(message, cause);
    }
}
