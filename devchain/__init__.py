"""Local chains for development, demos and tests, served as the same JSON-RPC the app speaks to real nodes."""
