"""`flota demo`: the whole system on the embedded default, as supervised child processes."""
