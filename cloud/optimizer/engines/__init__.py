"""Engine adapters: each turns `ProblemData` into its solver's model and back into an `Answer`."""
