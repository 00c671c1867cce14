"""The pure domain: model, allocation contract, replenishment and ETA policies.

Nothing here performs I/O or imports a framework; the store, connectors and web layers
depend on this package, never the other way round (enforced by import-linter).
"""
