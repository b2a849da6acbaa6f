// payment-status-bench: see BenchCommand.swift (being written).
print("payment-status-bench")
