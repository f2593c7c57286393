"""The bridge connection: wire formats, the protocol, auth and replay guard, limits, the registry, devices."""
