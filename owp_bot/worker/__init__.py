"""The worker side of the protocol: `WorkerClient` and the `owp worker` commands."""
