"""tapedeck's deployed code, in layers; each may import only the layers before it.

- `core`: pure values and rules (NCCOs, WAV, signatures, transcripts, the ports). No I/O, no
  clock, no logging, no SDK.
- `config`: what a process is told: settings read from the environment, and the routes file.
- `flows`: the use cases, written against the ports. They may log and keep time, but never
  name an adapter or an SDK.
- `adapters`: one module per `<Vendor><Port>`, each the only place its SDK is imported. They
  know core and config, never a flow.
- `runtime`: the wiring: the composition root, the HTTP boundary, logs and task dispatch.

tests/test_import_rules.py holds the tree to these rules. Operator tooling and the Vonage
stand-in live in `tools/`, outside the deployed package.
"""
