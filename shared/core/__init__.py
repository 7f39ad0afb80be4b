"""The pure core: values, parsers and rules. Imports only itself, the standard library's pure
parts and numpy; no I/O, no clock, no logging, no SDK."""
