"""Adapters for tapedeck's ports, one module per `<Vendor><Port>`; each imports its SDK only when
first used. They import core and config, never a flow or the runtime."""
