"""Vehicle routing: model builder, engines, checker, dispatch."""
