import Foundation
import Logging
import SutureCore

extension SutureHost {
    /// The host under `root` as `suture` drives it: configuration from `<root>/etc/suture/suture.yaml` and
    /// `<root>/etc/suture/labels`, the store under the root, region header states read by the engine
    /// (``EngineRegionHeaderReader``), the ptrace engine and the sysfs livepatch driver.
    ///
    /// - Parameters:
    ///   - root: the filesystem root (`/` in production).
    ///   - forceTransition: write `force` when a kernel transition stalls (`--force-transition`).
    ///   - environment: the kernel driver's option overrides (see `KernelDriverOptions.overridden(by:)`).
    ///   - logger: the run's logger; kernel driver events are logged to it at `info`.
    /// - Throws: `DiagnosticError` when the configuration or the labels file is malformed.
    public static func system(
        root: String, forceTransition: Bool = false,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        logger: Logger = Logger(label: "suture")
    ) throws(DiagnosticError) -> SutureHost {
        let root = root.isEmpty ? "/" : root
        let (config, warnings) = try SutureConfig.load(root: root)
        let kernel = SysfsKernelPatchDriver.system(
            root: root, forceTransition: forceTransition,
            environment: environment,
            events: { event in logger.info("\(event)") })
        return SutureHost(
            root: root, config: config, configWarnings: warnings,
            regionHeaders: EngineRegionHeaderReader(), userDriver: PtraceUserPatchDriver(),
            kernelDriver: kernel, logger: logger)
    }
}
