"""Developer tools that are not services: the classroom simulator."""
