"""Safe intake: archive checks, model formats and summaries, data files checked against the model."""
