"""The training system: run directories, checkpoints with exact resume, schedules, logging, plots."""
