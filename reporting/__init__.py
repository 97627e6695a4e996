"""The pull-request report: Markdown from the pipeline's outputs, posted as a sticky comment."""
