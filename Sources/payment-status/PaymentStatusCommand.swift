import ArgumentParser

/// `payment-status`: the service and its operator commands.
@main
struct PaymentStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "payment-status",
        abstract: "Tells a checkout page, the moment it happens, what became of a payment.",
        subcommands: [ServeCommand.self, MigrateCommand.self, WebhookCommand.self, HealthcheckCommand.self],
        defaultSubcommand: ServeCommand.self)
}
