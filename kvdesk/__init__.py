"""kvdesk: a desktop VRAM planner for running large language models on your own GPUs."""

__version__ = "0.1.0"
