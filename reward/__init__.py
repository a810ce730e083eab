"""reward: a rubric-based LLM-as-judge reward for RL of terminal execution subagents."""

__version__ = "0.1.0"
