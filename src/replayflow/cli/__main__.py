"""`python -m replayflow.cli`: the tests, benchmarks and the API server start the CLI this
way, with the interpreter that runs them rather than whatever `replayflow` is on PATH."""

from replayflow.cli import main

main()
