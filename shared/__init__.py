"""tapedeck's common code: settings, the pure core, use cases, ports and adapters."""
