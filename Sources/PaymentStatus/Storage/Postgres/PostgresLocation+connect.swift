import NIOSSL
import PostgresNIO

extension PostgresLocation {
    /// The connection pool's settings for this server.
    func clientConfiguration() throws -> PostgresClient.Configuration {
        let tlsConfiguration = TLSConfiguration.makeClientConfiguration()
        let tls: PostgresClient.Configuration.TLS = switch self.tls {
        case .disable: .disable
        case .prefer: .prefer(tlsConfiguration)
        case .require: .require(tlsConfiguration)
        }
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: tls)
        configuration.options.additionalStartupParameters = [("application_name", "payment-status")]
        configuration.options.connectTimeout = .seconds(5)
        return configuration
    }

    /// The settings of one dedicated connection (the listening one), named
    /// `application_name` so that operators can tell it apart in `pg_stat_activity`.
    func connectionConfiguration(applicationName: String) throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS = switch self.tls {
        case .disable: .disable
        case .prefer: .prefer(try NIOSSLContext(configuration: .makeClientConfiguration()))
        case .require: .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
        }
        var configuration = PostgresConnection.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: tls)
        configuration.options.additionalStartupParameters = [("application_name", applicationName)]
        configuration.options.connectTimeout = .seconds(5)
        return configuration
    }
}
