"""Development tools in the package: a local fake GitHub and GitHub-shaped payloads (tests, demo)."""
