package org.pyfront;

/** Element types a tensor can carry; the codes are pyfront's native dtype codes. */
public enum DType {
    FLOAT32(0, 4, "float32"),
    FLOAT64(1, 8, "float64"),
    INT32(2, 4, "int32"),
    INT64(3, 8, "int64");

    final int code;
    private final int byteSize;
    private final String pythonName;

    DType(int code, int byteSize, String pythonName) {
        this.code = code;
        this.byteSize = byteSize;
        this.pythonName = pythonName;
    }

    /** Bytes per element. */
    public int byteSize() {
        return byteSize;
    }

    /** The name pyfront and numpy use ("float32", ...). */
    public String pythonName() {
        return pythonName;
    }

    /** The dtype for a pyfront/numpy name such as "float32". */
    public static DType fromName(String name) {
        for (DType d : values()) {
            if (d.pythonName.equals(name)) {
                return d;
            }
        }
        throw new IllegalArgumentException("unknown dtype '" + name
                + "': the JVM bridge carries float32, float64, int32 and int64");
    }

    static DType fromCode(int code) {
        for (DType d : values()) {
            if (d.code == code) {
                return d;
            }
        }
        throw new IllegalArgumentException("unknown dtype code " + code);
    }

    @Override
    public String toString() {
        return pythonName;
    }
}
