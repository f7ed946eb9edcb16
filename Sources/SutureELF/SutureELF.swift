/// SutureELF: libelf/libdw wrappers (build-ids, program headers, symbols, relocations, CFI unwinding).
public enum SutureELF {
    /// Module version marker.
    public static let moduleName = "SutureELF"
}
