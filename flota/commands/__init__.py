"""One module per `flota` subcommand group; each imports its part lazily."""
