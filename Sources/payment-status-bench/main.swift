// payment-status-bench: load tool for payment-status and its peers (see BenchCommand.swift).
BenchCommand.main()
