"""Adapters for tapedeck's ports; each imports its SDK only when first used."""
