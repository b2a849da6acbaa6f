import ArgumentParser
import NIOCore
import NIOPosix

/// `payment-status`: the service and its operator commands.
@main
struct PaymentStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "payment-status",
        abstract: "Tells a checkout page, the moment it happens, what became of a payment.",
        subcommands: [
            ServeCommand.self, MigrateCommand.self, BackupCommand.self, CheckCommand.self, WebhookCommand.self,
            HealthcheckCommand.self,
        ],
        defaultSubcommand: ServeCommand.self)

    static func main() async {
        // Tasks run on the event loops' threads rather than on a pool of their
        // own: a request no longer changes threads between its socket and its
        // handler, and back. Nothing in the service blocks a task's thread
        // (the group commit and GRDB run on queues of their own).
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        await main(nil)
    }
}
