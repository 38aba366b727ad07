"""devhost: the project's own local host for the Functions app (HTTP, timer and blob triggers)."""
