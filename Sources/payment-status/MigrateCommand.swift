import ArgumentParser
import Logging
import PaymentStatus

/// Applies pending migrations and exits; safe to run while the service serves.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate", abstract: "Apply the pending .sql files of the migrations folder, each once, and exit.")

    @OptionGroup var options: ConfigurationOptions

    func run() async throws {
        let configuration = try options.resolve()
        let store = try await AppServices.openStore(configuration.database, logger: Logger(label: "payment-status"))
        let applied: [String]
        do {
            applied = try await store.migrate(migrations: configuration.migrationsDirectory)
            try await store.close()
        } catch {
            try? await store.close()
            throw error
        }
        print(applied.isEmpty ? "The database is up to date." : applied.map { "applied \($0)" }.joined(separator: "\n"))
    }
}
