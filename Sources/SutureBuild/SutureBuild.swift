/// SutureBuild: patch bundle creation.
public enum SutureBuild {
    /// Module version marker.
    public static let moduleName = "SutureBuild"
}
