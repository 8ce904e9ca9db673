"""HTTP API, read model and web UI: a faust-streaming app over replayflow.history.

`replayflow serve` runs it; see replayflow.api.app for the architecture."""
