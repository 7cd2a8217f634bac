"""The runtime: regions exchanging messages through a postmaster, run layer by layer.

Knows nothing of the CLI, the terminal or the YAML file; `regions_cli.build.build_engine`
turns a validated workflow into an `executor.Engine`. Modules, in the order a message meets
them: `message` (immutable, content-hashed), `regions` (one module per type over `base`),
`postmaster` (rules, order, undeliverable policies, CC) over a `transport`, `executor` (layers,
chains, steps, retries, cancellation; `barrier` is its hook for the journal), `budget`,
`prompts`, and `events`, which is all that views and the journal see.
"""
