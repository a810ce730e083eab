"""Drop-in adapters for GRPO trainers. Each turns the trainer's own payload into prompt groups for the
service and the service's answer into what the trainer expects; none of them ever turns a judge failure
into a number (see each module for its trainer's failure semantics)."""
