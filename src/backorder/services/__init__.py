"""Service layer: one handler per command or event, the message bus, the rules that turn
events into outbox actions, and the ports (unit of work, repositories, clock) they use.
Imports the domain only."""
