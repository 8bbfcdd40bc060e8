package org.pyfront;

import java.time.Duration;

/** The call did not complete within its timeout (ModelOptions.Builder#timeout). */
public class InferenceTimeoutException extends PyfrontException {
    private static final long serialVersionUID = 1L;
    private final Duration timeout;

    public InferenceTimeoutException(String message, Duration timeout) {
        super(message);
        this.timeout = timeout;
    }

    public Duration timeout() {
        return timeout;
    }
}
