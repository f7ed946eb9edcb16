import Foundation
import Logging
import SutureCore

/// Logging setup for the CLI: journald (structured fields through `sd_journal_sendv`) under systemd,
/// swift-log's stderr handler elsewhere. Level: `SUTURE_LOG_LEVEL` (`trace` … `critical`), default
/// `info` for the journal and `warning` on stderr (the command's own output already says what happened).
enum SutureLogging {
    private static let once: Void = {
        let env = ProcessInfo.processInfo.environment
        let level = env["SUTURE_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:))
        if JournaldLogHandler.shouldUseJournal {
            LoggingSystem.bootstrap { _ in
                var h = JournaldLogHandler(identifier: "suture")
                h.logLevel = level ?? .info
                return h
            }
        } else {
            LoggingSystem.bootstrap { label in
                var h = StreamLogHandler.standardError(label: label)
                h.logLevel = level ?? .warning
                return h
            }
        }
    }()

    /// Bootstraps swift-log once per process (later calls do nothing).
    static func bootstrap() { _ = once }
}
