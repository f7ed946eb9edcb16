/// SuturePatching: the kernel livepatch driver and the user-space ptrace engine.
public enum SuturePatching {
    /// Module version marker.
    public static let moduleName = "SuturePatching"
}
