"""Benchmarks that print figures: `python -m lift.bench {data|model|train|metrics|infer|all}`.

Each submodule exposes `add_arguments(parser)` and `run(args) -> list[dict]`; records follow the
format of shared/design/ARCHITECTURE.md (`bench`, `device`, and where they apply `window`,
`temporal_offset`, `resolution`, `batch`, `workers`, and the figures).
"""
