"""Workflow code for the replay tools' tests, importable by name from worker processes
(`-m tests.replay_code.original`): the code instances ran, and changes of it."""
