"""Where latency and memory are measured: ``local`` (this host, always) and ``ssh://USER@HOST[:PORT]`` targets.

Each target runs the standalone agent (:mod:`optimizer.targets.agent`) in a private folder; the pipeline talks
to it through :mod:`optimizer.targets.base` and times variants in interleaved rounds (:mod:`.rounds`).
Nothing is imported here, so the agent module stays importable without the rest of the package.
"""
